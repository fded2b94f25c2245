//! Adapter layer: the `messages` table (pk `pk` S, sk `sk` N) — conversation heads `H#<conv>`,
//! the log in buckets `M#<conv>#<seq / bucket>` with continuation markers, idempotency keys
//! `I#<sender>#<client_msg_id>` — and the [`MessageLog`] port on it. The append transaction
//! and its retries are in `append`; group metadata items (`G#<conv>`) in `memberships`.
//!
//! User ids, conversation ids and client message ids cannot contain `#`, so these keys cannot
//! be confused with one another.

use super::codec::{self, from_item, instant_value, n, s, to_item};
use super::{DynamoStore, Item, backend};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use chrono::{DateTime, Utc};
use messenger::domain::{ClientMsgId, ConversationId, GroupEvent, Message, Seq, UserId};
use messenger::ports::{Appended, MessageLog, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The partition key (S) of every item of the table.
pub(crate) const PK: &str = "pk";
/// The sort key (N): the seq of a message, 0 on single items.
pub(crate) const SK: &str = "sk";
/// The head's latest seq.
pub(super) const LAST_SEQ: &str = "last_seq";
/// When a message (and its idempotency key) stops counting; absent when it never expires.
pub(super) const EXPIRES_AT: &str = "expires_at";
/// Marks the end of a log bucket that the log continues past.
const CONTINUES: &str = "continues";
const HEAD: &str = "H#";
const LOG: &str = "M#";
const IDEMPOTENCY: &str = "I#";

/// The key of any item of the messages table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct LogKey {
    pub(super) pk: String,
    pub(super) sk: Seq,
}

impl LogKey {
    /// A conversation's head: `H#<conv>`, sk 0.
    pub(super) fn head(conv: &ConversationId) -> Self {
        Self {
            pk: format!("{HEAD}{conv}"),
            sk: 0,
        }
    }

    /// A sender's idempotency key: `I#<sender>#<client_msg_id>`, sk 0.
    pub(super) fn idempotency(from: &UserId, cmid: &ClientMsgId) -> Self {
        Self {
            pk: format!("{IDEMPOTENCY}{from}#{cmid}"),
            sk: 0,
        }
    }

    /// A message: `M#<conv>#<seq / bucket>`, sk `seq`.
    pub(super) fn message(conv: &ConversationId, seq: Seq, bucket: Seq) -> Self {
        Self {
            pk: bucket_pk(conv, seq / bucket),
            sk: seq,
        }
    }

    /// The key as an item (for `Key` and `Keys` parameters).
    pub(super) fn item(&self) -> Result<Item, StoreError> {
        to_item(self)
    }

    /// Whether `item` carries this key's `pk` (how a BatchGetItem answer is matched to its
    /// keys).
    pub(super) fn is_key_of(&self, item: &Item) -> bool {
        matches!(item.get(PK), Some(AttributeValue::S(pk)) if *pk == self.pk)
    }
}

/// The partition of log bucket `b` of a conversation.
fn bucket_pk(conv: &ConversationId, b: u64) -> String {
    format!("{LOG}{conv}#{b}")
}

/// The message a key of the messages table names (the inverse of [`LogKey::message`]), or
/// `None` for every other item: heads, idempotency keys, group metadata, and continuation
/// markers (which sit in bucket `b` under the first seq of bucket `b + 1`).
pub(crate) fn message_at(pk: &str, sk: Seq, bucket: Seq) -> Option<(ConversationId, Seq)> {
    let (conv, b) = pk.strip_prefix(LOG)?.rsplit_once('#')?;
    let b: Seq = b.parse().ok()?;
    if sk == 0 || sk / bucket != b {
        return None;
    }
    Some((ConversationId::new(conv).ok()?, sk))
}

/// A conversation's head: its latest seq. Moved only by the append transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct HeadItem {
    pub(super) pk: String,
    pub(super) sk: Seq,
    pub(super) last_seq: Seq,
}

