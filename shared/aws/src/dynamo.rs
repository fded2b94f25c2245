//! Adapter layer: every storage port on DynamoDB. Tables, keys and the requests each route
//! makes are described in docs/data-model.md; keep the two in step.

use crate::metrics::{Counters, CountingInterceptor, Snapshot};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnConsumedCapacity,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use messenger::domain::{
    ClientMsgId, Connection, ConnectionId, ConversationId, DeviceId, GroupEvent, GroupInfo, Member,
    Membership, Message, NewMessage, ReceiptKind, Role, Seq, UserId,
};
use messenger::ports::{
    Appended, Connections, Conversations, LastSeen, MessageLog, PushDevices, StoreError,
};
use messenger::push::{Platform, PushClaim, PushDevice};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// Default number of seqs per message-log partition (`M#<conv>#<seq / bucket>`).
pub const DEFAULT_BUCKET: u64 = 1000;
/// The DynamoDB TTL attribute (epoch seconds) on every table that expires items.
pub const TTL_ATTR: &str = "ttl";
/// The memberships index that answers "members of a conversation" (eventually consistent).
pub const BY_CONVERSATION: &str = "by_conversation";
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;
/// Most Queries one call runs at once (fan-out reads one per member).
const QUERY_CONCURRENCY: usize = 32;

/// The four table names (each deployment, and each test run, has its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// pk `user`, sk `conn`: live connections.
    pub connections: String,
    /// pk `user`, sk `conv`, GSI `by_conversation` (pk `conv`, sk `user`): memberships.
    pub memberships: String,
    /// pk `pk` (S), sk `sk` (N): conversation heads, message log buckets, idempotency keys.
    pub messages: String,
    /// pk `user`: when each user was last seen.
    pub last_seen: String,
    /// pk `user`, sk `sk` (S): push registrations `D#<device>` and push claims
    /// `C#<device>#<conv>`.
    pub devices: String,
}

impl Tables {
    /// `<prefix>connections`, `<prefix>memberships`, `<prefix>messages`, `<prefix>last_seen`,
    /// `<prefix>devices`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            connections: format!("{prefix}connections"),
            memberships: format!("{prefix}memberships"),
            messages: format!("{prefix}messages"),
            last_seen: format!("{prefix}last_seen"),
            devices: format!("{prefix}devices"),
        }
    }
}

/// Every storage port on DynamoDB. Clone-cheap; build once per process.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    bucket: u64,
    max_attempts: u32,
    counters: Arc<Counters>,
    append_locks: Option<Arc<AppendLocks>>,
}

/// Striped per-conversation locks: bounded memory, and two conversations share a stripe only
/// by hash collision.
#[derive(Debug)]
struct AppendLocks(Vec<tokio::sync::Mutex<()>>);

impl AppendLocks {
    fn new(stripes: usize) -> Self {
        Self((0..stripes).map(|_| tokio::sync::Mutex::new(())).collect())
    }

    async fn lock(&self, conv: &ConversationId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(conv);
        self.0[(hash % self.0.len() as u64) as usize].lock().await
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Instants are stored as fixed-width RFC 3339 with nanoseconds and `Z`, so they round-trip
/// exactly and compare correctly as strings inside condition and filter expressions.
fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// The TTL attribute must be epoch seconds; round up so DynamoDB never deletes an item before
/// readers consider it expired.
fn ttl(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0))
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(format!("item lacks string attribute {key:?}"))),
    }
}

fn get_n(item: &Item, key: &str) -> Result<u64, StoreError> {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(format!("attribute {key:?} is not a u64: {v}"))),
        _ => Err(corrupt(format!("item lacks number attribute {key:?}"))),
    }
}

fn get_t(item: &Item, key: &str) -> Result<DateTime<Utc>, StoreError> {
    let v = get_s(item, key)?;
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format!("attribute {key:?} is not a time: {e}")))
}

fn get_opt_t(item: &Item, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    item.contains_key(key).then(|| get_t(item, key)).transpose()
}

