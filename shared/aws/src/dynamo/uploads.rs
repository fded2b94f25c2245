//! Adapter layer: the upload allowance ([`UploadQuota`]) on the `devices` table: one counter
//! item per user and minute, `U#<minute since the epoch>` under the user's key, with a TTL. A
//! take is one conditional UpdateItem, so concurrent uploads from any number of processes never
//! get past the allowance, and a refusal writes nothing. (The `devices` table, not `messages`:
//! it has TTL and no stream, so counters wake no function.)

use super::codec::{self, n, to_item};
use super::{DynamoStore, applied};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, TimeZone, Utc};
use messenger::domain::UserId;
use messenger::ports::{StoreError, UploadQuota};
use serde::Serialize;

/// Sort-key prefix of an upload counter.
const UPLOADS: &str = "U#";
/// The count of uploads in the item's minute.
const COUNT: &str = "n";
/// How long a counter item lives after its minute ends (TTL deletes it).
const KEEP: chrono::Duration = chrono::Duration::hours(1);

/// An upload counter's key.
#[derive(Debug, Serialize)]
struct CounterKey<'a> {
    user: &'a UserId,
    sk: String,
}

impl<'a> CounterKey<'a> {
    fn new(user: &'a UserId, minute: i64) -> Self {
        Self {
            user,
            sk: format!("{UPLOADS}{minute}"),
        }
    }
}

#[async_trait]
impl UploadQuota for DynamoStore {
    async fn take_upload(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        per_minute: u32,
    ) -> Result<bool, StoreError> {
        let minute = now.timestamp().div_euclid(60);
        let ends = Utc
            .timestamp_opt((minute + 1) * 60, 0)
            .single()
            .unwrap_or(now);
        applied(
            self.client
                .update_item()
                .table_name(&self.tables.devices)
                .set_key(Some(to_item(&CounterKey::new(user, minute))?))
                .update_expression("ADD #n :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_names("#n", COUNT)
                .expression_attribute_names("#ttl", codec::TTL_ATTR)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(u64::from(per_minute)))
                .expression_attribute_values(":ttl", n((ends + KEEP).timestamp() as u64))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_keyed_by_user_and_minute() {
        let alice = UserId::new("alice").unwrap();
        let key = to_item(&CounterKey::new(&alice, 29_000_000)).unwrap();
        assert_eq!(
            key,
            crate::dynamo::codec::tests::item([
                ("user", codec::s("alice")),
                ("sk", codec::s("U#29000000")),
            ])
        );
    }
}
