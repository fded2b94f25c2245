//! Adapter layer: amending a message (edit, delete, reaction) — the one transaction that
//! appends the entry recording the change and rewrites the message, and its retries. The change
//! itself is computed by the domain ([`Amendment::apply`]) on the message as read; the
//! transaction's conditions make sure nothing moved in between.

use super::append::{head_update, put};
use super::codec::{from_item, n, to_item};
use super::messages::{HeadItem, LogKey, MessageItem, PK, REV};
use super::{DynamoStore, Failure, backend, backoff, cancellation, classify, corrupt};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};
use messenger::domain::{Amendment, Head, Message};
use messenger::ports::{Amended, StoreError};
use tokio::time::Instant;

impl DynamoStore {
    /// A consistent read of the head and the message (one BatchGetItem), the change computed
    /// on that state, then one TransactWriteItems: the head moves from `prev` to `prev + 1`, the
    /// entry is put at `prev + 1`, and the message is rewritten on the condition that its `rev`
    /// is still the one read. Another append or amendment in between cancels it, and it is
    /// retried from the read with jittered backoff, as are throttling and a transaction whose
    /// outcome is unknown (timeout, 5xx), inside the store's retry budget.
    ///
    /// A try whose answer was lost may have committed (the SDK's own retry of it then fails on
    /// the conditions, looking like a lost race). So every retry's read also asks for the entry
    /// slots of the earlier tries: one holding an entry with this amendment's `client_msg_id`
    /// (unique per call) is this call's own write, answered as applied — not as `Unchanged`,
    /// which is what recomputing the change on the changed message would say.
    pub(super) async fn amend_message(&self, a: &Amendment) -> Result<Amended, StoreError> {
        let conv = &a.conversation;
        let _queued = match &self.append_locks {
            Some(locks) => Some(locks.lock(conv).await),
            None => None,
        };
        let head_key = LogKey::head(conv);
        let message_key = LogKey::message(conv, a.seq, self.bucket);
        let mut keys = vec![head_key.item()?, message_key.item()?];
        let deadline = Instant::now() + self.retry_budget;
        let mut last = String::from("no attempt");
        // The entries of earlier tries, with their keys: any of them may have committed.
        let mut tried: Vec<(LogKey, Message)> = Vec::new();
        // The files the tries took off the message (a deletion's), for the caller to delete.
        let mut removed = Vec::new();
        for attempt in 0..self.max_attempts {
            let items = self
                .batch_get(&self.tables.messages, keys.clone(), true)
                .await?;
            let (mut head, mut current, mut mine) = (None, None, None);
            for item in items {
                if head_key.is_key_of(&item) {
                    head = Some(from_item::<HeadItem>(item)?);
                } else if message_key.is_key_of(&item) {
                    current = Some(from_item::<MessageItem>(item)?);
                } else if let Some((_, entry)) = tried.iter().find(|(k, _)| k.is_key_of(&item)) {
                    let stored = from_item::<MessageItem>(item)?.into_message(conv);
                    if stored.from == entry.from && stored.client_msg_id == entry.client_msg_id {
                        mine = Some(entry.clone());
                    }
                }
            }
            if let (Some(entry), Some(current)) = (mine, &current) {
                // An earlier try committed; its answer was lost.
                return Ok(Amended::Applied {
                    entry: Box::new(entry),
                    message: current.clone().into_message(conv),
                    removed,
                });
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
            let taken = current.files_removed_by(&message);
            if !taken.is_empty() {
                removed = taken;
            }
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
                        removed,
                        message,
                    });
                }
                Err(e) => e,
            };
            let failure = match err.as_service_error().and_then(cancellation) {
                Some(Err(why)) => {
                    return Err(corrupt(format!("amend of {conv} cancelled: {why}")));
                }
                Some(Ok(failure)) => {
                    last = format!("cancelled: {failure:?}");
                    failure
                }
                None => {
                    last = format!(
                        "{}",
                        aws_smithy_types::error::display::DisplayErrorContext(&err)
                    );
                    match classify(&err) {
                        Failure::Permanent => return Err(backend(err)),
                        failure => failure,
                    }
                }
            };
            if Instant::now() >= deadline {
                break;
            }
            let slot = LogKey::message(conv, entry.seq, self.bucket);
            // Two tries from the same head aim at the same slot (BatchGetItem refuses a key
            // twice); the first of them written is the one a read finds.
            if tried.iter().all(|(k, _)| *k != slot) {
                keys.push(slot.item()?);
                tried.push((slot, entry));
            }
            tracing::debug!(conversation = %conv, attempt, ?failure, "amendment retried");
            tokio::time::sleep(backoff(attempt, failure)).await;
        }
        Err(StoreError::Backend(
            format!(
                "amend of {conv} gave up after {} attempts or {:?} (last: {last})",
                self.max_attempts, self.retry_budget
            )
            .into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    /// What a cancellation with these reason codes (one per action) says.
    fn cancelled(codes: &[&str]) -> Result<Failure, String> {
        let reasons = codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect();
        let tc = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .build();
        cancellation(&TransactWriteItemsError::TransactionCanceledException(tc))
            .expect("a cancellation")
    }

    #[test]
    fn a_throttled_or_racing_amend_is_retried_and_a_wrong_one_is_not() {
        assert_eq!(
            cancelled(&["ThrottlingError", "None", "None"]),
            Ok(Failure::Throttled)
        );
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "None", "ConditionalCheckFailed"]),
            Ok(Failure::Race)
        );
        assert_eq!(
            cancelled(&["None", "TransactionConflict", "None"]),
            Ok(Failure::Race)
        );
        assert!(cancelled(&["None", "None", "ValidationError"]).is_err());
    }
}