/// A system message's membership event (JSON in `event`), absent on chat messages.
fn get_event(item: &Item) -> Result<Option<GroupEvent>, StoreError> {
    item.contains_key("event")
        .then(|| {
            serde_json::from_str(get_s(item, "event")?)
                .map_err(|e| corrupt(format!("attribute \"event\": {e}")))
        })
        .transpose()
}

fn role_s(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// Membership items written before roles existed read as plain members from seq 1.
fn get_role(item: &Item) -> Role {
    match item.get("role") {
        Some(AttributeValue::S(r)) if r == "admin" => Role::Admin,
        _ => Role::Member,
    }
}

fn get_from_seq(item: &Item) -> Result<Seq, StoreError> {
    if item.contains_key("from_seq") {
        get_n(item, "from_seq")
    } else {
        Ok(1)
    }
}

fn id<T>(
    item: &Item,
    key: &str,
    make: fn(String) -> Result<T, messenger::domain::InvalidId>,
) -> Result<T, StoreError> {
    make(get_s(item, key)?.to_owned()).map_err(|e| corrupt(e.to_string()))
}

fn is_condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The outcome of a conditional write: `true` when it was applied, `false` when its condition
/// did not hold (an expected answer, not an error).
fn applied<T, E>(
    r: Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// Which parts of the append transaction failed (from its cancellation reasons).
#[derive(Debug, Default)]
struct Cancelled {
    head: bool,
    idempotency: bool,
    other: Vec<String>,
}

/// Which seqs of a bucket a query reads, and in which order.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// Seqs greater than this one, oldest first.
    After(Seq),
    /// Seqs up to and including this one, newest first.
    UpTo(Seq),
}

/// Position of each action inside the append transaction.
const TX_MESSAGE: usize = 1;
const TX_IDEM: usize = 2;

fn read_cancellation(e: &TransactWriteItemsError) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e else {
        return None;
    };
    let mut c = Cancelled::default();
    for (i, r) in tc.cancellation_reasons().iter().enumerate() {
        match r.code() {
            None | Some("None") => {}
            Some("ConditionalCheckFailed") if i == TX_IDEM => c.idempotency = true,
            // The head moved, or (reported with it) the message slot `prev + 1` is taken:
            // either way another sender got that seq first.
            Some("ConditionalCheckFailed") if i <= TX_MESSAGE => c.head = true,
            // Another transaction held one of our items: the same race as a head conflict.
            Some("TransactionConflict") => c.head = true,
            Some(code) => c.other.push(format!("action {i}: {code}")),
        }
    }
    Some(c)
}

/// Whether CreateTable made the table: `false` when it already existed (so `create_tables`
/// can run against a set-up that has some or all of them).
fn created(
    r: Result<
        aws_sdk_dynamodb::operation::create_table::CreateTableOutput,
        SdkError<
            aws_sdk_dynamodb::operation::create_table::CreateTableError,
            aws_smithy_runtime_api::http::Response,
        >,
    >,
) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(backend(e)),
    }
}

/// A random delay in `[0, min(cap, base·2^attempt)]` ("full jitter"): concurrent senders that
/// lost the same race spread out instead of colliding again.
fn backoff(attempt: u32) -> Duration {
    let ceiling_ms = (5u64 << attempt.min(6)).min(250);
    let r = getrandom::u64().unwrap_or(0);
    Duration::from_millis(r % (ceiling_ms + 1))
}

impl DynamoStore {
    /// A store over `tables`, with its own DynamoDB client (and request counters).
    pub fn new(sdk: &SdkConfig, tables: Tables) -> Self {
        let counters = Arc::new(Counters::default());
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(CountingInterceptor(counters.clone()))
            .build();
        Self {
            client: Client::from_conf(config),
            tables,
            bucket: DEFAULT_BUCKET,
            max_attempts: 50,
            counters,
            append_locks: None,
        }
    }

    /// Serialises this process's appends to the same conversation (striped locks). The
    /// conditional transaction alone is correct under any concurrency, but a burst of senders
    /// in one process would race for the head and retry O(n²) times; queueing them locally
    /// leaves only races between processes (Lambda instances) to the condition.
    pub fn with_local_append_lock(mut self) -> Self {
        self.append_locks = Some(Arc::new(AppendLocks::new(256)));
        self
    }

