//! Adapter layer: the `last_seen` table (pk `user`): when each user was last seen, and the
//! [`LastSeen`] port on it.

use super::codec::{self, from_item, instant_value, to_item};
use super::{DynamoStore, applied};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use messenger::domain::UserId;
use messenger::ports::{LastSeen, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The instant the user was last seen.
const AT: &str = "at";

/// One user's last-seen instant. Written only by `touch` (an UpdateItem), read by `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LastSeenItem {
    user: UserId,
    #[serde(with = "codec::instant")]
    at: DateTime<Utc>,
}

/// The key of one user's item.
#[derive(Serialize)]
struct LastSeenKey<'a> {
    user: &'a UserId,
}

#[async_trait]
impl LastSeen for DynamoStore {
    /// An UpdateItem under `attribute_not_exists(at) OR at < :t`: last-seen never moves back
    /// (a later instant already recorded is not an error).
    async fn touch(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        applied(
            self.client
                .update_item()
                .table_name(&self.tables.last_seen)
                .set_key(Some(to_item(&LastSeenKey { user })?))
                .update_expression("SET #at = :t")
                .condition_expression("attribute_not_exists(#at) OR #at < :t")
                .expression_attribute_names("#at", AT)
                .expression_attribute_values(":t", instant_value(at))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
        .map(|_| ())
    }

    async fn get(&self, users: &[UserId]) -> Result<HashMap<UserId, DateTime<Utc>>, StoreError> {
        let distinct: HashSet<&UserId> = users.iter().collect();
        let keys = distinct
            .into_iter()
            .map(|user| to_item(&LastSeenKey { user }))
            .collect::<Result<_, _>>()?;
        let items = self.batch_get(&self.tables.last_seen, keys, false).await?;
        items
            .into_iter()
            .map(|item| from_item::<LastSeenItem>(item).map(|i| (i.user, i.at)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::USER;
    use crate::dynamo::codec::s;
    use crate::dynamo::codec::tests::{item, t0};

    #[test]
    fn last_seen_round_trips_and_its_format_is_pinned() {
        let seen = LastSeenItem {
            user: UserId::new("carol").unwrap(),
            at: t0(),
        };
        let stored = to_item(&seen).unwrap();
        assert_eq!(
            stored,
            item([
                ("user", s("carol")),
                ("at", s("2026-11-29T05:45:39.120000000Z")),
            ])
        );
        assert!(stored.contains_key(USER) && stored.contains_key(AT));
        // What `touch` writes into `at` is what `get` reads back.
        assert_eq!(stored[AT], instant_value(t0()));
        assert_eq!(from_item::<LastSeenItem>(stored).unwrap(), seen);
        assert_eq!(
            to_item(&LastSeenKey { user: &seen.user }).unwrap(),
            item([("user", s("carol"))])
        );
    }
}
