//! Adapter layer: how values become DynamoDB attributes. Every item is a struct that
//! serde_dynamo encodes (strings → S, numbers → N, bools → BOOL); the serde helpers here fix the
//! encodings where serde's defaults would not give the stored format: instants, the TTL
//! attribute, and JSON kept in a string attribute.

use super::{Item, corrupt};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use messenger::ports::StoreError;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The DynamoDB TTL attribute (epoch seconds) on every table that expires items.
pub const TTL_ATTR: &str = "ttl";

/// Encodes an item struct.
pub(super) fn to_item(value: &impl Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| corrupt(format!("cannot encode an item: {e}")))
}

/// Decodes an item into its struct; a missing or mistyped attribute is a corrupt item.
pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| {
        let ty = std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("item");
        corrupt(format!("{ty}: {e}"))
    })
}

/// A value for an expression (`:name`), encoded as the same value is in an item.
pub(super) fn value(v: &impl Serialize) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| corrupt(format!("cannot encode a value: {e}")))
}

/// A string value for an expression or a key.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number value for an expression or a key.
pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An instant as an expression value (compared with stored instants as strings).
pub(super) fn instant_value(t: DateTime<Utc>) -> AttributeValue {
    s(format_instant(t))
}

/// Instants are stored as fixed-width RFC 3339 with nanoseconds and `Z`, so they round-trip
/// exactly and compare correctly as strings inside condition and filter expressions.
fn format_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_instant<'de, D: Deserializer<'de>>(text: &str) -> Result<DateTime<Utc>, D::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| D::Error::custom(format!("not a time: {e}: {text:?}")))
}

/// `#[serde(with = "codec::instant")]`: an instant as fixed-width RFC 3339 (S).
pub(super) mod instant {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&format_instant(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<DateTime<Utc>, D::Error> {
        parse_instant::<D>(&String::deserialize(de)?)
    }
}

/// `#[serde(with = "codec::opt_instant", default, skip_serializing_if = "Option::is_none")]`:
/// an optional instant, absent (not NULL) when `None`.
pub(super) mod opt_instant {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, ser: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => instant::serialize(t, ser),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        instant::deserialize(de).map(Some)
    }
}

/// Epoch seconds, rounded up so DynamoDB never deletes an item before readers consider it
/// expired (they compare the exact `expires_at`).
fn ttl_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn from_secs<'de, D: Deserializer<'de>>(secs: i64) -> Result<DateTime<Utc>, D::Error> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| D::Error::custom("TTL out of range"))
}

/// `#[serde(with = "codec::ttl")]`: the TTL attribute (N, epoch seconds) for an item that
/// expires at the given instant. It reads back as that instant rounded up to the second.
pub(super) mod ttl {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_i64(ttl_secs(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<DateTime<Utc>, D::Error> {
        from_secs::<D>(i64::deserialize(de)?)
    }
}

/// `#[serde(with = "codec::opt_ttl", default, skip_serializing_if = "Option::is_none")]`: the TTL
/// of an item that may never expire.
pub(super) mod opt_ttl {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, ser: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => ttl::serialize(t, ser),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        ttl::deserialize(de).map(Some)
    }
}

/// `#[serde(with = "codec::json")]`: a value stored as its JSON text (S).
pub(super) mod json {
    use super::*;

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, ser: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        ser.serialize_str(&json)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        de: D,
    ) -> Result<T, D::Error> {
        let json = String::deserialize(de)?;
        serde_json::from_str(&json).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "codec::opt_json", default, skip_serializing_if = "Option::is_none")]`: an
/// optional value stored as its JSON text (S), absent when `None`.
pub(super) mod opt_json {
    use super::*;

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<T>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => {
                let json = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
                ser.serialize_str(&json)
            }
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<T>, D::Error> {
        let json = String::deserialize(de)?;
        serde_json::from_str(&json)
            .map(Some)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An item written out literally, to pin the stored format.
    pub fn item<const N: usize>(attrs: [(&str, AttributeValue); N]) -> Item {
        attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// `2026-11-29T05:45:39.120Z`, with a sub-second part (so the TTL rounds up).
    pub fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T05:45:39.12Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "instant")]
        at: DateTime<Utc>,
        #[serde(with = "opt_instant", default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
        #[serde(with = "ttl")]
        ttl: DateTime<Utc>,
        #[serde(with = "opt_json", default, skip_serializing_if = "Option::is_none")]
        json: Option<Vec<u32>>,
    }

    #[test]
    fn instants_are_fixed_width_nanos_with_z_and_ttl_rounds_up() {
        let whole = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let sample = Sample {
            at: t0(),
            until: Some(whole),
            ttl: t0(),
            json: Some(vec![1, 2]),
        };
        let encoded = to_item(&sample).unwrap();
        assert_eq!(
            encoded,
            item([
                ("at", s("2026-11-29T05:45:39.120000000Z")),
                ("until", s("2027-01-15T08:00:00.000000000Z")),
                ("ttl", AttributeValue::N((t0().timestamp() + 1).to_string())),
                ("json", s("[1,2]")),
            ])
        );
        let back: Sample = from_item(encoded).unwrap();
        assert_eq!(back.at, t0(), "an instant round-trips to the nanosecond");
        assert_eq!(back.until, Some(whole));
        assert_eq!(back.ttl.timestamp(), t0().timestamp() + 1);
        assert_eq!(back.json, Some(vec![1, 2]));
        assert_eq!(instant_value(t0()), s("2026-11-29T05:45:39.120000000Z"));
        // A whole second needs no rounding.
        assert_eq!(ttl_secs(whole), 1_800_000_000);
    }

    #[test]
    fn absent_options_are_absent_attributes_not_null() {
        let sample = Sample {
            at: t0(),
            until: None,
            ttl: t0(),
            json: None,
        };
        let encoded = to_item(&sample).unwrap();
        let mut names: Vec<&str> = encoded.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["at", "ttl"]);
        let back: Sample = from_item(encoded).unwrap();
        assert_eq!((back.until, back.json), (None, None));
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_a_corrupt_item() {
        let missing: Result<Sample, _> = from_item(item([("ttl", n(1))]));
        assert!(matches!(missing, Err(StoreError::Corrupt(m)) if m.contains("Sample")));
        let mistyped: Result<Sample, _> = from_item(item([("at", n(1)), ("ttl", n(1))]));
        assert!(matches!(mistyped, Err(StoreError::Corrupt(_))));
        let not_a_time: Result<Sample, _> =
            from_item(item([("at", s("yesterday")), ("ttl", n(1))]));
        assert!(matches!(not_a_time, Err(StoreError::Corrupt(m)) if m.contains("not a time")));
    }
}
