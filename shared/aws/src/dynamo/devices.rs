//! Adapter layer: the `devices` table (pk `user`, sk `sk`): push registrations `D#<device>`
//! and push claims `C#<device>#<conv>`, and the [`PushDevices`] port on it.

use super::codec::{self, from_item, instant_value, n, s, to_item};
use super::{DynamoStore, USER, applied, backend};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use chrono::{DateTime, Utc};
use messenger::domain::{ConversationId, DeviceId, Seq, UserId};
use messenger::ports::{PushDevices, StoreError};
use messenger::push::{Platform, PushClaim, PushDevice};
use serde::{Deserialize, Serialize};

/// The sort key: `D#<device>` or `C#<device>#<conv>`.
pub(super) const SK: &str = "sk";
const CLAIMED_AT: &str = "claimed_at";
const CLAIMED_SEQ: &str = "claimed_seq";
/// Sort-key prefix of a registration.
const DEVICE: &str = "D#";
/// Sort-key prefix of a push claim.
const CLAIM: &str = "C#";

/// How long a push claim item lives: far past any coalescing window; TTL clears old ones.
const CLAIM_TTL: chrono::Duration = chrono::Duration::days(1);

/// A device registered for push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeviceItem {
    user: UserId,
    sk: String,
    device: DeviceId,
    platform: Platform,
    token: String,
    /// The SNS platform endpoint ARN.
    endpoint: String,
    #[serde(default)]
    preview: bool,
    #[serde(with = "codec::instant")]
    registered_at: DateTime<Utc>,
}

/// "Someone is pushing this device about this conversation": written conditionally, never
/// read back, deleted when the push fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClaimItem {
    user: UserId,
    sk: String,
    #[serde(with = "codec::instant")]
    claimed_at: DateTime<Utc>,
    claimed_seq: Seq,
    #[serde(with = "codec::ttl")]
    ttl: DateTime<Utc>,
}

/// The key of a registration or a claim.
#[derive(Serialize)]
struct DeviceKey<'a> {
    user: &'a UserId,
    sk: String,
}

impl<'a> DeviceKey<'a> {
    fn registration(user: &'a UserId, device: &DeviceId) -> Self {
        Self {
            user,
            sk: format!("{DEVICE}{device}"),
        }
    }

    fn claim(user: &'a UserId, device: &DeviceId, conv: &ConversationId) -> Self {
        Self {
            user,
            sk: format!("{CLAIM}{device}#{conv}"),
        }
    }
}

impl From<&PushDevice> for DeviceItem {
    fn from(d: &PushDevice) -> Self {
        Self {
            user: d.user.clone(),
            sk: DeviceKey::registration(&d.user, &d.device).sk,
            device: d.device.clone(),
            platform: d.platform,
            token: d.token.clone(),
            endpoint: d.endpoint.clone(),
            preview: d.preview,
            registered_at: d.registered_at,
        }
    }
}

impl From<DeviceItem> for PushDevice {
    fn from(i: DeviceItem) -> Self {
        Self {
            user: i.user,
            device: i.device,
            platform: i.platform,
            token: i.token,
            endpoint: i.endpoint,
            preview: i.preview,
            registered_at: i.registered_at,
        }
    }
}

impl From<&PushClaim> for ClaimItem {
    fn from(c: &PushClaim) -> Self {
        Self {
            user: c.user.clone(),
            sk: DeviceKey::claim(&c.user, &c.device, &c.conversation).sk,
            claimed_at: c.at,
            claimed_seq: c.seq,
            ttl: c.at + CLAIM_TTL,
        }
    }
}

