//! Adapter layer: the `memberships` table (pk `user`, sk `conv`; index `by_conversation`) and
//! the group metadata items `G#<conv>` of the `messages` table: the [`Conversations`] port.

use super::codec::{self, from_item, n, s, to_item};
use super::messages::LogKey;
use super::{DynamoStore, USER, applied, backend, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use chrono::{DateTime, Utc};
use messenger::domain::{
    ConversationId, GroupInfo, Member, Membership, ReceiptKind, Role, Seq, UserId,
};
use messenger::ports::{Conversations, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The memberships index that answers "members of a conversation" (eventually consistent).
pub const BY_CONVERSATION: &str = "by_conversation";
/// The sort key (and the index's partition key): the conversation id.
pub(super) const CONV: &str = "conv";
const ROLE: &str = "role";
const FROM_SEQ: &str = "from_seq";
const JOINED_AT: &str = "joined_at";
const DELIVERED: &str = "delivered";
const READ: &str = "read";
/// The chat count at the read pointer (unread = the head's `chats` minus this).
const READ_CHATS: &str = "read_chats";
/// No pushes until then (absent: not muted).
const MUTED_UNTIL: &str = "muted_until";
/// What `by_conversation` projects besides the keys: what the member list shows. Not the
/// pointers, so an ack never writes to the index.
pub(super) const MEMBER_LIST: [&str; 3] = [ROLE, FROM_SEQ, JOINED_AT];
/// Prefix of a group's metadata item in the messages table.
const GROUP: &str = "G#";

/// Memberships written before roles existed read as plain members...
fn plain_member() -> Role {
    Role::Member
}

/// ...and before join points existed, as members from the first seq.
fn first_seq() -> Seq {
    1
}

/// One user's membership of one conversation, with their delivery and read pointers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MembershipItem {
    user: UserId,
    conv: ConversationId,
    #[serde(default = "plain_member")]
    role: Role,
    #[serde(with = "codec::instant")]
    joined_at: DateTime<Utc>,
    #[serde(default = "first_seq")]
    from_seq: Seq,
    delivered: Seq,
    read: Seq,
    #[serde(default)]
    read_chats: u64,
    #[serde(
        with = "codec::opt_instant",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    muted_until: Option<DateTime<Utc>>,
}

/// A membership as the `by_conversation` index holds it: the keys and [`MEMBER_LIST`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MemberItem {
    user: UserId,
    conv: ConversationId,
    #[serde(default = "plain_member")]
    role: Role,
    #[serde(with = "codec::instant")]
    joined_at: DateTime<Utc>,
    #[serde(default = "first_seq")]
    from_seq: Seq,
}

/// The key of one membership.
#[derive(Serialize)]
pub(super) struct MembershipKey<'a> {
    pub(super) user: &'a UserId,
    pub(super) conv: &'a ConversationId,
}

/// A group's metadata: `G#<conv>`, sk 0, in the messages table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GroupItem {
    pk: String,
    sk: Seq,
    name: String,
    created_by: UserId,
    #[serde(with = "codec::instant")]
    created_at: DateTime<Utc>,
}

fn group_key(conv: &ConversationId) -> LogKey {
    LogKey {
        pk: format!("{GROUP}{conv}"),
        sk: 0,
    }
}

impl From<&Membership> for MembershipItem {
    fn from(m: &Membership) -> Self {
        Self {
            user: m.user.clone(),
            conv: m.conversation.clone(),
            role: m.role,
            joined_at: m.joined_at,
            from_seq: m.from_seq,
            delivered: m.delivered,
            read: m.read,
            read_chats: m.read_chats,
            muted_until: m.muted_until,
        }
    }
}

impl From<MembershipItem> for Membership {
    fn from(i: MembershipItem) -> Self {
        Self {
            conversation: i.conv,
            user: i.user,
            role: i.role,
            joined_at: i.joined_at,
            from_seq: i.from_seq,
            delivered: i.delivered,
            read: i.read,
            read_chats: i.read_chats,
            muted_until: i.muted_until,
        }
    }
}

impl From<MemberItem> for Member {
    fn from(i: MemberItem) -> Self {
        Self {
            user: i.user,
            role: i.role,
            joined_at: i.joined_at,
            from_seq: i.from_seq,
        }
    }
}

impl From<&GroupInfo> for GroupItem {
    fn from(g: &GroupInfo) -> Self {
        let LogKey { pk, sk } = group_key(&g.conversation);
        Self {
            pk,
            sk,
            name: g.name.clone(),
            created_by: g.created_by.clone(),
            created_at: g.created_at,
        }
    }
}

impl TryFrom<GroupItem> for GroupInfo {
    type Error = StoreError;

    fn try_from(i: GroupItem) -> Result<Self, StoreError> {
        let conv =
            i.pk.strip_prefix(GROUP)
                .ok_or_else(|| corrupt(format!("{:?} is not a group key", i.pk)))?;
        Ok(Self {
            conversation: ConversationId::new(conv).map_err(|e| corrupt(e.to_string()))?,
            name: i.name,
            created_by: i.created_by,
            created_at: i.created_at,
        })
    }
}

