//! Adapter layer: the `presence` table (pk `user`): one item per user holding their live
//! connections (a map, `conns`) and when they were last seen (`at`), and the [`Connections`]
//! port on it. One item per user makes the connections of many users one BatchGetItem, and
//! puts the whole of `$connect` and `$disconnect` in one UpdateItem each.
//!
//! (Deployed, this is the table that was `last_seen`, pk `user`, `at`: the connections were
//! added beside the instant, so the existing items and their last-seen stay valid.)

use super::codec::{self, from_item, instant_value, to_item};
use super::{DynamoStore, Item, USER, backend, is_condition_failed};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger::ports::{Connections, StoreError, UserPresence};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The map of live connections: connection id → [`ConnEntry`].
const CONNS: &str = "conns";
/// When the user was last seen (the latest connect or disconnect recorded).
const AT: &str = "at";
/// How many groups the user is in (N), counted by membership changes (`effects.rs`).
pub(super) const GROUPS: &str = "groups";
/// How often `$connect` retries when a concurrent first connect of the same user created the
/// map under it.
const PUT_ATTEMPTS: usize = 5;

/// One user's item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PresenceItem {
    user: UserId,
    #[serde(
        with = "codec::opt_instant",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    at: Option<DateTime<Utc>>,
    /// Absent on items written before connections lived here (`last_seen` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conns: Option<BTreeMap<String, ConnEntry>>,
    /// Groups the user is in; absent until their first group change. Memberships from before
    /// the count existed are not in it (it may even go below zero as they end: read as 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<i64>,
}

impl PresenceItem {
    /// The user's group count (0 when never counted).
    pub(super) fn groups(&self) -> usize {
        self.groups.unwrap_or(0).max(0) as usize
    }
}

/// Decodes a presence item (for other tables' batched reads that include it).
pub(super) fn groups_of_item(item: Item) -> Result<(UserId, usize), StoreError> {
    let item: PresenceItem = from_item(item)?;
    Ok((item.user.clone(), item.groups()))
}

/// The key of a user's presence item.
pub(super) fn presence_key(user: &UserId) -> Result<Item, StoreError> {
    to_item(&PresenceKey { user })
}

/// One connection inside a user's item. A connection whose `$disconnect` never ran stays until
/// `expires_at` (readers skip it after that) and is dropped by that user's next `$connect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ConnEntry {
    device: DeviceId,
    #[serde(with = "codec::instant")]
    connected_at: DateTime<Utc>,
    #[serde(with = "codec::instant")]
    expires_at: DateTime<Utc>,
}

/// The key of one user's item.
#[derive(Serialize)]
struct PresenceKey<'a> {
    user: &'a UserId,
}

impl From<&Connection> for ConnEntry {
    fn from(c: &Connection) -> Self {
        Self {
            device: c.device.clone(),
            connected_at: c.connected_at,
            expires_at: c.expires_at,
        }
    }
}

impl PresenceItem {
    /// The connections in the item (expired ones included), in id order.
    fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.conns
            .iter()
            .flatten()
            .map(|(id, e)| {
                Ok(Connection {
                    id: ConnectionId::new(id.as_str())
                        .map_err(|e| super::corrupt(e.to_string()))?,
                    user: self.user.clone(),
                    device: e.device.clone(),
                    connected_at: e.connected_at,
                    expires_at: e.expires_at,
                })
            })
            .collect()
    }
}

type UpdateResult =
    Result<UpdateItemOutput, SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>>;

/// The item a failed condition found (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), or
/// `None` when there was none; any other error is passed on.
fn condition_failed_old(r: &UpdateResult) -> Option<Option<Item>> {
    match r {
        Err(e) if is_condition_failed(e) => Some(
            e.as_service_error()
                .and_then(|e| match e {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item.clone(),
                    _ => None,
                })
                .filter(|i| !i.is_empty()),
        ),
        _ => None,
    }
}

impl DynamoStore {
    /// An UpdateItem of `user`'s item (consumed capacity reported).
    fn update_presence(&self, user: &UserId) -> Result<UpdateItemFluentBuilder, StoreError> {
        Ok(self
            .client
            .update_item()
            .table_name(&self.tables.presence)
            .set_key(Some(to_item(&PresenceKey { user })?))
            .expression_attribute_names("#conns", CONNS)
            .return_consumed_capacity(ReturnConsumedCapacity::Total))
    }

