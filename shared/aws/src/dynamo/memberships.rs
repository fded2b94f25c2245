//! Adapter layer: the `memberships` table (pk `user`, sk `conv`; index `by_conversation`), and
//! in the `messages` table the group metadata items `G#<conv>` and the group rosters `R#<conv>`
//! (every member with role and join point, in one item, so the member list is one strongly
//! consistent read): the [`Conversations`] port. Memberships are written only by an append's
//! effects (`effects.rs`), atomically with the event that records them.

use super::codec::{self, from_item, n, s, to_item};
use super::messages::LogKey;
use super::{DynamoStore, Failure, Item, USER, applied, cancellation, classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use messenger::domain::{
    ConversationId, GroupInfo, Member, Membership, ReceiptKind, RequestState, Role, Seq, UserId,
};
use messenger::ports::{Conversations, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use tokio::time::Instant;

/// The memberships index that answers "members of a conversation" (eventually consistent).
pub const BY_CONVERSATION: &str = "by_conversation";
/// The sort key (and the index's partition key): the conversation id.
pub(super) const CONV: &str = "conv";
pub(super) const ROLE: &str = "role";
pub(super) const FROM_SEQ: &str = "from_seq";
pub(super) const JOINED_AT: &str = "joined_at";
pub(super) const DELIVERED: &str = "delivered";
pub(super) const READ: &str = "read";
/// The chat count at the read pointer (unread = the head's `chats` minus this).
const READ_CHATS: &str = "read_chats";
/// No pushes until then (absent: not muted).
const MUTED_UNTIL: &str = "muted_until";
/// The membership's standing as a message request (absent: accepted).
pub(super) const REQUEST: &str = "request";
/// What `by_conversation` projects besides the keys: what the member list shows. Not the
/// pointers, so an ack never writes to the index.
pub(super) const MEMBER_LIST: [&str; 3] = [ROLE, FROM_SEQ, JOINED_AT];
/// Prefix of a group's metadata item in the messages table.
const GROUP: &str = "G#";
/// Prefix of a group's roster item in the messages table.
const ROSTER: &str = "R#";
/// The roster's map of members: user id → [`RosterEntry`].
pub(super) const MEMBERS: &str = "members";
/// A group's metadata: its name (renamed by `SET name`).
pub(super) const NAME: &str = "name";

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
    #[serde(default, skip_serializing_if = "is_accepted")]
    request: RequestState,
}

/// Accepted memberships (all of them before message requests existed) store no `request`.
fn is_accepted(r: &RequestState) -> bool {
    *r == RequestState::Accepted
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

/// A group's members: `R#<conv>`, sk 0, in the messages table. Written with every membership
/// change (in the change's transaction), so it always agrees with the membership items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RosterItem {
    pk: String,
    sk: Seq,
    members: BTreeMap<UserId, RosterEntry>,
}

/// One member in a roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RosterEntry {
    role: Role,
    from_seq: Seq,
    #[serde(with = "codec::instant")]
    joined_at: DateTime<Utc>,
}

impl RosterItem {
    /// The roster of `conv` with these members.
    pub(super) fn new<'a>(
        conv: &ConversationId,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> Self {
        let LogKey { pk, sk } = roster_key(conv);
        Self {
            pk,
            sk,
            members: members
                .into_iter()
                .map(|m| (m.user.clone(), RosterEntry::from(m)))
                .collect(),
        }
    }

    /// The members, in user order.
    pub(super) fn into_members(self) -> Vec<Member> {
        self.members
            .into_iter()
            .map(|(user, e)| Member {
                user,
                role: e.role,
                joined_at: e.joined_at,
                from_seq: e.from_seq,
            })
            .collect()
    }
}

impl From<&Member> for RosterEntry {
    fn from(m: &Member) -> Self {
        Self {
            role: m.role,
            from_seq: m.from_seq,
            joined_at: m.joined_at,
        }
    }
}

/// A roster entry as an expression value (`SET members.#u = :m`).
pub(super) fn roster_entry(
    m: &Member,
) -> Result<aws_sdk_dynamodb::types::AttributeValue, StoreError> {
    codec::value(&RosterEntry::from(m))
}

/// The key of one membership.
#[derive(Serialize)]
pub(super) struct MembershipKey<'a> {
    pub(super) user: &'a UserId,
    pub(super) conv: &'a ConversationId,
}

/// A group's metadata: `G#<conv>`, sk 0, in the messages table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct GroupItem {
    pk: String,
    sk: Seq,
    name: String,
    created_by: UserId,
    #[serde(with = "codec::instant")]
    created_at: DateTime<Utc>,
}

pub(super) fn group_key(conv: &ConversationId) -> LogKey {
    LogKey {
        pk: format!("{GROUP}{conv}"),
        sk: 0,
    }
}

