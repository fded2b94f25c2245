//! Adapter layer: the first read of `send` and `ack` — the caller's membership (`memberships`),
//! the conversation's head, the sender's idempotency key and the acked message (`messages`) —
//! in one strongly consistent, cross-table BatchGetItem: the [`WriteReads`] port.

use super::DynamoStore;
use super::codec::{from_item, to_item};
use super::memberships::{MembershipItem, MembershipKey};
use super::messages::{HeadItem, IdempotencyItem, LogKey, MessageItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use messenger::domain::Membership;
use messenger::ports::{StoreError, WriteContext, WriteKeys, WriteReads};

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
        let t = &self.tables;
        let mut found = self
            .batch_get_tables(vec![
                (t.memberships.clone(), vec![membership_key], true),
                (t.messages.clone(), log_keys, true),
            ])
            .await?;

        let mut out = WriteContext::default();
        if let Some(item) = found.remove(&t.memberships).and_then(|mut v| v.pop()) {
            out.membership = Some(Membership::from(from_item::<MembershipItem>(item)?));
        }
        for item in found.remove(&t.messages).unwrap_or_default() {
            if head.is_key_of(&item) {
                let head = from_item::<HeadItem>(item)?;
                (out.last_seq, out.chats) = (head.last_seq, head.chats);
            } else if idem.as_ref().is_some_and(|k| k.is_key_of(&item)) {
                // Same rule as the append's condition: a key whose message expired no longer
                // counts.
                out.already_sent = from_item::<IdempotencyItem>(item)?.holds_at(now);
            } else if message.as_ref().is_some_and(|k| k.is_key_of(&item)) {
                let item = from_item::<MessageItem>(item)?;
                out.message_chats = item.chats();
                let m = item.into_message(conv);
                out.message = m.expires_at.is_none_or(|e| e > now).then_some(m);
            }
        }
        Ok(out)
    }
}