    /// Removes from `item` (a user's item just after `$connect` wrote `conn`) the connections
    /// that expired before `conn` opened, and past `max_live` live ones the oldest others (one
    /// UpdateItem, only when there are some): what keeps a user's item from filling with
    /// sockets that died without a `$disconnect`, and a user under the cap. Returns the live
    /// connections removed, oldest first, for the caller to close.
    async fn tidy(
        &self,
        item: Option<Item>,
        conn: &Connection,
        max_live: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let Some(item) = item.filter(|i| !i.is_empty()) else {
            return Ok(Vec::new());
        };
        let item: PresenceItem = from_item(item)?;
        let all = item.connections()?;
        let now = conn.connected_at;
        let (live, expired): (Vec<Connection>, Vec<Connection>) =
            all.into_iter().partition(|c| c.expires_at > now);
        let mut others: Vec<Connection> = live.into_iter().filter(|c| c.id != conn.id).collect();
        others.sort_by(|a, b| (a.connected_at, &a.id).cmp(&(b.connected_at, &b.id)));
        let over = (others.len() + 1).saturating_sub(max_live);
        others.truncate(if max_live == 0 { 0 } else { over });
        let drop: Vec<&Connection> = expired.iter().chain(&others).collect();
        if drop.is_empty() {
            return Ok(Vec::new());
        }
        let mut update = self.update_presence(&item.user)?;
        let mut paths = Vec::new();
        for (i, c) in drop.iter().enumerate() {
            update = update.expression_attribute_names(format!("#x{i}"), c.id.as_str());
            paths.push(format!("#conns.#x{i}"));
        }
        update
            .update_expression(format!("REMOVE {}", paths.join(", ")))
            .send()
            .await
            .map_err(backend)?;
        Ok(others)
    }
}

#[async_trait]
impl Connections for DynamoStore {
    /// One UpdateItem `SET conns.<id> = :c, at = :t` (with `at` kept monotonic) that also
    /// returns the item, and one more only when the item holds expired connections, or more
    /// live ones than `max_live`, to drop. The very first connect of a user creates the map
    /// (`attribute_not_exists(conns)`); a concurrent first connect that loses that race simply
    /// retries.
    async fn put(&self, conn: &Connection, max_live: usize) -> Result<Vec<Connection>, StoreError> {
        let entry = codec::value(&ConnEntry::from(conn))?;
        let t = instant_value(conn.connected_at);
        for _ in 0..PUT_ATTEMPTS {
            let r = self
                .update_presence(&conn.user)?
                .update_expression("SET #conns.#id = :c, #at = :t")
                .condition_expression(
                    "attribute_exists(#conns) AND (attribute_not_exists(#at) OR #at < :t)",
                )
                .expression_attribute_names("#id", conn.id.as_str())
                .expression_attribute_names("#at", AT)
                .expression_attribute_values(":c", entry.clone())
                .expression_attribute_values(":t", t.clone())
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match condition_failed_old(&r) {
                None => {
                    let out = r.map_err(backend)?;
                    return self.tidy(out.attributes, conn, max_live).await;
                }
                Some(old) => old,
            };
            let old: Option<PresenceItem> = old.map(from_item).transpose()?;
            if old.as_ref().is_some_and(|o| o.conns.is_some()) {
                // The map exists; a later instant is already recorded: add the connection alone.
                let r = self
                    .update_presence(&conn.user)?
                    .update_expression("SET #conns.#id = :c")
                    .condition_expression("attribute_exists(#conns)")
                    .expression_attribute_names("#id", conn.id.as_str())
                    .expression_attribute_values(":c", entry.clone())
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await;
                if condition_failed_old(&r).is_none() {
                    let out = r.map_err(backend)?;
                    return self.tidy(out.attributes, conn, max_live).await;
                }
                continue;
            }
            // No map yet (a new user, or an item from before connections lived here).
            let at = old
                .and_then(|o| o.at)
                .map_or(conn.connected_at, |a| a.max(conn.connected_at));
            let map = AttributeValue::M(HashMap::from([(conn.id.to_string(), entry.clone())]));
            let r = self
                .update_presence(&conn.user)?
                .update_expression("SET #conns = :m, #at = :t")
                .condition_expression("attribute_not_exists(#conns)")
                .expression_attribute_names("#at", AT)
                .expression_attribute_values(":m", map)
                .expression_attribute_values(":t", instant_value(at))
                .send()
                .await;
            if condition_failed_old(&r).is_none() {
                r.map_err(backend)?;
                return Ok(Vec::new());
            }
        }
        Err(StoreError::Backend(
            format!(
                "registering connection {} of {} raced {PUT_ATTEMPTS} times",
                conn.id, conn.user
            )
            .into(),
        ))
    }