pub(super) fn roster_key(conv: &ConversationId) -> LogKey {
    LogKey {
        pk: format!("{ROSTER}{conv}"),
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
            request: m.request,
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
            request: i.request,
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

impl DynamoStore {
    /// A group's members from its roster item (`found`, read by the caller), or, for a group
    /// created before rosters existed (its metadata item `group_exists` but no roster), from the
    /// `by_conversation` index, written as its roster so every later change keeps it. `None`
    /// when there is no such group.
    pub(super) async fn roster_of(
        &self,
        conv: &ConversationId,
        found: Option<Item>,
        group_exists: bool,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        if let Some(item) = found {
            return Ok(Some(from_item::<RosterItem>(item)?.into_members()));
        }
        if !group_exists {
            return Ok(None);
        }
        let mut members = self.members_from_index(conv).await?;
        members.sort_by(|a, b| a.user.cmp(&b.user));
        let roster = RosterItem::new(conv, &members);
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(to_item(&roster)?))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if !applied(r)? {
            // Written by someone else meanwhile (the same backfill, or a change after it).
            return Box::pin(self.members(conv)).await.map(Some);
        }
        tracing::info!(conversation = %conv, members = members.len(), "roster written from the index (a group from before rosters)");
        Ok(Some(members))
    }

    /// A Query of the `by_conversation` index (eventually consistent): only for groups from
    /// before rosters existed, once.
    async fn members_from_index(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError> {
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
    async fn membership(
        &self,
        conv: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let key = to_item(&MembershipKey { user, conv })?;
        let item: Option<MembershipItem> = self.get_item(&self.tables.memberships, key).await?;
        Ok(item.map(Membership::from))
    }

    /// A group: its roster item, one strongly consistent GetItem (a group from before rosters:
    /// its index, once, see [`DynamoStore::roster_of`]; no group at all: a second GetItem). A 1:1 conversation: its two members'
    /// items, one consistent BatchGetItem.
    async fn members(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError> {
        if let Some((a, b)) = conv.direct_members() {
            let keys = [&a, &b]
                .into_iter()
                .map(|user| to_item(&MembershipKey { user, conv }))
                .collect::<Result<Vec<_>, _>>()?;
            let mut members = self
                .batch_get(&self.tables.memberships, keys, true)
                .await?
                .into_iter()
                .map(|item| {
                    from_item::<MembershipItem>(item).map(|m| Member::from(&Membership::from(m)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            members.sort_by(|x, y| x.user.cmp(&y.user));
            members.dedup_by(|x, y| x.user == y.user);
            return Ok(members);
        }
        let roster = self
            .get_consistent(&self.tables.messages, roster_key(conv).item()?)
            .await?;
        // No roster: a group from before rosters (it has metadata), or none at all.
        let group = match roster {
            Some(_) => true,
            None => self
                .get_consistent(&self.tables.messages, group_key(conv).item()?)
                .await?
                .is_some(),
        };
        Ok(self
            .roster_of(conv, roster, group)
            .await?
            .unwrap_or_default())
    }

    /// The member list, then every member's item (one BatchGetItem per 100, eventually
    /// consistent): a pull, so it may lag an ack by a moment.
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
                    // Past the user's block records (`blocks.rs`), which sort first.
                    .key_condition_expression("#u = :u AND #c >= :first")
                    .expression_attribute_names("#u", USER)
                    .expression_attribute_names("#c", CONV)
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":first", s(super::blocks::FIRST_CONV))
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

    /// One TransactWriteItems of one or two conditional Updates (`REMOVE request` for an
    /// accepted standing, `SET request` otherwise).
    async fn set_request(
        &self,
        conv: &ConversationId,
        user: &UserId,
        state: RequestState,
        peer: Option<(&UserId, RequestState)>,
    ) -> Result<bool, StoreError> {
        let mut actions = Vec::with_capacity(2);
        for (u, state) in [(user, state)].into_iter().chain(peer) {
            let update = Update::builder()
                .table_name(&self.tables.memberships)
                .set_key(Some(to_item(&MembershipKey { user: u, conv })?))
                .condition_expression("attribute_exists(#u)")
                .expression_attribute_names("#u", USER)
                .expression_attribute_names("#rq", REQUEST);
            let update = match state {
                RequestState::Accepted => update.update_expression("REMOVE #rq"),
                other => update
                    .update_expression("SET #rq = :rq")
                    .expression_attribute_values(":rq", codec::value(&other)?),
            };
            let update = update.build().map_err(super::backend)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        // Retried like every write here (throttling, a conflicting transaction, no usable
        // answer) inside the store's budget: setting a standing twice is the same as once.
        let deadline = Instant::now() + self.retry_budget;
        let mut attempt = 0;
        loop {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match r {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            let failure = match err.as_service_error() {
                // A membership's condition failed: the standing is refused, not raced.
                Some(TransactWriteItemsError::TransactionCanceledException(tc))
                    if tc
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    return Ok(false);
                }
                Some(cancelled @ TransactWriteItemsError::TransactionCanceledException(_)) => {
                    match cancellation(cancelled) {
                        Some(Ok(failure)) => failure,
                        _ => return Err(super::backend(err)),
                    }
                }
                _ => match classify(&err) {
                    Failure::Permanent => return Err(super::backend(err)),
                    failure => failure,
                },
            };
            if Instant::now() >= deadline {
                return Err(super::backend(err));
            }
            tokio::time::sleep(super::backoff(attempt, failure)).await;
            attempt += 1;
        }
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
