//! Adapter layer: every storage port on DynamoDB, one module per table. Tables, keys and the
//! requests each route makes are described in docs/data-model.md; keep the two in step.
//!
//! - `schema`: creating the tables (tests and local set-ups; deployments use the template).
//! - `codec`: the stored encodings (instants, TTL, JSON in a string) as serde helpers.
//! - `presence` (each user's live connections and last-seen, one item per user), `memberships`
//!   (and group metadata), `messages` (the log; its append transaction and retry in `append`,
//!   the amend transaction in `amend`), `devices`: each table's typed items, their conversions
//!   to and from the domain, and the port on that table.
//! - `reads`: the cross-table BatchGetItems that `send`, `ack` and group changes start with.
//! - `effects`: an append's membership changes, as actions of its transaction.
//! - `limiter`: per-user rate limits, attributes of each user's `presence` item.
//! - `reports`: reports of messages, `X#<day>` items of `messages` no client action reads.
//! - `blocks`: who blocked whom, records `#B#<blocked>` in the blocker's `memberships` partition.
//!
//! This file: the store, its builders and counters, and the request helpers the tables share
//! (batched gets, paged and per-user Queries, conditional writes, backoff, error mapping and
//! the classification of failures into what may be retried).
//!
//! Retries happen in two layers. The SDK retries every single request (standard mode: 4
//! attempts, jittered exponential backoff from 20 ms to 1 s) on throttling, 5xx and timeouts,
//! with explicit timeouts ([`CallTimeouts::dynamodb`]). What the SDK cannot retry is ours: a
//! TransactWriteItems cancelled for a lost race, a conflict or throttling, or one whose outcome
//! is unknown (`append`), and unprocessed BatchGetItem keys — each with jittered backoff
//! ([`backoff`]) inside a time budget ([`DynamoStore::with_retry_budget`], 10 s by default), so a
//! `send` answers well within API Gateway's 29 s integration timeout.

mod amend;
mod append;
mod blocks;
mod codec;
mod devices;
mod effects;
mod limiter;
mod memberships;
mod messages;
mod presence;
mod reads;
mod reports;
mod schema;

pub use codec::TTL_ATTR;
pub use memberships::BY_CONVERSATION;
pub(crate) use messages::message_at;

use crate::metrics::{Counters, CountingInterceptor, Snapshot};
use crate::sdk::CallTimeouts;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use messenger::domain::UserId;
use messenger::ports::StoreError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// Default number of seqs per message-log partition (`M#<conv>#<seq / bucket>`).
pub const DEFAULT_BUCKET: u64 = 1000;
/// The partition key of `presence`, `memberships` and `devices`.
const USER: &str = "user";
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;
/// Most Queries one call runs at once (fan-out reads one per member).
const QUERY_CONCURRENCY: usize = 32;
/// How long our own retries (append transaction, unprocessed keys) may go on by default.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(10);
/// Error codes DynamoDB answers when a request was throttled (nothing was written).
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "Throttling",
];

/// The four table names (each deployment, and each test run, has its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// pk `user`: one item per user with their live connections and last-seen instant.
    pub presence: String,
    /// pk `user`, sk `conv`, GSI `by_conversation` (pk `conv`, sk `user`): memberships.
    pub memberships: String,
    /// pk `pk` (S), sk `sk` (N): conversation heads, message log buckets, idempotency keys.
    pub messages: String,
    /// pk `user`, sk `sk` (S): push registrations `D#<device>` and push claims
    /// `C#<device>#<conv>`.
    pub devices: String,
}

impl Tables {
    /// `<prefix>presence`, `<prefix>memberships`, `<prefix>messages`, `<prefix>devices`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            presence: format!("{prefix}presence"),
            memberships: format!("{prefix}memberships"),
            messages: format!("{prefix}messages"),
            devices: format!("{prefix}devices"),
        }
    }
}

/// The SDK's retries of single requests: standard mode (throttling, 5xx, timeouts), 4 attempts,
/// jittered exponential backoff from 20 ms up to 1 s.
fn sdk_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(4)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_secs(1))
}

/// Every storage port on DynamoDB. Clone-cheap; build once per process.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    bucket: u64,
    max_attempts: u32,
    retry_budget: Duration,
    counters: Arc<Counters>,
    append_locks: Option<Arc<append::AppendLocks>>,
    limiter_hints: Arc<limiter::Hints>,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
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

