//! Adapter layer: amending a message (edit, delete, reaction) — the one transaction that
//! appends the entry recording the change and rewrites the message, and its retries. The change
//! itself is computed by the domain ([`Amendment::apply`]) on the message as read; the
//! transaction's conditions make sure nothing moved in between.

use super::append::{head_update, put};
use super::codec::{from_item, n, to_item};
use super::messages::{HeadItem, LogKey, MessageItem, PK, REV};
use super::{DynamoStore, backend, backoff, corrupt};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};
use messenger::domain::{Amendment, Head, Message};
use messenger::ports::{Amended, StoreError};

/// Whether a cancelled amend transaction lost a race (retry) or failed otherwise.
fn lost_race(e: &TransactWriteItemsError) -> Option<Result<(), String>> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e else {
        return None;
    };
    let other: Vec<String> = tc
        .cancellation_reasons()
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r.code() {
            None | Some("None" | "ConditionalCheckFailed" | "TransactionConflict") => None,
            Some(code) => Some(format!("action {i}: {code}")),
        })
        .collect();
    Some(if other.is_empty() {
        Ok(())
    } else {
        Err(other.join(", "))
    })
}

impl DynamoStore {
    /// A consistent read of the head and the message (one BatchGetItem), the change computed
    /// on that state, then one TransactWriteItems: the head moves from `prev` to `prev + 1`, the
    /// entry is put at `prev + 1`, and the message is rewritten on the condition that its `rev`
    /// is still the one read. Another append or amendment in between cancels it, and it is
    /// retried from the read with jittered backoff.
    pub(super) async fn amend_message(&self, a: &Amendment) -> Result<Amended, StoreError> {
        let conv = &a.conversation;
        let _queued = match &self.append_locks {
            Some(locks) => Some(locks.lock(conv).await),
            None => None,
        };
        let head_key = LogKey::head(conv);
        let message_key = LogKey::message(conv, a.seq, self.bucket);
        let keys = vec![head_key.item()?, message_key.item()?];
        for attempt in 0..self.max_attempts {
            let items = self
                .batch_get(&self.tables.messages, keys.clone(), true)
                .await?;
            let (mut head, mut current) = (None, None);
            for item in items {
                if head_key.is_key_of(&item) {
                    head = Some(from_item::<HeadItem>(item)?);
                } else if message_key.is_key_of(&item) {
                    current = Some(from_item::<MessageItem>(item)?);
                }
            }
            let prev = head.as_ref().map(HeadItem::head).unwrap_or_default();
            let Some((current, chats)) = current
                .map(|i| (i.chats(), i))
                .map(|(chats, i)| (i.into_message(conv), chats))
                .filter(|(m, _)| m.expires_at.is_none_or(|t| t > a.at))
            else {
                return Ok(Amended::Missing {
                    head: prev.last_seq,
                });
            };
            let (mut message, event) = match a.apply(&current) {
                Err(refusal) => return Ok(Amended::Refused(refusal)),
                Ok(None) => return Ok(Amended::Unchanged { message: current }),
                Ok(Some(change)) => change,
            };
            let entry = a.entry(event, prev.last_seq + 1);
            message.rev = Some(entry.seq);
            let next = prev.amended(&entry, &message);
            let actions =
                self.amend_transaction(head.as_ref(), &next, &current, &entry, (&message, chats))?;
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(Amended::Applied {
                        entry: Box::new(entry),
                        removed: current.files_removed_by(&message),
                        message,
                    });
                }
                Err(e) => e,
            };
            match err.as_service_error().and_then(lost_race) {
                Some(Ok(())) => {
                    tracing::debug!(conversation = %conv, attempt, "amendment lost a race");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Some(Err(why)) => {
                    return Err(corrupt(format!("amend of {conv} cancelled: {why}")));
                }
                None => return Err(backend(err)),
            }
        }
        Err(StoreError::Backend(
            format!("amend of {conv} lost the race {} times", self.max_attempts).into(),
        ))
    }

    /// Head update, the entry's put, and the message's rewrite (conditional on the `rev` it
    /// was read with), plus a continuation marker when the entry opens a bucket.
    fn amend_transaction(
        &self,
        head: Option<&HeadItem>,
        next: &Head,
        current: &Message,
        entry: &Message,
        (message, message_chats): (&Message, u64),
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let t = &self.tables.messages;
        let not_taken = format!("attribute_not_exists({PK})");
        let entry_item = put(
            t,
            to_item(&MessageItem::new(entry, self.bucket, next.chats))?,
        )
        .condition_expression(not_taken)
        .build()
        .map_err(backend)?;
        let rewrite = put(
            t,
            to_item(&MessageItem::new(message, self.bucket, message_chats))?,
        );
        let rewrite = match current.rev {
            Some(rev) => rewrite
                .condition_expression(format!("attribute_exists({PK}) AND {REV} = :rev"))
                .expression_attribute_values(":rev", n(rev)),
            None => rewrite.condition_expression(format!(
                "attribute_exists({PK}) AND attribute_not_exists({REV})"
            )),
        }
        .build()
        .map_err(backend)?;
        let mut actions = vec![
            head_update(t, &entry.conversation, head.map_or(0, |h| h.last_seq), next)?,
            TransactWriteItem::builder().put(entry_item).build(),
            TransactWriteItem::builder().put(rewrite).build(),
        ];
        if let Some(marker) = self.marker(entry) {
            actions.push(marker?);
        }
        Ok(actions)
    }
}
