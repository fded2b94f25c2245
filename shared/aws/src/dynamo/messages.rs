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
use messenger::domain::{
    Amendment, Attachment, AttachmentId, ClientMsgId, ConversationId, Head, LogEvent, Message,
    Preview, Reaction, RequestDigest, SentKey, Seq, UserId,
};
use messenger::ports::{Amended, Append, Effects, MessageLog, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The partition key (S) of every item of the table.
pub(crate) const PK: &str = "pk";
/// The sort key (N): the seq of a message, 0 on single items.
pub(crate) const SK: &str = "sk";
/// The head's latest seq.
pub(super) const LAST_SEQ: &str = "last_seq";
/// The head's chat count (and each entry's, up to and including it).
pub(super) const CHATS: &str = "chats";
/// The head's preview of the latest chat message or membership change (JSON).
pub(super) const LAST: &str = "last";
/// A message's `rev`: the entry that last changed it.
pub(super) const REV: &str = "rev";
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

    /// Whether `item` carries this key (`pk` and `sk`: how a BatchGetItem answer is matched to
    /// its keys; two messages of one bucket share their `pk`).
    pub(super) fn is_key_of(&self, item: &Item) -> bool {
        matches!(item.get(PK), Some(AttributeValue::S(pk)) if *pk == self.pk)
            && matches!(item.get(SK), Some(AttributeValue::N(sk)) if sk.parse() == Ok(self.sk))
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

/// A conversation's head: its latest seq, its chat count and the inbox preview. Moved only by
/// the append and amend transactions. Heads written before chat counts and previews existed
/// read as 0 and none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct HeadItem {
    pub(super) pk: String,
    pub(super) sk: Seq,
    pub(super) last_seq: Seq,
    #[serde(default)]
    pub(super) chats: u64,
    #[serde(
        with = "codec::opt_json",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) last: Option<PreviewItem>,
}

impl HeadItem {
    pub(super) fn head(&self) -> Head {
        Head {
            last_seq: self.last_seq,
            chats: self.chats,
            last: self.last.clone().map(Preview::from),
        }
    }
}

/// The head's preview, as JSON in the `last` attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PreviewItem {
    seq: Seq,
    from: UserId,
    #[serde(with = "codec::instant")]
    sent_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    edited: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl From<&Preview> for PreviewItem {
    fn from(p: &Preview) -> Self {
        Self {
            seq: p.seq,
            from: p.from.clone(),
            sent_at: p.sent_at,
            text: p.text.clone(),
            event: p.event.clone(),
            edited: p.edited,
            deleted: p.deleted,
        }
    }
}

impl From<PreviewItem> for Preview {
    fn from(p: PreviewItem) -> Self {
        Self {
            seq: p.seq,
            from: p.from,
            sent_at: p.sent_at,
            text: p.text,
            event: p.event,
            edited: p.edited,
            deleted: p.deleted,
        }
    }
}

/// One entry of the log. System entries carry their event as JSON in `event`, and an empty
/// body; a deleted message has no `body` attribute at all (nor reactions). Every entry records
/// the log's chat count up to and including it (`chats`), for read pointers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MessageItem {
    pk: String,
    sk: Seq,
    from: UserId,
    cmid: ClientMsgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(
        with = "codec::opt_json",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    event: Option<LogEvent>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<Seq>,
    #[serde(
        with = "codec::opt_instant",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    edited_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(
        with = "codec::opt_json",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    reactions: Option<Vec<Reaction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rev: Option<Seq>,
    #[serde(default)]
    chats: u64,
    /// The files sent with it (L of M), absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    att: Vec<AttachmentItem>,
}

/// One attachment of a message item (short names: they are stored with every message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AttachmentItem {
    id: AttachmentId,
    #[serde(rename = "type")]
    content_type: String,
    size: u64,
    name: String,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(rename = "ms", default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

impl From<&Attachment> for AttachmentItem {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            name: a.name.clone(),
            width: a.width,
            height: a.height,
            duration_ms: a.duration_ms,
        }
    }
}

impl From<AttachmentItem> for Attachment {
    fn from(a: AttachmentItem) -> Self {
        Self {
            id: a.id,
            content_type: a.content_type,
            size: a.size,
            name: a.name,
            width: a.width,
            height: a.height,
            duration_ms: a.duration_ms,
        }
    }
}

impl MessageItem {
    /// The item of `m`, when the log held `chats` chat messages up to and including it.
    pub(super) fn new(m: &Message, bucket: Seq, chats: u64) -> Self {
        let LogKey { pk, sk } = LogKey::message(&m.conversation, m.seq, bucket);
        Self {
            pk,
            sk,
            from: m.from.clone(),
            cmid: m.client_msg_id.clone(),
            body: (!m.deleted).then(|| m.body.clone()),
            event: m.event.clone(),
            sent_at: m.sent_at,
            expires_at: m.expires_at,
            ttl: m.expires_at,
            att: m.attachments.iter().map(AttachmentItem::from).collect(),
            reply_to: m.reply_to,
            edited_at: m.edited_at,
            deleted: m.deleted,
            reactions: (!m.reactions.is_empty()).then(|| m.reactions.clone()),
            rev: m.rev,
            chats,
        }
    }