    /// Seqs per message-log partition. Every reader and writer of a table must agree on it.
    pub fn with_bucket_size(mut self, bucket: u64) -> Self {
        assert!(bucket >= 2, "a log bucket holds at least two seqs");
        self.bucket = bucket;
        self
    }

    /// How often an append retries after losing the race for the conversation head.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Requests and capacity units so far, per operation; diff two with [`Snapshot::since`].
    pub fn counters(&self) -> Snapshot {
        self.counters.snapshot()
    }

    /// Creates the five tables (on-demand, TTL on `ttl` where items expire) unless they exist,
    /// and waits until they are active. For tests and local set-up; deployments create them from the template.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let t = &self.tables;
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(backend)
        };
        let attr = |name: &str, ty| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ty)
                .build()
                .map_err(backend)
        };
        let specs = [
            (&t.connections, "user", "conn", ScalarAttributeType::S, true),
            (
                &t.memberships,
                "user",
                "conv",
                ScalarAttributeType::S,
                false,
            ),
            (&t.messages, "pk", "sk", ScalarAttributeType::N, true),
            (&t.devices, "user", "sk", ScalarAttributeType::S, true),
        ];
        for (table, pk, sk, sk_type, with_ttl) in specs {
            let mut req = self
                .client
                .create_table()
                .table_name(table.as_str())
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .attribute_definitions(attr(pk, ScalarAttributeType::S)?)
                .attribute_definitions(attr(sk, sk_type)?);
            if table == &t.memberships {
                req = req.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(BY_CONVERSATION)
                        .key_schema(key("conv", KeyType::Hash)?)
                        .key_schema(key("user", KeyType::Range)?)
                        // What the member list shows; pointer updates (acks) never touch the
                        // index, so they cost no index writes.
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::Include)
                                .set_non_key_attributes(Some(
                                    ["role", "from_seq", "joined_at"].map(String::from).to_vec(),
                                ))
                                .build(),
                        )
                        .build()
                        .map_err(backend)?,
                );
            }
            if !created(req.send().await)? {
                continue;
            }
            self.wait_active(table).await?;
            if with_ttl {
                self.enable_ttl(table).await?;
            }
        }
        let last_seen = self
            .client
            .create_table()
            .table_name(&t.last_seen)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("user", KeyType::Hash)?)
            .attribute_definitions(attr("user", ScalarAttributeType::S)?)
            .send()
            .await;
        if created(last_seen)? {
            self.wait_active(&t.last_seen).await?;
        }
        Ok(())
    }

    async fn wait_active(&self, table: &str) -> Result<(), StoreError> {
        self.client
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(120))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn enable_ttl(&self, table: &str) -> Result<(), StoreError> {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTR)
            .enabled(true)
            .build()
            .map_err(backend)?;
        self.client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    fn head_key(conv: &ConversationId) -> Item {
        HashMap::from([("pk".into(), s(format!("H#{conv}"))), ("sk".into(), n(0))])
    }

    fn idem_key(from: &UserId, cmid: &ClientMsgId) -> Item {
        // User ids cannot contain `#` (nor can client_msg_ids), so the key is unambiguous.
        HashMap::from([
            ("pk".into(), s(format!("I#{from}#{cmid}"))),
            ("sk".into(), n(0)),
        ])
    }

    fn bucket_pk(&self, conv: &ConversationId, bucket: u64) -> AttributeValue {
        s(format!("M#{conv}#{bucket}"))
    }

    fn message_key(&self, conv: &ConversationId, seq: Seq) -> Item {
        HashMap::from([
            ("pk".into(), self.bucket_pk(conv, seq / self.bucket)),
            ("sk".into(), n(seq)),
        ])
    }

    /// Strongly consistent BatchGetItem of `keys` from one table (at most 100 distinct keys per
    /// request; unprocessed keys are asked again).
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(backend)?,
            );
            let mut attempt = 0;
            while let Some(ka) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, ka)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(backend)?;
                if let Some(items) = out.responses.and_then(|mut r| r.remove(table)) {
                    found.extend(items);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .filter(|ka| !ka.keys().is_empty());
                if pending.is_some() {
                    // Throttled keys come back unprocessed; AWS asks for backoff before retrying.
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
        Ok(found)
    }

    /// One Query per user (all pages), at most [`QUERY_CONCURRENCY`] in flight: a 256-member
    /// fan-out must not open 256 connections at once or burst a partition. The items come in
    /// no particular order.
    async fn query_each_user(
        &self,
        users: &[UserId],
        build: &(dyn Fn(&UserId) -> QueryFluentBuilder + Send + Sync),
    ) -> Result<Vec<Item>, StoreError> {
        let mut pending = users.iter();
        let mut in_flight = FuturesUnordered::new();
        let mut items = Vec::new();
        loop {
            while in_flight.len() < QUERY_CONCURRENCY {
                let Some(user) = pending.next() else { break };
                in_flight.push(self.query_all(move || build(user)));
            }
            match in_flight.next().await {
                Some(found) => items.extend(found?),
                None => return Ok(items),
            }
        }
    }

    /// Every item of one Query, following `LastEvaluatedKey`.
    async fn query_all(
        &self,
        build: impl Fn() -> QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = build()
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    fn message_from(&self, conv: &ConversationId, item: &Item) -> Result<Message, StoreError> {
        Ok(Message {
            conversation: conv.clone(),
            seq: get_n(item, "sk")?,
            from: id(item, "from", UserId::new)?,
            client_msg_id: id(item, "cmid", ClientMsgId::new)?,
            body: get_s(item, "body")?.to_owned(),
            event: get_event(item)?,
            sent_at: get_t(item, "sent_at")?,
            expires_at: get_opt_t(item, "expires_at")?,
        })
    }

    /// The message an idempotency item points to (the original of a duplicate send).
    async fn original(&self, idem: &Item) -> Result<Message, StoreError> {
        let conv = id(idem, "conv", ConversationId::new)?;
        let seq = get_n(idem, "seq")?;
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .set_key(Some(self.message_key(&conv, seq)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let item = out.item.ok_or_else(|| {
            corrupt(format!(
                "{conv}#{seq} named by an idempotency key is missing"
            ))
        })?;
        self.message_from(&conv, &item)
    }

    /// A Query page of one log bucket: live messages and whether the bucket's continuation
    /// marker was among the items (the log goes on in the next bucket).
    async fn query_bucket(
        &self,
        conv: &ConversationId,
        bucket: u64,
        range: Range,
        limit: usize,
        start: Option<Item>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Message>, bool, Option<Item>), StoreError> {
        let (op, seq, forward) = match range {
            Range::After(seq) => (">", seq, true),
            Range::UpTo(seq) => ("<=", seq, false),
        };
        let out = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .key_condition_expression(format!("pk = :pk AND sk {op} :seq"))
            .filter_expression("attribute_not_exists(expires_at) OR expires_at > :now")
            .expression_attribute_values(":pk", self.bucket_pk(conv, bucket))
            .expression_attribute_values(":seq", n(seq))
            .expression_attribute_values(":now", ts(now))
            .consistent_read(true)
            .scan_index_forward(forward)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let mut messages = Vec::new();
        let mut continues = false;
        for item in out.items() {
            if item.contains_key("continues") {
                continues = true;
            } else {
                messages.push(self.message_from(conv, item)?);
            }
        }
        Ok((messages, continues, out.last_evaluated_key))
    }

    fn append_transaction(
        &self,
        msg: &NewMessage,
        prev: Seq,
        head_exists: bool,
    ) -> Result<(Message, Vec<TransactWriteItem>), StoreError> {
        let t = &self.tables.messages;
        let seq = prev + 1;
        let message = Message {
            conversation: msg.conversation.clone(),
            seq,
            from: msg.from.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            body: msg.body.clone(),
            event: msg.event.clone(),
            sent_at: msg.sent_at,
            expires_at: msg.expires_at,
        };
        let (cond, values) = if head_exists {
            (
                "last_seq = :prev",
                vec![(":prev", n(prev)), (":next", n(seq))],
            )
        } else {
            ("attribute_not_exists(pk)", vec![(":next", n(seq))])
        };
        let mut head = Update::builder()
            .table_name(t)
            .set_key(Some(Self::head_key(&msg.conversation)))
            .update_expression("SET last_seq = :next")
            .condition_expression(cond);
        for (k, v) in values {
            head = head.expression_attribute_values(k, v);
        }
        let mut item = self.message_key(&msg.conversation, seq);
        item.insert("from".into(), s(msg.from.as_str()));
        item.insert("cmid".into(), s(msg.client_msg_id.as_str()));
        item.insert("body".into(), s(msg.body.as_str()));
        item.insert("sent_at".into(), ts(msg.sent_at));
        if let Some(event) = &msg.event {
            let json = serde_json::to_string(event).map_err(|e| corrupt(e.to_string()))?;
            item.insert("event".into(), s(json));
        }
        let mut idem = Self::idem_key(&msg.from, &msg.client_msg_id);
        idem.insert("conv".into(), s(msg.conversation.as_str()));
        idem.insert("seq".into(), n(seq));
        if let Some(exp) = msg.expires_at {
            for it in [&mut item, &mut idem] {
                it.insert("expires_at".into(), ts(exp));
                it.insert(TTL_ATTR.into(), ttl(exp));
            }
        }
        let put = |item: Item, cond: Option<&str>| {
            Put::builder()
                .table_name(t)
                .set_item(Some(item))
                .set_condition_expression(cond.map(str::to_owned))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(backend)
        };
        // Order matters: `read_cancellation` reads reasons by position (head, TX_MESSAGE, TX_IDEM).
        let mut actions = vec![
            TransactWriteItem::builder()
                .update(head.build().map_err(backend)?)
                .build(),
            put(item, Some("attribute_not_exists(pk)"))?,
        ];
        // An idempotency key whose message has expired no longer blocks a new send.
        let idem_put = Put::builder()
            .table_name(t)
            .set_item(Some(idem))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :sent")
            .expression_attribute_values(":sent", ts(msg.sent_at))
            .build()
            .map_err(backend)?;
        actions.push(TransactWriteItem::builder().put(idem_put).build());
        if seq.is_multiple_of(self.bucket) {
            // The first message of a bucket leaves a marker (no TTL) at the end of the previous
            // bucket, so readers know to go on even when every message there has expired.
            let mut marker = HashMap::from([
                (
                    "pk".into(),
                    self.bucket_pk(&msg.conversation, seq / self.bucket - 1),
                ),
                ("sk".into(), n(seq)),
            ]);
            marker.insert("continues".into(), AttributeValue::Bool(true));
            actions.push(put(marker, None)?);
        }
        Ok((message, actions))
    }
}

#[async_trait]
impl Connections for DynamoStore {
    async fn put(&self, conn: &Connection) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .item("user", s(conn.user.as_str()))
            .item("conn", s(conn.id.as_str()))
            .item("device", s(conn.device.as_str()))
            .item("connected_at", ts(conn.connected_at))
            .item("expires_at", ts(conn.expires_at))
            .item(TTL_ATTR, ttl(conn.expires_at))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.connections)
            .key("user", s(user.as_str()))
            .key("conn", s(id.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// One Query per user, all at once. Eventually consistent: a connection made a moment ago
    /// may be missed, and that device syncs right after connecting anyway.
    async fn of_users(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Connection>, StoreError> {
        let items = self
            .query_each_user(users, &|user| {
                self.client
                    .query()
                    .table_name(&self.tables.connections)
                    .key_condition_expression("#u = :u")
                    .filter_expression("expires_at > :now")
                    .expression_attribute_names("#u", "user")
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":now", ts(now))
            })
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(Connection {
                    id: id(item, "conn", ConnectionId::new)?,
                    user: id(item, "user", UserId::new)?,
                    device: id(item, "device", DeviceId::new)?,
                    connected_at: get_t(item, "connected_at")?,
                    expires_at: get_t(item, "expires_at")?,
                })
            })
            .collect()
    }
}

fn membership_from(item: &Item) -> Result<Membership, StoreError> {
    Ok(Membership {
        conversation: id(item, "conv", ConversationId::new)?,
        user: id(item, "user", UserId::new)?,
        role: get_role(item),
        joined_at: get_t(item, "joined_at")?,
        from_seq: get_from_seq(item)?,
        delivered: get_n(item, "delivered")?,
        read: get_n(item, "read")?,
    })
}

#[async_trait]
impl Conversations for DynamoStore {
    async fn join(&self, m: &Membership) -> Result<bool, StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.memberships)
            .item("user", s(m.user.as_str()))
            .item("conv", s(m.conversation.as_str()))
            .item("role", s(role_s(m.role)))
            .item("joined_at", ts(m.joined_at))
            .item("from_seq", n(m.from_seq))
            .item("delivered", n(m.delivered))
            .item("read", n(m.read))
            .condition_expression("attribute_not_exists(#u)")
            .expression_attribute_names("#u", "user")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            // Already a member: joining again changes nothing (role and pointers stay).
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    async fn leave(&self, conv: &ConversationId, user: &UserId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.memberships)
            .key("user", s(user.as_str()))
            .key("conv", s(conv.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
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
                .key("user", s(user.as_str()))
                .key("conv", s(conv.as_str()))
                .update_expression("SET #r = :r")
                .condition_expression("attribute_exists(#u)")
                .expression_attribute_names("#r", "role")
                .expression_attribute_names("#u", "user")
                .expression_attribute_values(":r", s(role_s(role)))
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
            .key("user", s(user.as_str()))
            .key("conv", s(conv.as_str()))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.item.as_ref().map(membership_from).transpose()
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
                    .key_condition_expression("conv = :c")
                    .expression_attribute_values(":c", s(conv.as_str()))
            })
            .await?;
        items
            .iter()
            .map(|i| {
                Ok(Member {
                    user: id(i, "user", UserId::new)?,
                    role: get_role(i),
                    joined_at: get_t(i, "joined_at")?,
                    from_seq: get_from_seq(i)?,
                })
            })
            .collect()
    }

    async fn of_user(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.tables.memberships)
                    .key_condition_expression("#u = :u")
                    .expression_attribute_names("#u", "user")
                    .expression_attribute_values(":u", s(user.as_str()))
                    .consistent_read(true)
            })
            .await?;
        items.iter().map(membership_from).collect()
    }

    async fn advance(
        &self,
        conv: &ConversationId,
        user: &UserId,
        kind: ReceiptKind,
        seq: Seq,
    ) -> Result<bool, StoreError> {
        let pointer = match kind {
            ReceiptKind::Delivered => "delivered",
            ReceiptKind::Read => "read",
        };
        applied(
            self.client
                .update_item()
                .table_name(&self.tables.memberships)
                .key("user", s(user.as_str()))
                .key("conv", s(conv.as_str()))
                .update_expression("SET #p = :seq")
                .condition_expression("attribute_exists(#u) AND #p < :seq")
                .expression_attribute_names("#p", pointer)
                .expression_attribute_names("#u", "user")
                .expression_attribute_values(":seq", n(seq))
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
            .item("pk", s(format!("G#{}", info.conversation)))
            .item("sk", n(0))
            .item("name", s(info.name.as_str()))
            .item("created_by", s(info.created_by.as_str()))
            .item("created_at", ts(info.created_at))
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
            .map(|c| HashMap::from([("pk".into(), s(format!("G#{c}"))), ("sk".into(), n(0))]))
            .collect();
        let items = self.batch_get(&self.tables.messages, keys, true).await?;
        items
            .iter()
            .map(|item| {
                let pk = get_s(item, "pk")?;
                let conv = ConversationId::new(pk.trim_start_matches("G#"))
                    .map_err(|e| corrupt(e.to_string()))?;
                let info = GroupInfo {
                    conversation: conv.clone(),
                    name: get_s(item, "name")?.to_owned(),
                    created_by: id(item, "created_by", UserId::new)?,
                    created_at: get_t(item, "created_at")?,
                };
                Ok((conv, info))
            })
            .collect()
    }
}