#[async_trait]
impl PushDevices for DynamoStore {
    async fn put(&self, d: &PushDevice) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.devices)
            .set_item(Some(to_item(&DeviceItem::from(d))?))
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
            .set_key(Some(to_item(&DeviceKey::registration(user, device))?))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.item
            .map(|item| from_item::<DeviceItem>(item).map(PushDevice::from))
            .transpose()
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
            .set_key(Some(to_item(&DeviceKey::registration(user, device))?))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(|item| from_item::<DeviceItem>(item).map(PushDevice::from))
            .transpose()
    }

    /// One Query per user (registrations only, not claims), all at once.
    async fn of_users(&self, users: &[UserId]) -> Result<Vec<PushDevice>, StoreError> {
        let items = self
            .query_each_user(users, &|user| {
                self.client
                    .query()
                    .table_name(&self.tables.devices)
                    .key_condition_expression("#u = :u AND begins_with(#sk, :d)")
                    .expression_attribute_names("#u", USER)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":d", s(DEVICE))
            })
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<DeviceItem>(item).map(PushDevice::from))
            .collect()
    }

    /// A conditional PutItem: it succeeds only if no claim stands that is both recent and for
    /// a seq the user has not acked, so concurrent senders cannot both push.
    async fn claim(&self, c: &PushClaim) -> Result<bool, StoreError> {
        applied(
            self.client
                .put_item()
                .table_name(&self.tables.devices)
                .set_item(Some(to_item(&ClaimItem::from(c))?))
                .condition_expression("attribute_not_exists(#sk) OR #at <= :nb OR #seq <= :acked")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#at", CLAIMED_AT)
                .expression_attribute_names("#seq", CLAIMED_SEQ)
                .expression_attribute_values(":nb", instant_value(c.not_before))
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
            .set_key(Some(to_item(&DeviceKey::claim(user, device, conv))?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::codec::tests::{item, t0};
    use aws_sdk_dynamodb::types::AttributeValue;

    fn device(platform: Platform, preview: bool) -> PushDevice {
        PushDevice {
            user: UserId::new("bob").unwrap(),
            device: DeviceId::new("tablet").unwrap(),
            platform,
            token: "tok-1".into(),
            endpoint: "arn:aws:sns:eu-west-1:000000000000:endpoint/GCM/app/1".into(),
            preview,
            registered_at: t0(),
        }
    }

    #[test]
    fn a_registration_round_trips_and_its_format_is_pinned() {
        let d = device(Platform::ApnsSandbox, true);
        let stored = to_item(&DeviceItem::from(&d)).unwrap();
        assert_eq!(
            stored,
            item([
                ("user", s("bob")),
                ("sk", s("D#tablet")),
                ("device", s("tablet")),
                ("platform", s("apns_sandbox")),
                ("token", s("tok-1")),
                (
                    "endpoint",
                    s("arn:aws:sns:eu-west-1:000000000000:endpoint/GCM/app/1")
                ),
                ("preview", AttributeValue::Bool(true)),
                ("registered_at", s("2026-11-29T05:45:39.120000000Z")),
            ])
        );
        assert!(stored.contains_key(USER) && stored.contains_key(SK));
        assert_eq!(
            PushDevice::from(from_item::<DeviceItem>(stored).unwrap()),
            d
        );
        for (platform, name) in [
            (Platform::Apns, "apns"),
            (Platform::ApnsSandbox, "apns_sandbox"),
            (Platform::Fcm, "fcm"),
        ] {
            let d = device(platform, false);
            let stored = to_item(&DeviceItem::from(&d)).unwrap();
            assert_eq!(stored["platform"], s(name));
            assert_eq!(stored["preview"], AttributeValue::Bool(false));
            assert_eq!(
                PushDevice::from(from_item::<DeviceItem>(stored).unwrap()),
                d
            );
        }
    }

    #[test]
    fn an_unknown_platform_is_a_corrupt_item_and_a_missing_preview_is_false() {
        let mut stored = to_item(&DeviceItem::from(&device(Platform::Fcm, true))).unwrap();
        stored.remove("preview");
        assert!(!from_item::<DeviceItem>(stored.clone()).unwrap().preview);
        stored.insert("platform".into(), s("wns"));
        assert!(matches!(
            from_item::<DeviceItem>(stored),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_claim_is_pinned_with_a_one_day_ttl() {
        let c = PushClaim {
            user: UserId::new("bob").unwrap(),
            device: DeviceId::new("tablet").unwrap(),
            conversation: ConversationId::new("dm:alice:bob").unwrap(),
            seq: 9,
            at: t0(),
            not_before: t0() - chrono::Duration::seconds(30),
            acked: 8,
        };
        let claim = ClaimItem::from(&c);
        let stored = to_item(&claim).unwrap();
        let day_later = (t0() + chrono::Duration::days(1)).timestamp() + 1;
        assert_eq!(
            stored,
            item([
                ("user", s("bob")),
                ("sk", s("C#tablet#dm:alice:bob")),
                ("claimed_at", s("2026-11-29T05:45:39.120000000Z")),
                ("claimed_seq", n(9)),
                ("ttl", AttributeValue::N(day_later.to_string())),
            ])
        );
        for name in [USER, SK, CLAIMED_AT, CLAIMED_SEQ, codec::TTL_ATTR] {
            assert!(stored.contains_key(name), "{name} is an attribute");
        }
        // The claim is never read back; its codec still round-trips (TTL to the second).
        let back: ClaimItem = from_item(stored).unwrap();
        assert_eq!(back.ttl.timestamp(), day_later);
        assert_eq!(
            ClaimItem {
                ttl: claim.ttl,
                ..back
            },
            claim
        );
        assert_eq!(
            to_item(&DeviceKey::claim(&c.user, &c.device, &c.conversation)).unwrap(),
            item([("user", s("bob")), ("sk", s("C#tablet#dm:alice:bob"))])
        );
    }
}