    /// The log's chat count up to and including this entry.
    pub(super) fn chats(&self) -> u64 {
        self.chats
    }

    /// The message, in `conv` (the conversation whose log it was read from).
    pub(super) fn into_message(self, conv: &ConversationId) -> Message {
        Message {
            conversation: conv.clone(),
            seq: self.sk,
            from: self.from,
            client_msg_id: self.cmid,
            body: self.body.unwrap_or_default(),
            event: self.event,
            sent_at: self.sent_at,
            expires_at: self.expires_at,
            attachments: self.att.into_iter().map(Attachment::from).collect(),
            reply_to: self.reply_to,
            edited_at: self.edited_at,
            deleted: self.deleted,
            reactions: self.reactions.unwrap_or_default(),
            rev: self.rev,
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

/// Which message a sender's `client_msg_id` stored, and for which request (its digest), for as
/// long as that message lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct IdempotencyItem {
    pk: String,
    sk: Seq,
    pub(super) conv: ConversationId,
    pub(super) seq: Seq,
    /// The request's digest; absent on keys stored before digests existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
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
    pub(super) fn new(m: &Message, digest: &RequestDigest, token: &str) -> Self {
        let LogKey { pk, sk } = LogKey::idempotency(&m.from, &m.client_msg_id);
        // The key window or the message's retention, whichever ends first; TTL deletes it.
        let lapses = Some(m.key_expires_at());
        Self {
            pk,
            sk,
            conv: m.conversation.clone(),
            seq: m.seq,
            digest: Some(digest.as_str().to_owned()),
            expires_at: lapses,
            ttl: lapses,
            token: Some(token.to_owned()),
        }
    }

    /// Whether the append call that marked its write with `token` wrote this key.
    pub(super) fn written_by(&self, token: &str) -> bool {
        self.token.as_deref() == Some(token)
    }

    /// What the key stored, as the ports say it.
    pub(super) fn sent_key(&self) -> SentKey {
        SentKey {
            conversation: self.conv.clone(),
            seq: self.seq,
            digest: self.digest.clone().map(RequestDigest::from_stored),
        }
    }

    /// Whether the key still stands for a send at `at`: once its window has passed or its
    /// message has expired, the same `client_msg_id` may store a new one (the transaction's
    /// condition says the same).
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
    /// The item of message `seq` of `conv` exactly as stored (attribute name → value, as JSON),
    /// strongly consistent; for tests and tools that check what the table holds (a deleted
    /// message has no `body`).
    pub async fn stored_message(
        &self,
        conv: &ConversationId,
        seq: Seq,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .set_key(Some(LogKey::message(conv, seq, self.bucket).item()?))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| super::corrupt(format!("not a JSON-able item: {e}")))
            })
            .transpose()
    }

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
    /// See `append::append_message`: one consistent BatchGetItem (unless the caller has just
    /// read the head and key), then one TransactWriteItems with the effects' actions, retried
    /// on a lost race for the head.
    async fn append_with(
        &self,
        msg: messenger::domain::NewMessage,
        effects: &Effects,
        seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        self.append_message(msg, effects, seen).await
    }

    /// See `amend::amend_message`: one consistent BatchGetItem (head and message), then one
    /// TransactWriteItems, retried when the head or the message moved in between.
    async fn amend(&self, amendment: &Amendment) -> Result<Amended, StoreError> {
        self.amend_message(amendment).await
    }

    /// One consistent BatchGetItem of the heads, 100 keys per request.
    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError> {
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
            by_pk.insert(head.pk.clone(), head.head());
        }
        Ok(distinct
            .into_iter()
            .map(|c| {
                let head = by_pk.remove(&LogKey::head(c).pk).unwrap_or_default();
                (c.clone(), head)
            })
            .collect())
    }

    /// One consistent BatchGetItem of the message keys, 100 per request; expired ones are left
    /// out.
    async fn by_seqs(
        &self,
        conv: &ConversationId,
        seqs: &[Seq],
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let mut wanted: Vec<Seq> = seqs.iter().copied().filter(|s| *s > 0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let keys = wanted
            .iter()
            .map(|seq| LogKey::message(conv, *seq, self.bucket).item())
            .collect::<Result<_, _>>()?;
        let items = self.batch_get(&self.tables.messages, keys, true).await?;
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            let m = from_item::<MessageItem>(item)?.into_message(conv);
            if m.expires_at.is_none_or(|t| t > now) {
                found.push(m);
            }
        }
        found.sort_by_key(|m| m.seq);
        Ok(found)
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
        let head = MessageLog::last_seqs(self, std::slice::from_ref(conv))
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
