//! Adapter layer: appending to a conversation's log — the one transaction that assigns a seq
//! and stores the message, and its retries. All the conditions that keep seqs gapless and sends
//! idempotent are here. An append's effects (membership changes, `effects.rs`) are extra
//! actions at the end of the same transaction, after the fixed ones.

use super::codec::{from_item, instant_value, n, to_item};
use super::messages::{
    CHATS, EXPIRES_AT, HeadItem, IdempotencyItem, LAST, LAST_SEQ, LogKey, MarkerItem, MessageItem,
    PK, PreviewItem,
};
use super::{DynamoStore, Item, backend, backoff, corrupt};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem, Update};
use messenger::domain::{ConversationId, Head, Message, NewMessage, Seq};
use messenger::ports::{Append, Appended, Effects, GroupRefusal, StoreError};

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

/// Which parts of the append transaction failed (from its cancellation reasons).
#[derive(Debug, Default)]
struct Cancelled {
    head: bool,
    idempotency: bool,
    /// An effect's condition failed: what it means.
    refused: Option<GroupRefusal>,
    other: Vec<String>,
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
            Some("TransactionConflict") => c.head = true,
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
    /// leaves no hole; a lost race on the head is retried with jittered backoff. `seen` is the
    /// head a caller has just read (with no idempotency key found): the first attempt uses it
    /// instead of reading again (the transaction's conditions still check both). A key that
    /// already stored this request answers with its message; one that stored another request is
    /// a conflict; an effect whose condition fails is a refusal. None of those stores anything.
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
                        return self.answer_stored_key(&msg, &idem).await;
                    }
                    head.as_ref().map(HeadItem::head).unwrap_or_default()
                }
            };
            let (appended, mut actions) = self.append_transaction(&msg, &prev)?;
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
            let Some(cancelled) = err
                .as_service_error()
                .and_then(|e| read_cancellation(e, effects_at, &refusals))
            else {
                return Err(backend(err));
            };
            if cancelled.idempotency {
                // A concurrent retry of the same send won: answer with its message.
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.tables.messages)
                    .set_key(Some(idem_key.item()?))
                    .consistent_read(true)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(backend)?;
                let idem = out
                    .item
                    .ok_or_else(|| corrupt("idempotency key vanished"))?;
                return self.answer_stored_key(&msg, &from_item(idem)?).await;
            }
            if !cancelled.other.is_empty() {
                return Err(corrupt(format!(
                    "append to {} cancelled: {}",
                    msg.conversation,
                    cancelled.other.join(", ")
                )));
            }
            if let Some(refused) = cancelled.refused.filter(|_| !cancelled.head) {
                return Ok(Append::Refused(refused));
            }
            tracing::debug!(conversation = %msg.conversation, attempt, "lost the race for the head");
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(StoreError::Backend(
            format!(
                "append to {} lost the race for the head {} times",
                msg.conversation, self.max_attempts
            )
            .into(),
        ))
    }

    /// The answer to an append whose key is stored: the original for the same request, a
    /// conflict for another one.
    async fn answer_stored_key(
        &self,
        msg: &NewMessage,
        idem: &IdempotencyItem,
    ) -> Result<Append, StoreError> {
        let key = idem.sent_key();
        if !key.is_same_request(&msg.conversation, &msg.digest) {
            return Ok(Append::Conflict(key));
        }
        Ok(Append::Duplicate(self.original(idem).await?))
    }

    /// The message an idempotency item points to (the original of a duplicate send).
    async fn original(&self, idem: &IdempotencyItem) -> Result<Appended, StoreError> {
        let key = LogKey::message(&idem.conv, idem.seq, self.bucket);
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .set_key(Some(key.item()?))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let item = out.item.ok_or_else(|| {
            corrupt(format!(
                "{}#{} named by an idempotency key is missing",
                idem.conv, idem.seq
            ))
        })?;
        let item = from_item::<MessageItem>(item)?;
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
            // An idempotency key whose message has expired no longer blocks a new send.
            TransactWriteItem::builder()
                .put(
                    put(t, to_item(&IdempotencyItem::new(&message, &msg.digest))?)
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
