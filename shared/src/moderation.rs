//! Reports of messages to the operators: what a `report` stores and publishes to the
//! moderation topic. No client action reads a report back.

use crate::domain::{ConversationId, Seq, UserId};
use crate::protocol::MessageView;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest free-text `details` of a report, in UTF-8 bytes.
pub const MAX_DETAILS_BYTES: usize = 1024;

/// Why a message is reported: the documented short list (docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    Harassment,
    Hate,
    Nudity,
    Violence,
    SelfHarm,
    Other,
}

/// A report id: `<YYYYMMDD>-<16 hex>`, the day it was made and a digest of (reporter,
/// conversation, seq): one report per reporter, message and day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReportId {
    pub day: NaiveDate,
    /// 52 bits of the digest (a DynamoDB number holds it exactly).
    pub key: u64,
}

impl ReportId {
    /// The id of `reporter`'s report of `seq` in `conv` made on the day of `at`.
    pub fn of(reporter: &UserId, conv: &ConversationId, seq: Seq, at: DateTime<Utc>) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{reporter}\n{conv}\n{seq}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self {
            day: at.date_naive(),
            key: u64::from_be_bytes(first) >> 12,
        }
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:013x}", self.day.format("%Y%m%d"), self.key)
    }
}

impl TryFrom<String> for ReportId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for ReportId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a report id: {s:?} (expected YYYYMMDD-<13 hex digits>)");
        let (day, key) = s.split_once('-').ok_or_else(bad)?;
        let day = NaiveDate::parse_from_str(day, "%Y%m%d").map_err(|_| bad())?;
        if key.len() != 13 {
            return Err(bad());
        }
        let key = u64::from_str_radix(key, 16).map_err(|_| bad())?;
        Ok(Self { day, key })
    }
}

impl From<ReportId> for String {
    fn from(id: ReportId) -> String {
        id.to_string()
    }
}

/// A stored report: who reported which message, why, when, and the message as it was then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: ReportId,
    pub reporter: UserId,
    pub conversation: ConversationId,
    pub seq: Seq,
    pub reason: ReportReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    pub reported_at: DateTime<Utc>,
    /// The reported message as it was when reported (body, edits, reactions).
    pub message: MessageView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_and_is_one_per_reporter_message_and_day() {
        let (u, c) = (
            UserId::new("alice").unwrap(),
            ConversationId::new("dm:alice:bob").unwrap(),
        );
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = ReportId::of(&u, &c, 3, at);
        assert!(id.key < 1 << 52);
        let text = id.to_string();
        assert!(text.starts_with("20261201-") && text.len() == 22, "{text}");
        assert_eq!(text.parse::<ReportId>().unwrap(), id);
        assert_eq!(ReportId::of(&u, &c, 3, at + chrono::Duration::hours(1)), id);
        assert_ne!(ReportId::of(&u, &c, 4, at), id);
        assert!("2026-12-01".parse::<ReportId>().is_err());
    }
}