/// What a failed request says about its write, and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Throttled (request rate or partition capacity): nothing was written. Retry after a
    /// longer backoff.
    Throttled,
    /// Lost a race with another writer (a condition on the head, a transaction conflict):
    /// nothing was written. Retry soon.
    Race,
    /// No usable answer (timeout, connection lost, 5xx, unreadable response): the write may or
    /// may not have happened. Retry only what can find out (the append's next read does).
    Unknown,
    /// The request itself is wrong (validation, missing table, access denied): retrying cannot
    /// help.
    Permanent,
}

/// Classifies a failed request (after the SDK's own retries).
pub(crate) fn classify<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Failure
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    match e {
        SdkError::ConstructionFailure(_) => Failure::Permanent,
        SdkError::ServiceError(s) => match s.err().code() {
            Some(code) if THROTTLING.contains(&code) => Failure::Throttled,
            Some("TransactionConflictException" | "TransactionInProgressException") => {
                Failure::Race
            }
            _ if s.raw().status().is_server_error() => Failure::Unknown,
            _ => Failure::Permanent,
        },
        // Timeouts, dispatch failures (the request may have reached the server before the
        // connection broke) and responses that could not be read.
        _ => Failure::Unknown,
    }
}

/// What a cancelled transaction says when its failed conditions mean a lost race (an amend's:
/// another append or amendment moved the head or the message): a lost race or a conflict
/// (retry soon), throttling inside the transaction (retry after a longer pause), or a reason
/// retrying cannot fix (`Err`, with the reasons). `None` for any other error.
pub(crate) fn cancellation(e: &TransactWriteItemsError) -> Option<Result<Failure, String>> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e else {
        return None;
    };
    let mut throttled = false;
    let mut other = Vec::new();
    for (i, r) in tc.cancellation_reasons().iter().enumerate() {
        match r.code() {
            None | Some("None" | "ConditionalCheckFailed" | "TransactionConflict") => {}
            Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded") => {
                throttled = true
            }
            Some(code) => other.push(format!("action {i}: {code}")),
        }
    }
    Some(if !other.is_empty() {
        Err(other.join(", "))
    } else if throttled {
        Ok(Failure::Throttled)
    } else {
        Ok(Failure::Race)
    })
}

/// A random delay in `[0, min(cap, base·2^attempt)]` ("full jitter"): concurrent senders that
/// lost the same race spread out instead of colliding again. Throttling backs off ten times
/// longer (base 50 ms, cap 2 s) than a lost race (5 ms, 250 ms): the partition needs time.
fn backoff(attempt: u32, failure: Failure) -> Duration {
    let (base_ms, cap_ms) = match failure {
        Failure::Throttled => (50u64, 2_000u64),
        _ => (5, 250),
    };
    let ceiling_ms = (base_ms << attempt.min(8)).min(cap_ms);
    let r = getrandom::u64().unwrap_or(0);
    Duration::from_millis(r % (ceiling_ms + 1))
}

impl DynamoStore {
    /// A store over `tables`, with its own DynamoDB client (and request counters).
    pub fn new(sdk: &SdkConfig, tables: Tables) -> Self {
        Self::with_timeouts(sdk, tables, CallTimeouts::dynamodb())
    }

    /// A store whose requests use these timeouts (the default is [`CallTimeouts::dynamodb`]).
    pub fn with_timeouts(sdk: &SdkConfig, tables: Tables, timeouts: CallTimeouts) -> Self {
        let counters = Arc::new(Counters::default());
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(CountingInterceptor(counters.clone()))
            .retry_config(sdk_retries())
            .timeout_config(timeouts.config())
            .build();
        Self {
            client: Client::from_conf(config),
            tables,
            bucket: DEFAULT_BUCKET,
            max_attempts: 50,
            retry_budget: DEFAULT_RETRY_BUDGET,
            counters,
            append_locks: None,
            limiter_hints: Arc::default(),
        }
    }

