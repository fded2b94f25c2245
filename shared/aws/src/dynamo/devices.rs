//! Adapter layer: the `devices` table (pk `user`, sk `sk`): push registrations `D#<device>`,
//! push claims `C#<device>#<conv>`, and which device holds a token (pk `T#<token digest>`, sk
//! `H`), and the [`PushDevices`] port on it.

use super::codec::{self, from_item, instant_value, n, s, to_item};
use super::{DynamoStore, USER, applied, backend};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use chrono::{DateTime, Utc};
use messenger::domain::{ConversationId, DeviceId, Seq, UserId};
use messenger::ports::{PushDevices, StoreError};
use messenger::push::{Platform, PushClaim, PushDevice, token_digest};
use serde::{Deserialize, Serialize};

/// The sort key: `D#<device>` or `C#<device>#<conv>`.
pub(super) const SK: &str = "sk";
const CLAIMED_AT: &str = "claimed_at";
const CLAIMED_SEQ: &str = "claimed_seq";
/// Sort-key prefix of a registration.
const DEVICE: &str = "D#";
/// Sort-key prefix of a push claim.
const CLAIM: &str = "C#";
/// Partition-key prefix of a token's holder item (user ids cannot contain `#`).
const TOKEN: &str = "T#";
/// The sort key of a token's holder item.
const HOLDER: &str = "H";

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

/// Which device last registered a token: `T#<token digest>`, sk `H`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HolderItem {
    /// `T#<token digest>` (the table's partition key is named `user`).
    user: String,
    sk: String,
    holder: UserId,
    device: DeviceId,
}

/// The key of a token's holder item.
#[derive(Serialize)]
struct HolderKey {
    user: String,
    sk: &'static str,
}

impl HolderKey {
    fn of(platform: Platform, token: &str) -> Self {
        Self {
            user: format!("{TOKEN}{}", token_digest(platform, token)),
            sk: HOLDER,
        }
    }
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

impl DynamoStore {
    /// Deletes a token's holder item while it still names this device (a later holder keeps it).
    async fn release_token(&self, d: &PushDevice) -> Result<(), StoreError> {
        let key = HolderKey::of(d.platform, &d.token);
        let r = self
            .client
            .delete_item()
            .table_name(&self.tables.devices)
            .set_key(Some(to_item(&key)?))
            .condition_expression("#h = :u AND #d = :d")
            .expression_attribute_names("#h", "holder")
            .expression_attribute_names("#d", "device")
            .expression_attribute_values(":u", s(d.user.as_str()))
            .expression_attribute_values(":d", s(d.device.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        applied(r).map(drop)
    }

    fn removed(attributes: Option<super::Item>) -> Result<Option<PushDevice>, StoreError> {
        attributes
            .filter(|a| !a.is_empty())
            .map(|item| from_item::<DeviceItem>(item).map(PushDevice::from))
            .transpose()
    }
}

#[async_trait]
impl PushDevices for DynamoStore {
    /// The registration (PutItem, returning the one it replaced), the token's holder item
    /// (PutItem), and, when the device had another token, that token's holder item deleted
    /// while it still names this device.
    async fn put(&self, d: &PushDevice) -> Result<(), StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.tables.devices)
            .set_item(Some(to_item(&DeviceItem::from(d))?))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let holder = HolderItem {
            user: HolderKey::of(d.platform, &d.token).user,
            sk: HOLDER.into(),
            holder: d.user.clone(),
            device: d.device.clone(),
        };
        self.client
            .put_item()
            .table_name(&self.tables.devices)
            .set_item(Some(to_item(&holder)?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        if let Some(old) = Self::removed(out.attributes)?
            && (old.platform, &old.token) != (d.platform, &d.token)
        {
            self.release_token(&old).await?;
        }
        Ok(())
    }

    async fn get(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        let key = to_item(&DeviceKey::registration(user, device))?;
        let item: Option<DeviceItem> = self.get_item(&self.tables.devices, key).await?;
        Ok(item.map(PushDevice::from))
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
        let removed = Self::removed(out.attributes)?;
        if let Some(d) = &removed {
            self.release_token(d).await?;
        }
        Ok(removed)
    }

    /// One consistent GetItem of the token's holder item.
    async fn token_holder(
        &self,
        platform: Platform,
        token: &str,
    ) -> Result<Option<(UserId, DeviceId)>, StoreError> {
        let key = to_item(&HolderKey::of(platform, token))?;
        let item: Option<HolderItem> = self.get_item(&self.tables.devices, key).await?;
        Ok(item.map(|h| (h.holder, h.device)))
    }

    /// A DeleteItem under `token = :token` (returning what it removed), then the token's holder
    /// item while it still names this device.
    async fn remove_if_token(
        &self,
        user: &UserId,
        device: &DeviceId,
        token: &str,
    ) -> Result<Option<PushDevice>, StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.tables.devices)
            .set_key(Some(to_item(&DeviceKey::registration(user, device))?))
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":t", s(token))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let out = match r {
            Ok(out) => out,
            Err(e) if super::is_condition_failed(&e) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        let removed = Self::removed(out.attributes)?;
        if let Some(d) = &removed {
            self.release_token(d).await?;
        }
        Ok(removed)
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
    fn a_token_holder_is_keyed_by_the_tokens_digest_not_the_token() {
        let key = HolderKey::of(Platform::Fcm, "tok-1");
        let digest = token_digest(Platform::Fcm, "tok-1");
        assert_eq!(digest.len(), 32);
        assert_ne!(
            digest,
            token_digest(Platform::Apns, "tok-1"),
            "per platform"
        );
        let holder = HolderItem {
            user: key.user.clone(),
            sk: HOLDER.into(),
            holder: UserId::new("bob").unwrap(),
            device: DeviceId::new("tablet").unwrap(),
        };
        let stored = to_item(&holder).unwrap();
        assert_eq!(
            stored,
            item([
                ("user", s(format!("T#{digest}"))),
                ("sk", s("H")),
                ("holder", s("bob")),
                ("device", s("tablet")),
            ])
        );
        assert_eq!(from_item::<HolderItem>(stored).unwrap(), holder);
        assert_eq!(
            to_item(&key).unwrap(),
            item([("user", s(format!("T#{digest}"))), ("sk", s("H"))])
        );
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