#[async_trait]
impl MessageLog for DynamoStore {
    /// A consistent read of the head and the idempotency key (one BatchGetItem), then one
    /// TransactWriteItems that moves the head from `prev` to `prev + 1` and writes the message
    /// and its idempotency key. All or nothing, so a sender that dies at any point leaves no
    /// hole; a lost race on the head is retried with jittered backoff.
    async fn append(&self, msg: NewMessage) -> Result<Appended, StoreError> {
        let _queued = match &self.append_locks {
            Some(locks) => Some(locks.lock(&msg.conversation).await),
            None => None,
        };
        let head_key = Self::head_key(&msg.conversation);
        let idem_key = Self::idem_key(&msg.from, &msg.client_msg_id);
        let sent = msg.sent_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        for attempt in 0..self.max_attempts {
            let items = self
                .batch_get(
                    &self.tables.messages,
                    vec![head_key.clone(), idem_key.clone()],
                    true,
                )
                .await?;
            let pk_is = |item: &Item, key: &Item| item.get("pk") == key.get("pk");
            let idem = items.iter().find(|i| pk_is(i, &idem_key)).filter(|i| {
                // Same rule as the transaction's condition: an expired key no longer counts.
                get_s(i, "expires_at").map_or(true, |e| e > sent.as_str())
            });
            if let Some(idem) = idem {
                return Ok(Appended {
                    message: self.original(idem).await?,
                    duplicate: true,
                });
            }
            let head = items.iter().find(|i| pk_is(i, &head_key));
            let prev = head.map(|h| get_n(h, "last_seq")).transpose()?.unwrap_or(0);
            let (message, actions) = self.append_transaction(&msg, prev, head.is_some())?;
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match r {
                Ok(_) => {
                    return Ok(Appended {
                        message,
                        duplicate: false,
                    });
                }
                Err(e) => e,
            };
            let Some(cancelled) = err.as_service_error().and_then(read_cancellation) else {
                return Err(backend(err));
            };
            if cancelled.idempotency {
                // A concurrent retry of the same send won: answer with its message.
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.tables.messages)
                    .set_key(Some(idem_key.clone()))
                    .consistent_read(true)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(backend)?;
                let idem = out
                    .item
                    .ok_or_else(|| corrupt("idempotency key vanished"))?;
                return Ok(Appended {
                    message: self.original(&idem).await?,
                    duplicate: true,
                });
            }
            if !cancelled.other.is_empty() {
                return Err(corrupt(format!(
                    "append to {} cancelled: {}",
                    msg.conversation,
                    cancelled.other.join(", ")
                )));
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

    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        let distinct: Vec<&ConversationId> = {
            let mut seen = HashSet::new();
            convs.iter().filter(|c| seen.insert(*c)).collect()
        };
        let keys = distinct.iter().map(|c| Self::head_key(c)).collect();
        let heads = self.batch_get(&self.tables.messages, keys, true).await?;
        let mut by_pk = HashMap::new();
        for h in &heads {
            by_pk.insert(get_s(h, "pk")?.to_owned(), get_n(h, "last_seq")?);
        }
        Ok(distinct
            .into_iter()
            .map(|c| {
                let seq = by_pk.get(&format!("H#{c}")).copied().unwrap_or(0);
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
            let (page, marker, next) = self
                .query_bucket(
                    conv,
                    bucket,
                    Range::After(after),
                    limit - out.len(),
                    start,
                    now,
                )
                .await?;
            out.extend(page);
            continues |= marker;
            start = next;
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
            let (page, _, next) = self
                .query_bucket(
                    conv,
                    bucket,
                    Range::UpTo(top),
                    limit - out.len(),
                    start,
                    now,
                )
                .await?;
            out.extend(page);
            start = next;
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

#[async_trait]
impl LastSeen for DynamoStore {
    async fn touch(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.last_seen)
            .key("user", s(user.as_str()))
            .update_expression("SET #at = :t")
            .condition_expression("attribute_not_exists(#at) OR #at < :t")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":t", ts(at))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // A later instant is already recorded: last-seen never moves back.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get(&self, users: &[UserId]) -> Result<HashMap<UserId, DateTime<Utc>>, StoreError> {
        let distinct: HashSet<&UserId> = users.iter().collect();
        let keys = distinct
            .into_iter()
            .map(|u| HashMap::from([("user".to_owned(), s(u.as_str()))]))
            .collect();
        let items = self.batch_get(&self.tables.last_seen, keys, false).await?;
        items
            .iter()
            .map(|i| Ok((id(i, "user", UserId::new)?, get_t(i, "at")?)))
            .collect()
    }
}

fn platform_s(p: Platform) -> &'static str {
    match p {
        Platform::Apns => "apns",
        Platform::ApnsSandbox => "apns_sandbox",
        Platform::Fcm => "fcm",
    }
}

fn device_from(item: &Item) -> Result<PushDevice, StoreError> {
    let platform = match get_s(item, "platform")? {
        "apns" => Platform::Apns,
        "apns_sandbox" => Platform::ApnsSandbox,
        "fcm" => Platform::Fcm,
        other => return Err(corrupt(format!("unknown platform {other:?}"))),
    };
    Ok(PushDevice {
        user: id(item, "user", UserId::new)?,
        device: id(item, "device", DeviceId::new)?,
        platform,
        token: get_s(item, "token")?.to_owned(),
        endpoint: get_s(item, "endpoint")?.to_owned(),
        preview: matches!(item.get("preview"), Some(AttributeValue::Bool(true))),
        registered_at: get_t(item, "registered_at")?,
    })
}

/// How long a push claim item lives: far past any coalescing window; TTL clears old ones.
const CLAIM_TTL: chrono::Duration = chrono::Duration::days(1);

#[async_trait]
impl PushDevices for DynamoStore {
    async fn put(&self, d: &PushDevice) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.devices)
            .item("user", s(d.user.as_str()))
            .item("sk", s(format!("D#{}", d.device)))
            .item("device", s(d.device.as_str()))
            .item("platform", s(platform_s(d.platform)))
            .item("token", s(d.token.as_str()))
            .item("endpoint", s(d.endpoint.as_str()))
            .item("preview", AttributeValue::Bool(d.preview))
            .item("registered_at", ts(d.registered_at))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.devices)
            .key("user", s(user.as_str()))
            .key("sk", s(format!("D#{device}")))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.item.as_ref().map(device_from).transpose()
    }