    /// The same store with a client of its own whose SDK retries are never refused by the
    /// retry quota. By default every client of the process shares one token bucket (the SDK's
    /// "dynamodb" retry partition): under the fault-injection suites' 20 % fault rate it can run
    /// dry, the SDK then stops before its last attempt, and the "last attempt is spared"
    /// premise of those suites no longer holds. Production keeps the shared quota.
    pub fn with_unlimited_sdk_retries(mut self) -> Self {
        use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};
        let partition = RetryPartition::custom("messenger-unlimited")
            .token_bucket(TokenBucket::unlimited())
            .build();
        let config = self.client.config().to_builder().retry_partition(partition);
        self.client = Client::from_conf(config.build());
        self
    }

    /// How long an append (or a batched read) may keep retrying before it gives up with an
    /// error; the attempts ([`Self::with_max_attempts`]) bound it too.
    pub fn with_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Serialises this process's appends to the same conversation (striped locks). The
    /// conditional transaction alone is correct under any concurrency, but a burst of senders
    /// in one process would race for the head and retry O(n²) times; queueing them locally
    /// leaves only races between processes (Lambda instances) to the condition.
    pub fn with_local_append_lock(mut self) -> Self {
        self.append_locks = Some(Arc::new(append::AppendLocks::new(256)));
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

    /// One strongly consistent GetItem.
    pub(super) async fn get_consistent(
        &self,
        table: &str,
        key: Item,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// [`get_consistent`](Self::get_consistent), decoded as `T`.
    pub(super) async fn get_item<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: Item,
    ) -> Result<Option<T>, StoreError> {
        self.get_consistent(table, key)
            .await?
            .map(codec::from_item)
            .transpose()
    }

    /// BatchGetItem of `keys` from one table (at most 100 distinct keys per request;
    /// unprocessed keys are asked again after a backoff).
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = self
            .batch_get_tables(vec![(table.to_owned(), keys, consistent)])
            .await?;
        Ok(found.remove(table).unwrap_or_default())
    }

    /// BatchGetItem across tables: `(table, keys, consistent)` each, one request per 100 keys
    /// in all (DynamoDB's limit per request, whatever the tables), those requests in parallel;
    /// the found items by table.
    async fn batch_get_tables(
        &self,
        reads: Vec<(String, Vec<Item>, bool)>,
    ) -> Result<HashMap<String, Vec<Item>>, StoreError> {
        let mut queue: Vec<(String, Item, bool)> = reads
            .into_iter()
            .flat_map(|(t, keys, c)| keys.into_iter().map(move |k| (t.clone(), k, c)))
            .collect();
        let mut chunks = FuturesUnordered::new();
        while !queue.is_empty() {
            let rest = queue.split_off(queue.len().min(BATCH_GET_MAX));
            chunks.push(self.batch_get_request(std::mem::replace(&mut queue, rest)));
        }
        let mut found: HashMap<String, Vec<Item>> = HashMap::new();
        while let Some(items) = chunks.next().await {
            for (t, items) in items? {
                found.entry(t).or_default().extend(items);
            }
        }
        Ok(found)
    }

    /// One BatchGetItem of at most 100 keys; unprocessed keys (throttling) are asked again after
    /// a backoff.
    async fn batch_get_request(
        &self,
        keys: Vec<(String, Item, bool)>,
    ) -> Result<HashMap<String, Vec<Item>>, StoreError> {
        let mut by_table: HashMap<String, (Vec<Item>, bool)> = HashMap::new();
        for (t, k, c) in keys {
            by_table
                .entry(t)
                .or_insert_with(|| (Vec::new(), c))
                .0
                .push(k);
        }
        let mut pending = Some(
            by_table
                .into_iter()
                .map(|(t, (keys, c))| {
                    let ka = KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .consistent_read(c)
                        .build()
                        .map_err(backend)?;
                    Ok((t, ka))
                })
                .collect::<Result<HashMap<_, _>, StoreError>>()?,
        );
        let mut found: HashMap<String, Vec<Item>> = HashMap::new();
        let mut attempt = 0;
        let deadline = tokio::time::Instant::now() + self.retry_budget;
        while let Some(request) = pending.take() {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(backend)?;
            for (t, items) in out.responses.unwrap_or_default() {
                found.entry(t).or_default().extend(items);
            }
            pending = out
                .unprocessed_keys
                .map(|u| {
                    u.into_iter()
                        .filter(|(_, ka)| !ka.keys().is_empty())
                        .collect::<HashMap<_, _>>()
                })
                .filter(|u| !u.is_empty());
            if pending.is_some() {
                // Throttled keys come back unprocessed; AWS asks for backoff before retrying.
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Backend(
                        format!("BatchGetItem: keys still unprocessed (throttled) after {attempt} retries").into(),
                    ));
                }
                tokio::time::sleep(backoff(attempt, Failure::Throttled)).await;
                attempt += 1;
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
}