/// One message of the log. System messages (membership changes) carry their event as JSON
/// in `event`, and an empty body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MessageItem {
    pk: String,
    sk: Seq,
    from: UserId,
    cmid: ClientMsgId,
    body: String,
    #[serde(
        with = "codec::opt_json",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    event: Option<GroupEvent>,
    #[serde(with = "codec::instant")]
    sent_at: DateTime<Utc>,
    #[serde(
        with = "codec::opt_instant",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    expires_at: Option<DateTime<Utc>>,
    #[serde(
        with = "codec::opt_ttl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    ttl: Option<DateTime<Utc>>,
}

impl MessageItem {
    pub(super) fn new(m: &Message, bucket: Seq) -> Self {
        let LogKey { pk, sk } = LogKey::message(&m.conversation, m.seq, bucket);
        Self {
            pk,
            sk,
            from: m.from.clone(),
            cmid: m.client_msg_id.clone(),
            body: m.body.clone(),
            event: m.event.clone(),
            sent_at: m.sent_at,
            expires_at: m.expires_at,
            ttl: m.expires_at,
        }
    }

    /// The message, in `conv` (the conversation whose log it was read from).
    pub(super) fn into_message(self, conv: &ConversationId) -> Message {
        Message {
            conversation: conv.clone(),
            seq: self.sk,
            from: self.from,
            client_msg_id: self.cmid,
            body: self.body,
            event: self.event,
            sent_at: self.sent_at,
            expires_at: self.expires_at,
        }
    }
}

/// Written by the message that opens bucket `b + 1`, at the end of bucket `b` (under that
/// message's seq), so readers go on to `b + 1` even when TTL has emptied bucket `b`. Never
/// expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MarkerItem {
    pk: String,
    sk: Seq,
    continues: bool,
}

impl MarkerItem {
    /// The marker written by `seq`, the first seq of its bucket.
    pub(super) fn new(conv: &ConversationId, seq: Seq, bucket: Seq) -> Self {
        Self {
            pk: bucket_pk(conv, seq / bucket - 1),
            sk: seq,
            continues: true,
        }
    }
}

/// Which message a sender's `client_msg_id` stored, for as long as that message lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct IdempotencyItem {
    pk: String,
    sk: Seq,
    pub(super) conv: ConversationId,
    pub(super) seq: Seq,
    #[serde(
        with = "codec::opt_instant",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    expires_at: Option<DateTime<Utc>>,
    #[serde(
        with = "codec::opt_ttl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    ttl: Option<DateTime<Utc>>,
    /// The random mark of the append call that wrote it: when a transaction's answer is lost
    /// and its retry finds the key taken, the mark tells "my own write" (not a duplicate) from
    /// "an earlier send" (a duplicate). Absent on items written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) token: Option<String>,
}

impl IdempotencyItem {
    pub(super) fn new(m: &Message, token: &str) -> Self {
        let LogKey { pk, sk } = LogKey::idempotency(&m.from, &m.client_msg_id);
        Self {
            pk,
            sk,
            conv: m.conversation.clone(),
            seq: m.seq,
            expires_at: m.expires_at,
            ttl: m.expires_at,
            token: Some(token.to_owned()),
        }
    }

    /// Whether the append call that marked its write with `token` wrote this key.
    pub(super) fn written_by(&self, token: &str) -> bool {
        self.token.as_deref() == Some(token)
    }

    /// Whether the key still stands for a send at `at`: once its message has expired, the
    /// same `client_msg_id` may store a new one (the transaction's condition says the same).
    pub(super) fn holds_at(&self, at: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| e > at)
    }
}

/// Which seqs of a bucket a query reads, and in which order.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// Seqs greater than this one, oldest first.
    After(Seq),
    /// Seqs up to and including this one, newest first.
    UpTo(Seq),
}

/// What one Query page of a log bucket held.
struct BucketPage {
    messages: Vec<Message>,
    /// The bucket's continuation marker was among the items: the log goes on in the next.
    continues: bool,
    next: Option<Item>,
}

