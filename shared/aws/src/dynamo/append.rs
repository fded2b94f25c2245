//! Adapter layer: appending to a conversation's log — the one transaction that assigns a seq
//! and stores the message, and its retries. All the conditions that keep seqs gapless and sends
//! idempotent are here. An append's effects (membership changes, `effects.rs`) are extra
//! actions at the end of the same transaction, after the fixed ones.

use super::codec::{from_item, instant_value, n, to_item};
use super::messages::{
    CHATS, EXPIRES_AT, HeadItem, IdempotencyItem, LAST, LAST_SEQ, LogKey, MarkerItem, MessageItem,
    PK, PreviewItem,
};
use super::{DynamoStore, Failure, Item, backend, backoff, classify, corrupt};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem, Update};
use messenger::domain::{ConversationId, Head, Message, NewMessage, Seq};
use messenger::ports::{Append, Appended, Effects, GroupRefusal, StoreError};
use tokio::time::Instant;

/// Striped per-conversation locks: bounded memory, and two conversations share a stripe only
/// by hash collision.
#[derive(Debug)]
pub(super) struct AppendLocks(Vec<tokio::sync::Mutex<()>>);

impl AppendLocks {
    pub(super) fn new(stripes: usize) -> Self {
        Self((0..stripes).map(|_| tokio::sync::Mutex::new(())).collect())
    }

    pub(super) async fn lock(&self, conv: &ConversationId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(conv);
        self.0[(hash % self.0.len() as u64) as usize].lock().await
    }
}

/// Why the append transaction was cancelled, from its cancellation reasons.
#[derive(Debug, Default)]
struct Cancelled {
    /// Another sender took the head (or the message slot) first: a lost race.
    head: bool,
    /// The idempotency key exists: this send is stored already (by us or by an earlier try).
    idempotency: bool,
    /// Another transaction held one of our items.
    conflict: bool,
    /// The partition was throttled (`ThrottlingError`, `ProvisionedThroughputExceeded`).
    throttled: bool,
    /// An effect's condition failed: what it means.
    refused: Option<GroupRefusal>,
    /// Anything else (validation, item collection too large, a condition without a meaning):
    /// retrying cannot help.
    other: Vec<String>,
}

impl Cancelled {
    /// What to do about it when neither the idempotency key nor an effect decided it already.
    fn failure(&self) -> Failure {
        if !self.other.is_empty() {
            Failure::Permanent
        } else if self.throttled {
            Failure::Throttled
        } else {
            // A lost race for the head, or a conflict with another transaction.
            Failure::Race
        }
    }

    /// The effect's refusal, when it is the only reason: a refusal read together with a lost
    /// race, a conflict or throttling may come from a stale read, so that is tried again.
    fn refusal(&self) -> Option<GroupRefusal> {
        self.refused
            .clone()
            .filter(|_| !self.head && !self.conflict && !self.throttled && self.other.is_empty())
    }
}

/// Position of each action inside the append transaction (the head is 0).
const TX_MESSAGE: usize = 1;
const TX_IDEM: usize = 2;

/// The cancellation reasons of the transaction, by position: the fixed actions first, then the
/// effects' actions from `effects_at`, each with what its failed condition means.
fn read_cancellation(
    e: &TransactWriteItemsError,
    effects_at: usize,
    refusals: &[Option<GroupRefusal>],
) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e else {
        return None;
    };
    let mut c = Cancelled::default();
    for (i, r) in tc.cancellation_reasons().iter().enumerate() {
        let effect = i.checked_sub(effects_at).and_then(|k| refusals.get(k));
        match r.code() {
            None | Some("None") => {}
            // Another transaction held one of our items: the same race as a head conflict.
            Some("TransactionConflict") => c.conflict = true,
            // A hot conversation's partition: nothing was written, so it is safe to try again
            // (after a longer pause) — not a corrupt item.
            Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded") => {
                c.throttled = true
            }
            Some("ConditionalCheckFailed") => match effect {
                Some(Some(refusal)) => c.refused = Some(refusal.clone()),
                Some(None) => c.other.push(format!("effect action {i}: condition failed")),
                None if i == TX_IDEM => c.idempotency = true,
                // The head moved, or (reported with it) the message slot `prev + 1` is taken:
                // either way another sender got that seq first.
                None if i <= TX_MESSAGE => c.head = true,
                None => c.other.push(format!("action {i}: condition failed")),
            },
            Some(code) => c.other.push(format!("action {i}: {code}")),
        }
    }
    Some(c)
}