    /// One UpdateItem `REMOVE conns.<id> SET at = :t` while `at` is older; when a later instant
    /// is already recorded (or the user has no item), a second request does the other half.
    async fn disconnect(
        &self,
        user: &UserId,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = instant_value(at);
        let r = self
            .update_presence(user)?
            .update_expression("REMOVE #conns.#id SET #at = :t")
            .condition_expression(
                "attribute_exists(#conns) AND (attribute_not_exists(#at) OR #at < :t)",
            )
            .expression_attribute_names("#id", id.as_str())
            .expression_attribute_names("#at", AT)
            .expression_attribute_values(":t", t.clone())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Some(old) = condition_failed_old(&r) else {
            r.map_err(backend)?;
            return Ok(());
        };
        let has_conns = old
            .map(from_item::<PresenceItem>)
            .transpose()?
            .is_some_and(|o| o.conns.is_some());
        if has_conns {
            // Last-seen is already later: only the connection goes.
            self.remove(user, id).await
        } else {
            // No connections recorded: only last-seen moves (never back).
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.presence)
                .set_key(Some(to_item(&PresenceKey { user })?))
                .update_expression("SET #at = :t")
                .condition_expression("attribute_not_exists(#at) OR #at < :t")
                .expression_attribute_names("#at", AT)
                .expression_attribute_values(":t", t)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            super::applied(r).map(drop)
        }
    }

    /// An UpdateItem `REMOVE conns.<id>` (under `attribute_exists(conns)`: a user without
    /// connections has nothing to remove).
    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError> {
        let r = self
            .update_presence(user)?
            .update_expression("REMOVE #conns.#id")
            .condition_expression("attribute_exists(#conns)")
            .expression_attribute_names("#id", id.as_str())
            .send()
            .await;
        super::applied(r).map(drop)
    }

    /// One BatchGetItem per 100 users, eventually consistent (half the cost): a device that
    /// connected a moment ago may miss one delivery, and that device syncs right after
    /// connecting anyway.
    async fn presence(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UserId, UserPresence>, StoreError> {
        let distinct: HashSet<&UserId> = users.iter().collect();
        let keys = distinct
            .into_iter()
            .map(|user| to_item(&PresenceKey { user }))
            .collect::<Result<_, _>>()?;
        let items = self.batch_get(&self.tables.presence, keys, false).await?;
        items
            .into_iter()
            .map(|item| {
                let item: PresenceItem = from_item(item)?;
                let connections = item
                    .connections()?
                    .into_iter()
                    .filter(|c| c.expires_at > now)
                    .collect();
                let presence = UserPresence {
                    connections,
                    last_seen: item.at,
                };
                Ok((item.user, presence))
            })
            .collect()
    }
}

/// The partition key attribute, for the schema.
pub(super) const PK: &str = USER;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::codec::s;
    use crate::dynamo::codec::tests::{item, t0};

    fn presence_item() -> PresenceItem {
        PresenceItem {
            user: UserId::new("alice").unwrap(),
            at: Some(t0()),
            conns: Some(BTreeMap::from([(
                "Ab1=".to_owned(),
                ConnEntry {
                    device: DeviceId::new("phone").unwrap(),
                    connected_at: t0(),
                    expires_at: t0() + chrono::Duration::minutes(125),
                },
            )])),
            groups: None,
        }
    }

    #[test]
    fn a_user_item_round_trips_and_its_format_is_pinned() {
        let stored = to_item(&presence_item()).unwrap();
        assert_eq!(
            stored,
            item([
                ("user", s("alice")),
                ("at", s("2026-11-29T05:45:39.120000000Z")),
                (
                    "conns",
                    AttributeValue::M(HashMap::from([(
                        "Ab1=".to_owned(),
                        AttributeValue::M(HashMap::from([
                            ("device".to_owned(), s("phone")),
                            (
                                "connected_at".to_owned(),
                                s("2026-11-29T05:45:39.120000000Z")
                            ),
                            ("expires_at".to_owned(), s("2026-11-29T07:50:39.120000000Z")),
                        ])),
                    )])),
                ),
            ])
        );
        let back: PresenceItem = from_item(stored).unwrap();
        assert_eq!(back, presence_item());
        assert_eq!(
            back.connections().unwrap(),
            vec![Connection {
                id: ConnectionId::new("Ab1=").unwrap(),
                user: UserId::new("alice").unwrap(),
                device: DeviceId::new("phone").unwrap(),
                connected_at: t0(),
                expires_at: t0() + chrono::Duration::minutes(125),
            }]
        );
        // The group count, and the rate limiters' attributes, ride along.
        let mut counted = to_item(&presence_item()).unwrap();
        counted.insert("groups".into(), AttributeValue::N("3".into()));
        counted.insert("rl_send".into(), AttributeValue::N("1".into()));
        assert_eq!(groups_of_item(counted.clone()).unwrap().1, 3);
        counted.insert("groups".into(), AttributeValue::N("-2".into()));
        assert_eq!(groups_of_item(counted).unwrap().1, 0, "never below zero");
        // What `$connect` writes into `conns.<id>` is what the item holds there.
        let entry = presence_item().conns.unwrap().remove("Ab1=").unwrap();
        assert_eq!(
            codec::value(&entry).unwrap(),
            to_item(&presence_item()).unwrap()["conns"].as_m().unwrap()["Ab1="]
        );
    }

    #[test]
    fn an_item_written_before_connections_lived_here_reads_as_offline() {
        // A `last_seen` item: only the user and the instant.
        let old = item([
            ("user", s("carol")),
            ("at", s("2026-11-29T05:45:39.120000000Z")),
        ]);
        let back: PresenceItem = from_item(old).unwrap();
        assert_eq!((back.at, back.conns.clone()), (Some(t0()), None));
        assert_eq!(back.groups(), 0);
        assert_eq!(back.connections().unwrap(), vec![]);
        assert_eq!(
            to_item(&PresenceKey { user: &back.user }).unwrap(),
            item([("user", s("carol"))])
        );
    }
}