#[async_trait]
impl Conversations for DynamoStore {
    /// A PutItem with `attribute_not_exists(user)`: a member who joins again keeps their role
    /// and pointers (the condition fails, and the answer is `false`).
    async fn join(&self, m: &Membership) -> Result<bool, StoreError> {
        applied(
            self.client
                .put_item()
                .table_name(&self.tables.memberships)
                .set_item(Some(to_item(&MembershipItem::from(m))?))
                .condition_expression("attribute_not_exists(#u)")
                .expression_attribute_names("#u", USER)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    async fn leave(&self, conv: &ConversationId, user: &UserId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user, conv })?))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn set_role(
        &self,
        conv: &ConversationId,
        user: &UserId,
        role: Role,
    ) -> Result<bool, StoreError> {
        applied(
            self.client
                .update_item()
                .table_name(&self.tables.memberships)
                .set_key(Some(to_item(&MembershipKey { user, conv })?))
                .update_expression("SET #r = :r")
                .condition_expression("attribute_exists(#u)")
                .expression_attribute_names("#r", ROLE)
                .expression_attribute_names("#u", USER)
                .expression_attribute_values(":r", codec::value(&role)?)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    async fn membership(
        &self,
        conv: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user, conv })?))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.item
            .map(|item| from_item::<MembershipItem>(item).map(Membership::from))
            .transpose()
    }

    /// A Query of the `by_conversation` index: eventually consistent (a GSI cannot be read
    /// any other way). Only group fan-out uses it; 1:1 members are named by the id.
    async fn members(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.tables.memberships)
                    .index_name(BY_CONVERSATION)
                    .key_condition_expression("#c = :c")
                    .expression_attribute_names("#c", CONV)
                    .expression_attribute_values(":c", s(conv.as_str()))
            })
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<MemberItem>(item).map(Member::from))
            .collect()
    }

    /// The member list (the index), then every member's item (one BatchGetItem per 100,
    /// eventually consistent): a pull, so it may lag an ack by a moment.
    async fn pointers(&self, conv: &ConversationId) -> Result<Vec<Membership>, StoreError> {
        let members = self.members(conv).await?;
        let keys = members
            .iter()
            .map(|m| {
                to_item(&MembershipKey {
                    user: &m.user,
                    conv,
                })
            })
            .collect::<Result<_, _>>()?;
        let items = self
            .batch_get(&self.tables.memberships, keys, false)
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<MembershipItem>(item).map(Membership::from))
            .collect()
    }

    async fn of_user(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.tables.memberships)
                    .key_condition_expression("#u = :u")
                    .expression_attribute_names("#u", USER)
                    .expression_attribute_values(":u", s(user.as_str()))
                    .consistent_read(true)
            })
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<MembershipItem>(item).map(Membership::from))
            .collect()
    }

    /// An UpdateItem `SET #p = :seq` under `attribute_exists(user) AND #p < :seq`: a pointer
    /// never moves back, and a non-member never gets an item. The read pointer takes its chat
    /// count along in the same write.
    async fn advance(
        &self,
        conv: &ConversationId,
        user: &UserId,
        kind: ReceiptKind,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        let pointer = match kind {
            ReceiptKind::Delivered => DELIVERED,
            ReceiptKind::Read => READ,
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user, conv })?))
            .condition_expression("attribute_exists(#u) AND #p < :seq")
            .expression_attribute_names("#p", pointer)
            .expression_attribute_names("#u", USER)
            .expression_attribute_values(":seq", n(seq));
        update = match kind {
            ReceiptKind::Delivered => update.update_expression("SET #p = :seq"),
            ReceiptKind::Read => update
                .update_expression("SET #p = :seq, #rc = :chats")
                .expression_attribute_names("#rc", READ_CHATS)
                .expression_attribute_values(":chats", n(chats)),
        };
        applied(
            update
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    /// One UpdateItem of both pointers and the chat count, under `attribute_exists(user) AND
    /// delivered < :seq AND read < :seq`. Only when a later `delivered` ack got there first (the
    /// condition fails on it) does a second UpdateItem move `read` alone.
    async fn read_through(
        &self,
        conv: &ConversationId,
        user: &UserId,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        let both = applied(
            self.client
                .update_item()
                .table_name(&self.tables.memberships)
                .set_key(Some(to_item(&MembershipKey { user, conv })?))
                .update_expression("SET #d = :seq, #r = :seq, #rc = :chats")
                .condition_expression("attribute_exists(#u) AND #d < :seq AND #r < :seq")
                .expression_attribute_names("#d", DELIVERED)
                .expression_attribute_names("#r", READ)
                .expression_attribute_names("#rc", READ_CHATS)
                .expression_attribute_names("#u", USER)
                .expression_attribute_values(":seq", n(seq))
                .expression_attribute_values(":chats", n(chats))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )?;
        if both {
            return Ok(true);
        }
        self.advance(conv, user, ReceiptKind::Read, seq, chats)
            .await
    }

    /// An UpdateItem `SET muted_until` (or `REMOVE` it) under `attribute_exists(user)`: the
    /// write is the membership check. Not projected into the index, so no index write.
    async fn set_muted(
        &self,
        conv: &ConversationId,
        user: &UserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user, conv })?))
            .condition_expression("attribute_exists(#u)")
            .expression_attribute_names("#u", USER)
            .expression_attribute_names("#m", MUTED_UNTIL);
        let update = match until {
            Some(t) => update
                .update_expression("SET #m = :t")
                .expression_attribute_values(":t", codec::instant_value(t)),
            None => update.update_expression("REMOVE #m"),
        };
        applied(
            update
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    /// The group's item in the messages table: `G#<conv>`, sk 0.
    async fn put_group(&self, info: &GroupInfo) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(to_item(&GroupItem::from(info))?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// One consistent BatchGetItem per 100 groups.
    async fn groups(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, GroupInfo>, StoreError> {
        let keys = convs
            .iter()
            .map(|c| to_item(&group_key(c)))
            .collect::<Result<_, _>>()?;
        let items = self.batch_get(&self.tables.messages, keys, true).await?;
        items
            .into_iter()
            .map(|item| {
                let info = GroupInfo::try_from(from_item::<GroupItem>(item)?)?;
                Ok((info.conversation.clone(), info))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