impl DynamoStore {
    /// A Query page of one log bucket, strongly consistent, without messages expired at `now`.
    async fn query_bucket(
        &self,
        conv: &ConversationId,
        bucket: u64,
        range: Range,
        limit: usize,
        start: Option<Item>,
        now: DateTime<Utc>,
    ) -> Result<BucketPage, StoreError> {
        let (op, seq, forward) = match range {
            Range::After(seq) => (">", seq, true),
            Range::UpTo(seq) => ("<=", seq, false),
        };
        let out = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .key_condition_expression(format!("{PK} = :pk AND {SK} {op} :seq"))
            .filter_expression(format!(
                "attribute_not_exists({EXPIRES_AT}) OR {EXPIRES_AT} > :now"
            ))
            .expression_attribute_values(":pk", s(bucket_pk(conv, bucket)))
            .expression_attribute_values(":seq", n(seq))
            .expression_attribute_values(":now", instant_value(now))
            .consistent_read(true)
            .scan_index_forward(forward)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let mut page = BucketPage {
            messages: Vec::new(),
            continues: false,
            next: out.last_evaluated_key,
        };
        for item in out.items.unwrap_or_default() {
            if item.contains_key(CONTINUES) {
                page.continues = true;
            } else {
                let message = from_item::<MessageItem>(item)?.into_message(conv);
                page.messages.push(message);
            }
        }
        Ok(page)
    }
}

#[async_trait]
impl MessageLog for DynamoStore {
    /// See `append::append_message`: one consistent BatchGetItem, then one TransactWriteItems,
    /// retried on a lost race for the head.
    async fn append(&self, msg: messenger::domain::NewMessage) -> Result<Appended, StoreError> {
        self.append_message(msg, None).await
    }

    /// The same, with the first attempt's BatchGetItem already done by the caller.
    async fn append_seen(
        &self,
        msg: messenger::domain::NewMessage,
        last_seq: Seq,
    ) -> Result<Appended, StoreError> {
        self.append_message(msg, Some(last_seq)).await
    }

    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        let distinct: Vec<&ConversationId> = {
            let mut seen = HashSet::new();
            convs.iter().filter(|c| seen.insert(*c)).collect()
        };
        let keys = distinct
            .iter()
            .map(|c| LogKey::head(c).item())
            .collect::<Result<_, _>>()?;
        let heads = self.batch_get(&self.tables.messages, keys, true).await?;
        let mut by_pk = HashMap::new();
        for head in heads {
            let head: HeadItem = from_item(head)?;
            by_pk.insert(head.pk, head.last_seq);
        }
        Ok(distinct
            .into_iter()
            .map(|c| {
                let seq = by_pk.get(&LogKey::head(c).pk).copied().unwrap_or(0);
                (c.clone(), seq)
            })
            .collect())
    }

    /// Queries the bucket holding `after + 1`, page by page (Limit + ExclusiveStartKey), and
    /// moves on to the next bucket only past a continuation marker. Strongly consistent.
    async fn after(
        &self,
        conv: &ConversationId,
        after: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        let mut bucket = (after + 1) / self.bucket;
        let mut start = None;
        let mut continues = false;
        while out.len() < limit {
            let range = Range::After(after);
            let page = self
                .query_bucket(conv, bucket, range, limit - out.len(), start, now)
                .await?;
            out.extend(page.messages);
            continues |= page.continues;
            start = page.next;
            if start.is_none() {
                if !continues {
                    break;
                }
                bucket += 1;
                continues = false;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Reads the head first (so `before` past the end costs no empty buckets), then queries
    /// buckets newest first, down to bucket 0.
    async fn before(
        &self,
        conv: &ConversationId,
        before: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let head = self
            .last_seqs(std::slice::from_ref(conv))
            .await?
            .get(conv)
            .copied()
            .unwrap_or(0);
        let Some(top) = before.checked_sub(1).map(|b| b.min(head)) else {
            return Ok(Vec::new());
        };
        if top == 0 || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut bucket = top / self.bucket;
        let mut start = None;
        loop {
            let range = Range::UpTo(top);
            let page = self
                .query_bucket(conv, bucket, range, limit - out.len(), start, now)
                .await?;
            out.extend(page.messages);
            start = page.next;
            if out.len() >= limit {
                break;
            }
            if start.is_none() {
                if bucket == 0 {
                    break;
                }
                bucket -= 1;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
