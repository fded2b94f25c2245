//! Adapter layer: the `connections` table (pk `user`, sk `conn`), live WebSocket connections,
//! and the [`Connections`] port on it.

use super::codec::{self, from_item, instant_value, s, to_item};
use super::{DynamoStore, USER, backend};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger::ports::{Connections, StoreError};
use serde::{Deserialize, Serialize};

/// The sort key: the API Gateway connection id.
pub(super) const CONN: &str = "conn";
/// When the record stops counting as live (API Gateway closes every socket after 2 h).
const EXPIRES_AT: &str = "expires_at";

/// One live connection. `ttl` lets DynamoDB remove records whose `$disconnect` never ran;
/// readers filter on the exact `expires_at`, since TTL deletes late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ConnectionItem {
    user: UserId,
    conn: ConnectionId,
    device: DeviceId,
    #[serde(with = "codec::instant")]
    connected_at: DateTime<Utc>,
    #[serde(with = "codec::instant")]
    expires_at: DateTime<Utc>,
    #[serde(with = "codec::ttl")]
    ttl: DateTime<Utc>,
}

/// The key of one connection.
#[derive(Serialize)]
struct ConnectionKey<'a> {
    user: &'a UserId,
    conn: &'a ConnectionId,
}

impl From<&Connection> for ConnectionItem {
    fn from(c: &Connection) -> Self {
        Self {
            user: c.user.clone(),
            conn: c.id.clone(),
            device: c.device.clone(),
            connected_at: c.connected_at,
            expires_at: c.expires_at,
            ttl: c.expires_at,
        }
    }
}

impl From<ConnectionItem> for Connection {
    fn from(i: ConnectionItem) -> Self {
        Self {
            id: i.conn,
            user: i.user,
            device: i.device,
            connected_at: i.connected_at,
            expires_at: i.expires_at,
        }
    }
}

#[async_trait]
impl Connections for DynamoStore {
    async fn put(&self, conn: &Connection) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(to_item(&ConnectionItem::from(conn))?))
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
            .set_key(Some(to_item(&ConnectionKey { user, conn: id })?))
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
                    .filter_expression("#e > :now")
                    .expression_attribute_names("#u", USER)
                    .expression_attribute_names("#e", EXPIRES_AT)
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":now", instant_value(now))
            })
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<ConnectionItem>(item).map(Connection::from))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::codec::tests::{item, t0};
    use aws_sdk_dynamodb::types::AttributeValue::N;

    fn connection() -> Connection {
        Connection {
            id: ConnectionId::new("Ab1=").unwrap(),
            user: UserId::new("alice").unwrap(),
            device: DeviceId::new("phone").unwrap(),
            connected_at: t0(),
            expires_at: t0() + chrono::Duration::minutes(125),
        }
    }

    #[test]
    fn a_connection_round_trips() {
        let c = connection();
        let stored = to_item(&ConnectionItem::from(&c)).unwrap();
        let back: ConnectionItem = from_item(stored).unwrap();
        assert_eq!(Connection::from(back), c);
    }

    #[test]
    fn the_stored_format_is_pinned() {
        let stored = to_item(&ConnectionItem::from(&connection())).unwrap();
        assert_eq!(
            stored,
            item([
                ("user", s("alice")),
                ("conn", s("Ab1=")),
                ("device", s("phone")),
                ("connected_at", s("2026-11-29T05:45:39.120000000Z")),
                ("expires_at", s("2026-11-29T07:50:39.120000000Z")),
                ("ttl", N("1795938640".into())),
            ])
        );
        for name in [USER, CONN, EXPIRES_AT, codec::TTL_ATTR] {
            assert!(stored.contains_key(name), "{name} is an attribute");
        }
        let key = to_item(&ConnectionKey {
            user: &UserId::new("alice").unwrap(),
            conn: &ConnectionId::new("Ab1=").unwrap(),
        })
        .unwrap();
        assert_eq!(key, item([("user", s("alice")), ("conn", s("Ab1="))]));
    }
}
