//! Adapter layer: per-user rate limits ([`RateLimiter`]) on the `presence` table. Each bucket is
//! one attribute of the user's item, `rl_<bucket>` (N): the instant, in epoch microseconds, at
//! which the bucket is full again (GCRA, [`Rate::decide`]). Shared by every Lambda instance.
//!
//! A token is one conditional UpdateItem, in one of two forms:
//! - the bucket is full (`rl <= now`, or absent): `SET rl = now + interval`;
//! - it is partly used (`now < rl <= now + tolerance`): `SET rl = rl + interval`, an atomic
//!   add, so concurrent takes from any number of processes never hand out more than the rate.
//!
//! Which form applies is known from the last value this process saw for the user (kept in a
//! small map); when it guesses wrong (another process moved the bucket), the failed condition
//! returns the stored value (`ALL_OLD`) and the right form follows: 1 request per token, 2 at
//! worst. The stored value only ever grows, so a value this process saw that already refuses
//! refuses without a request. A process takes one user's tokens one at a time (striped locks),
//! so a burst from one connection costs one request per token it gets, and none per refusal.

use super::codec::s;
use super::{DynamoStore, USER, backend, is_condition_failed};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use messenger::domain::UserId;
use messenger::ports::{RateLimiter, StoreError};
use messenger::ratelimit::{Bucket, Decision, Rate};
use std::collections::HashMap;
use std::sync::Mutex;

/// The last full-again instant this process saw per (user, bucket), in epoch microseconds, and
/// striped locks that queue one user's takes in this process.
#[derive(Debug)]
pub(super) struct Hints {
    seen: Mutex<HashMap<(UserId, Bucket), i64>>,
    queues: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Hints {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            queues: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

/// Forgotten all at once past this many entries (a hint is only a guess).
const HINTS_MAX: usize = 100_000;

impl Hints {
    fn get(&self, user: &UserId, bucket: Bucket) -> Option<i64> {
        let map = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(user.clone(), bucket)).copied()
    }

    /// Waits for this process's other takes from the same (user, bucket) stripe.
    async fn queue(&self, user: &UserId, bucket: Bucket) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((user, bucket));
        self.queues[(hash % self.queues.len() as u64) as usize]
            .lock()
            .await
    }

    fn set(&self, user: &UserId, bucket: Bucket, micros: i64) {
        let mut map = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= HINTS_MAX {
            map.clear();
        }
        let e = map.entry((user.clone(), bucket)).or_insert(micros);
        *e = (*e).max(micros);
    }
}

fn attribute(bucket: Bucket) -> String {
    format!("rl_{}", bucket.name())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn number(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn read_micros(v: Option<&AttributeValue>) -> Option<i64> {
    v.and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn take(
        &self,
        user: &UserId,
        bucket: Bucket,
        rate: Rate,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        if rate.is_off() {
            return Ok(Decision::Allowed { until: now });
        }
        let _queued = self.limiter_hints.queue(user, bucket).await;
        // Stored to the microsecond: decide at that precision too.
        let now = instant(micros(now));
        let name = attribute(bucket);
        let mut known = self.limiter_hints.get(user, bucket).map(instant);
        for _ in 0..4 {
            let (update, until) = match rate.decide(known, now) {
                Decision::Limited { retry_after } => {
                    return Ok(Decision::Limited { retry_after });
                }
                Decision::Allowed { until } => (self.update_presence_item(user), until),
            };
            let busy = known.is_some_and(|t| t > now);
            let update = if busy {
                update
                    .update_expression("SET #rl = #rl + :interval")
                    .condition_expression("#rl > :now AND #rl <= :limit")
                    .expression_attribute_values(
                        ":interval",
                        number(rate.interval().num_microseconds().unwrap_or(i64::MAX)),
                    )
                    .expression_attribute_values(":limit", number(micros(now + rate.tolerance())))
            } else {
                update
                    .update_expression("SET #rl = :until")
                    .condition_expression("attribute_not_exists(#rl) OR #rl <= :now")
                    .expression_attribute_values(":until", number(micros(until)))
            };
            let r = update
                .expression_attribute_names("#rl", name.as_str())
                .expression_attribute_values(":now", number(micros(now)))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match r {
                Ok(out) => {
                    let stored = read_micros(out.attributes().and_then(|a| a.get(&name)))
                        .unwrap_or(micros(until));
                    self.limiter_hints.set(user, bucket, stored);
                    return Ok(Decision::Allowed {
                        until: instant(stored),
                    });
                }
                Err(e) if is_condition_failed(&e) => {
                    // Another process moved the bucket: decide again with what is stored.
                    let old = match e.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                            read_micros(c.item().and_then(|i| i.get(&name)))
                        }
                        _ => None,
                    };
                    if let Some(t) = old {
                        self.limiter_hints.set(user, bucket, t);
                    }
                    known = old.map(instant);
                }
                Err(e) => return Err(backend(e)),
            }
        }
        // Others keep moving this user's bucket as fast as this process reads it: a burst.
        Ok(Decision::Limited {
            retry_after: rate.interval(),
        })
    }
}

impl DynamoStore {
    /// An UpdateItem of a user's presence item (consumed capacity reported).
    fn update_presence_item(
        &self,
        user: &UserId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.tables.presence)
            .key(USER, s(user.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_an_attribute_of_the_users_item() {
        assert_eq!(attribute(Bucket::Send), "rl_send");
        assert_eq!(attribute(Bucket::Reads), "rl_reads");
        let t = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        assert_eq!(instant(micros(t)), t);
        assert_eq!(read_micros(Some(&number(42))), Some(42));
    }

    #[test]
    fn hints_only_grow() {
        let hints = Hints::default();
        let u = UserId::new("alice").unwrap();
        hints.set(&u, Bucket::Send, 10);
        hints.set(&u, Bucket::Send, 5);
        assert_eq!(hints.get(&u, Bucket::Send), Some(10));
        assert_eq!(hints.get(&u, Bucket::Groups), None);
    }
}