pub(super) fn put(table: &str, item: Item) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    Put::builder().table_name(table).set_item(Some(item))
}

/// The transaction's head update: from `prev` (0 before a conversation's first entry, when
/// there is no head item yet) to `next`, on the condition that nobody moved it in between.
pub(super) fn head_update(
    table: &str,
    conv: &ConversationId,
    prev: Seq,
    next: &Head,
) -> Result<TransactWriteItem, StoreError> {
    let mut set = format!("SET {LAST_SEQ} = :next, {CHATS} = :chats");
    let mut head = Update::builder()
        .table_name(table)
        .set_key(Some(LogKey::head(conv).item()?))
        .expression_attribute_values(":next", n(next.last_seq))
        .expression_attribute_values(":chats", n(next.chats));
    if let Some(last) = &next.last {
        // `last` is a DynamoDB reserved word: it needs a name placeholder.
        set.push_str(", #last = :last");
        let json = serde_json::to_string(&PreviewItem::from(last))
            .map_err(|e| corrupt(format!("cannot encode a preview: {e}")))?;
        head = head
            .expression_attribute_names("#last", LAST)
            .expression_attribute_values(":last", super::codec::s(json));
    }
    // A head item exists from the first entry on (its last_seq is then at least 1).
    head = if prev > 0 {
        head.condition_expression(format!("{LAST_SEQ} = :prev"))
            .expression_attribute_values(":prev", n(prev))
    } else {
        head.condition_expression(format!("attribute_not_exists({PK})"))
    };
    let update = head.update_expression(set).build().map_err(backend)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl DynamoStore {
    /// A consistent read of the head and the idempotency key (one BatchGetItem), then one
    /// TransactWriteItems that moves the head from `prev` to `prev + 1` and writes the message,
    /// its idempotency key and the effects. All or nothing, so a sender that dies at any point
    /// leaves no hole. Retried with jittered backoff inside the retry budget: a lost race for
    /// the head, a conflict, throttling (plain or inside the cancelled transaction), and a
    /// transaction whose outcome is unknown (timeout, 5xx) — the next read then finds out
    /// whether it committed. `seen` is the head a caller has just read (with no idempotency key
    /// found): the first attempt uses it instead of reading again (the transaction's conditions
    /// still check both). A key that already stored this request answers with its message; one
    /// that stored another request is a conflict; an effect whose condition fails is a refusal.
    /// None of those stores anything.
    ///
    /// Every try of this call marks the idempotency key with one random token. A retried
    /// transaction whose first answer was lost (the SDK retries with the same client request
    /// token, and DynamoDB answers an already applied one with success; an emulator or a later
    /// try of ours finds the key taken instead) is recognised as this call's own write by the
    /// token: stored once, answered as stored (with its effects applied), not as a duplicate.
    pub(super) async fn append_message(
        &self,
        msg: NewMessage,
        effects: &Effects,
        mut seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        let _queued = match &self.append_locks {
            Some(locks) => Some(locks.lock(&msg.conversation).await),
            None => None,
        };
        let head_key = LogKey::head(&msg.conversation);
        let idem_key = LogKey::idempotency(&msg.from, &msg.client_msg_id);
        let keys = vec![head_key.item()?, idem_key.item()?];
        let token = messenger::domain::random_hex(8);
        let deadline = Instant::now() + self.retry_budget;
        let mut last = String::from("no attempt");
        for attempt in 0..self.max_attempts {
            let prev = match seen.take() {
                Some(prev) => prev,
                None => {
                    let items = self
                        .batch_get(&self.tables.messages, keys.clone(), true)
                        .await?;
                    let (mut head, mut idem) = (None, None);
                    for item in items {
                        if head_key.is_key_of(&item) {
                            head = Some(from_item::<HeadItem>(item)?);
                        } else if idem_key.is_key_of(&item) {
                            idem = Some(from_item::<IdempotencyItem>(item)?);
                        }
                    }
                    // Same rule as the transaction's condition: an expired key no longer counts.
                    if let Some(idem) = idem.filter(|i| i.holds_at(msg.sent_at)) {
                        return self.answer_stored_key(&msg, &idem, &token).await;
                    }
                    head.as_ref().map(HeadItem::head).unwrap_or_default()
                }
            };
            let (appended, mut actions) = self.append_transaction(&msg, &prev, &token)?;
            let effects_at = actions.len();
            let (effect_actions, refusals): (Vec<_>, Vec<_>) = self
                .effect_actions(&msg, effects, prev.last_seq + 1, appended.chats)?
                .into_iter()
                .unzip();
            actions.extend(effect_actions);
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match r {
                Ok(_) => return Ok(Append::Stored(appended)),
                Err(e) => e,
            };
            let failure = match err
                .as_service_error()
                .and_then(|e| read_cancellation(e, effects_at, &refusals))
            {
                Some(c) if c.idempotency => {
                    // Stored already: by a concurrent retry of the same send, or by one of our
                    // own tries whose answer was lost.
                    let idem = self.idempotency_item(&idem_key).await?;
                    return self.answer_stored_key(&msg, &idem, &token).await;
                }
                Some(c) => {
                    if let Some(refused) = c.refusal() {
                        return Ok(Append::Refused(refused));
                    }
                    if c.failure() == Failure::Permanent {
                        return Err(corrupt(format!(
                            "append to {} cancelled: {}",
                            msg.conversation,
                            c.other.join(", ")
                        )));
                    }
                    last = format!("cancelled: {c:?}");
                    c.failure()
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
            tracing::debug!(conversation = %msg.conversation, attempt, ?failure, "append retried");
            tokio::time::sleep(backoff(attempt, failure)).await;
        }
        Err(StoreError::Backend(
            format!(
                "append to {} gave up after {} attempts or {:?} (last: {last})",
                msg.conversation, self.max_attempts, self.retry_budget
            )
            .into(),
        ))
    }

    /// The answer to an append whose key is stored: this call's own write when the key carries
    /// its `token` (a try whose answer was lost), else the original for the same request, a
    /// conflict for another one.
    async fn answer_stored_key(
        &self,
        msg: &NewMessage,
        idem: &IdempotencyItem,
        token: &str,
    ) -> Result<Append, StoreError> {
        if idem.written_by(token) {
            return Ok(Append::Stored(self.original(idem).await?));
        }
        let key = idem.sent_key();
        if !key.is_same_request(&msg.conversation, &msg.digest) {
            return Ok(Append::Conflict(key));
        }
        Ok(Append::Duplicate(self.original(idem).await?))
    }

    /// The idempotency item of a send, read consistently.
    async fn idempotency_item(&self, key: &LogKey) -> Result<IdempotencyItem, StoreError> {
        self.get_item(&self.tables.messages, key.item()?)
            .await?
            .ok_or_else(|| corrupt("idempotency key vanished"))
    }

    /// The message an idempotency item points to (the original of a duplicate send).
    async fn original(&self, idem: &IdempotencyItem) -> Result<Appended, StoreError> {
        let key = LogKey::message(&idem.conv, idem.seq, self.bucket);
        let item: MessageItem = self
            .get_item(&self.tables.messages, key.item()?)
            .await?
            .ok_or_else(|| {
                corrupt(format!(
                    "{}#{} named by an idempotency key is missing",
                    idem.conv, idem.seq
                ))
            })?;
        Ok(Appended {
            chats: item.chats(),
            message: item.into_message(&idem.conv),
        })
    }

    /// The transaction that stores `msg` as the seq after `prev` (the head as read: the default
    /// before the first entry), and the result it gives.
    fn append_transaction(
        &self,
        msg: &NewMessage,
        prev: &Head,
        token: &str,
    ) -> Result<(Appended, Vec<TransactWriteItem>), StoreError> {
        let t = &self.tables.messages;
        let message = msg.clone().stored_as(prev.last_seq + 1);
        let next = prev.appended(&message);
        let not_taken = format!("attribute_not_exists({PK})");
        // Order matters: `read_cancellation` reads reasons by position (head, TX_MESSAGE, TX_IDEM).
        let mut actions = vec![
            head_update(t, &msg.conversation, prev.last_seq, &next)?,
            TransactWriteItem::builder()
                .put(
                    put(
                        t,
                        to_item(&MessageItem::new(&message, self.bucket, next.chats))?,
                    )
                    .condition_expression(&not_taken)
                    .build()
                    .map_err(backend)?,
                )
                .build(),
            // An idempotency key past its window (or its message's expiry) no longer blocks a new send.
            TransactWriteItem::builder()
                .put(
                    put(
                        t,
                        to_item(&IdempotencyItem::new(&message, &msg.digest, token))?,
                    )
                    .condition_expression(format!("{not_taken} OR {EXPIRES_AT} <= :sent"))
                    .expression_attribute_values(":sent", instant_value(msg.sent_at))
                    .build()
                    .map_err(backend)?,
                )
                .build(),
        ];
        if let Some(marker) = self.marker(&message) {
            actions.push(marker?);
        }
        let appended = Appended {
            message,
            chats: next.chats,
        };
        Ok((appended, actions))
    }

    /// The continuation marker `m` writes when it is the first entry of a bucket: at the end of
    /// the previous bucket, without TTL, so readers know to go on even when every message
    /// there has expired.
    pub(super) fn marker(&self, m: &Message) -> Option<Result<TransactWriteItem, StoreError>> {
        if !m.seq.is_multiple_of(self.bucket) {
            return None;
        }
        let marker = MarkerItem::new(&m.conversation, m.seq, self.bucket);
        let put = || -> Result<TransactWriteItem, StoreError> {
            let p = put(&self.tables.messages, to_item(&marker)?)
                .build()
                .map_err(backend)?;
            Ok(TransactWriteItem::builder().put(p).build())
        };
        Some(put())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    /// A cancellation with these reason codes, one per action.
    fn cancelled(codes: &[&str]) -> Cancelled {
        let reasons = codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect();
        let tc = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .build();
        read_cancellation(
            &TransactWriteItemsError::TransactionCanceledException(tc),
            3,
            &[Some(GroupRefusal::GroupChanged)],
        )
        .expect("a cancellation")
    }

    #[test]
    fn a_throttled_transaction_is_retried_not_taken_for_a_corrupt_item() {
        for code in ["ThrottlingError", "ProvisionedThroughputExceeded"] {
            let c = cancelled(&[code, "None", "None"]);
            assert_eq!(c.failure(), Failure::Throttled, "{code}");
            assert!(c.other.is_empty());
        }
    }

    #[test]
    fn lost_races_and_conflicts_are_retried_soon_and_the_idempotency_key_decides() {
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "None", "None"]).failure(),
            Failure::Race
        );
        assert_eq!(
            cancelled(&["None", "TransactionConflict", "None"]).failure(),
            Failure::Race
        );
        let stored = cancelled(&[
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
        ]);
        assert!(stored.idempotency && stored.head);
        let wrong = cancelled(&["None", "ValidationError", "None"]);
        assert_eq!(wrong.failure(), Failure::Permanent);
    }

    #[test]
    fn an_effects_refusal_counts_only_when_nothing_else_failed() {
        let refused = cancelled(&["None", "None", "None", "ConditionalCheckFailed"]);
        assert_eq!(refused.refusal(), Some(GroupRefusal::GroupChanged));
        // With a lost race or a conflict, the refusal may come from a stale read: retried.
        for race in [
            [
                "ConditionalCheckFailed",
                "None",
                "None",
                "ConditionalCheckFailed",
            ],
            [
                "TransactionConflict",
                "None",
                "None",
                "ConditionalCheckFailed",
            ],
            ["ThrottlingError", "None", "None", "ConditionalCheckFailed"],
        ] {
            let c = cancelled(&race);
            assert_eq!(c.refusal(), None, "{race:?}");
            assert_ne!(c.failure(), Failure::Permanent, "{race:?}");
        }
    }
}
