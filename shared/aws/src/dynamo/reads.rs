//! Adapter layer: the first read of a write, in one strongly consistent, cross-table
//! BatchGetItem: the [`WriteReads`] port.
//! - `send` and `ack`: the caller's membership (`memberships`), the conversation's head, the
//!   sender's idempotency key and the acked message (`messages`);
//!   In a 1:1 `send`, the two block records between its members (`memberships`).
//! - a group change: the group's metadata, roster and head, the caller's idempotency key
//!   (`messages`), the group counts of the users it would add (`presence`), whether each of
//!   them blocked the caller, and their membership of their 1:1 with the caller (whether the
//!   caller is a contact of theirs: `memberships`).

use super::DynamoStore;
use super::blocks::{BlockKey, pair_of};
use super::codec::{from_item, to_item};
use super::memberships::{GroupItem, MembershipItem, MembershipKey, group_key, roster_key};
use super::messages::{HeadItem, IdempotencyItem, LogKey, MessageItem};
use super::presence::{groups_of_item, presence_key};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use messenger::domain::{ConversationId, GroupInfo, Membership, UserId};
use messenger::ports::{GroupContext, GroupKeys, StoreError, WriteContext, WriteKeys, WriteReads};
use std::collections::HashSet;

#[async_trait]
impl WriteReads for DynamoStore {
    async fn read_for_write(
        &self,
        keys: WriteKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<WriteContext, StoreError> {
        let conv = keys.conversation;
        let membership_key = to_item(&MembershipKey {
            user: keys.user,
            conv,
        })?;
        let head = LogKey::head(conv);
        let idem = keys
            .client_msg_id
            .map(|cmid| LogKey::idempotency(keys.user, cmid));
        let message = keys
            .message
            .map(|seq| LogKey::message(conv, seq, self.bucket));
        let mut log_keys = vec![head.item()?];
        for key in idem.iter().chain(&message) {
            log_keys.push(key.item()?);
        }
        let mut member_keys = vec![membership_key];
        if let Some(other) = keys.other {
            member_keys.push(BlockKey::of(keys.user, other).item()?);
            member_keys.push(BlockKey::of(other, keys.user).item()?);
        }
        let t = &self.tables;
        let mut found = self
            .batch_get_tables(vec![
                (t.memberships.clone(), member_keys, true),
                (t.messages.clone(), log_keys, true),
            ])
            .await?;

        let mut out = WriteContext::default();
        for item in found.remove(&t.memberships).unwrap_or_default() {
            match pair_of(&item) {
                Some((blocker, _)) if &blocker == keys.user => out.blocks.by_me = true,
                Some(_) => out.blocks.by_them = true,
                None => {
                    out.membership = Some(Membership::from(from_item::<MembershipItem>(item)?));
                }
            }
        }
        for item in found.remove(&t.messages).unwrap_or_default() {
            if head.is_key_of(&item) {
                let head = from_item::<HeadItem>(item)?;
                (out.last_seq, out.chats) = (head.last_seq, head.chats);
            } else if idem.as_ref().is_some_and(|k| k.is_key_of(&item)) {
                // Same rule as the append's condition: a key whose message expired no longer
                // counts.
                let key = from_item::<IdempotencyItem>(item)?;
                out.sent = key.holds_at(now).then(|| key.sent_key());
            } else if message.as_ref().is_some_and(|k| k.is_key_of(&item)) {
                let item = from_item::<MessageItem>(item)?;
                out.message_chats = item.chats();
                let m = item.into_message(conv);
                out.message = m.expires_at.is_none_or(|e| e > now).then_some(m);
            }
        }
        Ok(out)
    }

    async fn read_for_group(
        &self,
        keys: GroupKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<GroupContext, StoreError> {
        let conv = keys.conversation;
        let (head, group, roster) = (LogKey::head(conv), group_key(conv), roster_key(conv));
        let idem = keys
            .client_msg_id
            .map(|cmid| LogKey::idempotency(keys.user, cmid));
        let mut log_keys = vec![head.item()?, group.item()?, roster.item()?];
        if let Some(key) = &idem {
            log_keys.push(key.item()?);
        }
        let distinct: HashSet<_> = keys.counts_of.iter().collect();
        let user_keys = distinct
            .into_iter()
            .map(presence_key)
            .collect::<Result<Vec<_>, _>>()?;
        // Whether each user the change adds blocked the caller.
        let block_keys = keys
            .counts_of
            .iter()
            .filter(|u| *u != keys.user)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|u| BlockKey::of(u, keys.user).item())
            .collect::<Result<Vec<_>, _>>()?;
        // Whether each of them has a 1:1 with the caller that is no request to them.
        let direct: Vec<(UserId, ConversationId)> = keys
            .counts_of
            .iter()
            .filter(|u| *u != keys.user)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|u| (u.clone(), ConversationId::direct(u, keys.user)))
            .collect();
        let mut block_keys = block_keys;
        for (user, conv) in &direct {
            block_keys.push(to_item(&MembershipKey { user, conv })?);
        }
        let t = &self.tables;
        let mut reads = vec![(t.messages.clone(), log_keys, true)];
        if !user_keys.is_empty() {
            reads.push((t.presence.clone(), user_keys, true));
        }
        if !block_keys.is_empty() {
            reads.push((t.memberships.clone(), block_keys, true));
        }
        let mut found = self.batch_get_tables(reads).await?;

        let mut out = GroupContext::default();
        let mut roster_item = None;
        for item in found.remove(&t.messages).unwrap_or_default() {
            if head.is_key_of(&item) {
                let head = from_item::<HeadItem>(item)?;
                (out.last_seq, out.chats) = (head.last_seq, head.chats);
            } else if group.is_key_of(&item) {
                out.info = Some(GroupInfo::try_from(from_item::<GroupItem>(item)?)?);
            } else if roster.is_key_of(&item) {
                roster_item = Some(item);
            } else if idem.as_ref().is_some_and(|k| k.is_key_of(&item)) {
                let key = from_item::<IdempotencyItem>(item)?;
                out.sent = key.holds_at(now).then(|| key.sent_key());
            }
        }
        out.members = self
            .roster_of(conv, roster_item, out.info.is_some())
            .await?
            .unwrap_or_default();
        out.groups_of = keys.counts_of.iter().map(|u| (u.clone(), 0)).collect();
        for item in found.remove(&t.presence).unwrap_or_default() {
            let (user, groups) = groups_of_item(item)?;
            out.groups_of.insert(user, groups);
        }
        for item in found.remove(&t.memberships).unwrap_or_default() {
            if let Some((blocker, _)) = pair_of(&item) {
                out.blocked_by.insert(blocker);
            } else {
                let m = Membership::from(from_item::<MembershipItem>(item)?);
                if !m.request.is_incoming() {
                    out.contacts.insert(m.user);
                }
            }
        }
        Ok(out)
    }
}