    async fn remove(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.devices)
            .key("user", s(user.as_str()))
            .key("sk", s(format!("D#{device}")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.attributes
            .filter(|a| !a.is_empty())
            .as_ref()
            .map(device_from)
            .transpose()
    }

    /// One Query per user (registrations only, not claims), all at once.
    async fn of_users(&self, users: &[UserId]) -> Result<Vec<PushDevice>, StoreError> {
        let items = self
            .query_each_user(users, &|user| {
                self.client
                    .query()
                    .table_name(&self.tables.devices)
                    .key_condition_expression("#u = :u AND begins_with(sk, :d)")
                    .expression_attribute_names("#u", "user")
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":d", s("D#"))
            })
            .await?;
        items.iter().map(device_from).collect()
    }

    /// A conditional PutItem: it succeeds only if no claim stands that is both recent and for
    /// a seq the user has not acked, so concurrent senders cannot both push.
    async fn claim(&self, c: &PushClaim) -> Result<bool, StoreError> {
        applied(
            self.client
                .put_item()
                .table_name(&self.tables.devices)
                .item("user", s(c.user.as_str()))
                .item("sk", s(format!("C#{}#{}", c.device, c.conversation)))
                .item("claimed_at", ts(c.at))
                .item("claimed_seq", n(c.seq))
                .item(TTL_ATTR, ttl(c.at + CLAIM_TTL))
                .condition_expression(
                    "attribute_not_exists(sk) OR claimed_at <= :nb OR claimed_seq <= :acked",
                )
                .expression_attribute_values(":nb", ts(c.not_before))
                .expression_attribute_values(":acked", n(c.acked))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    async fn release(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.devices)
            .key("user", s(user.as_str()))
            .key("sk", s(format!("C#{device}#{conv}")))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
