//! Domain layer for offline push: devices registered for push, what a push says, and the exact
//! platform payloads (APNs, FCM) sent through SNS with `MessageStructure=json`.

use crate::domain::{ConversationId, DeviceId, Seq, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A push platform, as SNS names its platform applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Apns,
    ApnsSandbox,
    Fcm,
}

impl Platform {
    /// The key of this platform's payload in an SNS JSON message.
    pub fn sns_key(self) -> &'static str {
        match self {
            Self::Apns => "APNS",
            Self::ApnsSandbox => "APNS_SANDBOX",
            Self::Fcm => "GCM",
        }
    }
}

/// A device registered for push: one per (user, device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub user: UserId,
    pub device: DeviceId,
    pub platform: Platform,
    /// The platform's device token.
    pub token: String,
    /// Where pushes go: an SNS platform endpoint ARN on AWS, a local id when embedded.
    pub endpoint: String,
    /// Whether pushes may show the sender's text (content-free by default).
    pub preview: bool,
    pub registered_at: DateTime<Utc>,
}

/// A stable, fixed-size name for a device token (the store keys "who holds this token" by it
/// instead of by the token itself): the first 16 bytes of SHA-256 over the platform and the
/// token, as 32 hex digits.
pub fn token_digest(platform: Platform, token: &str) -> String {
    use sha2::{Digest, Sha256};
    let sum = Sha256::digest(format!("{}\0{token}", platform.sns_key()));
    crate::domain::hex(&sum[..16])
}

/// A request to push one device about one message, for [`crate::ports::PushDevices::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushClaim {
    pub user: UserId,
    pub device: DeviceId,
    pub conversation: ConversationId,
    /// The message to push about.
    pub seq: Seq,
    pub at: DateTime<Utc>,
    /// Claims made at or before this instant have lapsed (the coalescing window).
    pub not_before: DateTime<Utc>,
    /// The user's delivered pointer in the conversation: claims for seqs up to it have lapsed.
    pub acked: Seq,
}

/// What one push tells a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub from: UserId,
    /// The start of the message, only for devices that opted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// The recipient's unread count over all conversations: the APNs app-icon badge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<u64>,
}

pub use crate::domain::PREVIEW_CHARS;

impl Notification {
    /// The notification of a message for `device`: a preview only if it opted in.
    pub fn for_device(
        device: &PushDevice,
        conversation: &ConversationId,
        seq: Seq,
        from: &UserId,
        body: &str,
    ) -> Self {
        let preview = device
            .preview
            .then(|| crate::domain::truncate(body, PREVIEW_CHARS));
        Self {
            conversation: conversation.clone(),
            seq,
            from: from.clone(),
            preview,
            badge: None,
        }
    }

    /// The same notification, setting the app badge to `unread`.
    pub fn with_badge(mut self, unread: u64) -> Self {
        self.badge = Some(unread);
        self
    }

    /// The SNS message (`MessageStructure=json`): a `default` text and this platform's payload,
    /// itself a JSON string as SNS requires.
    pub fn sns_message(&self, platform: Platform) -> Value {
        let text = self.preview.clone().unwrap_or_else(|| "New message".into());
        let payload = match platform {
            Platform::Apns | Platform::ApnsSandbox => {
                let mut aps = json!({
                    "alert": { "title": self.from, "body": text },
                    "sound": "default",
                    "thread-id": self.conversation,
                    "mutable-content": 1,
                });
                if let Some(badge) = self.badge {
                    aps["badge"] = json!(badge);
                }
                json!({
                    "aps": aps,
                    "conversation": self.conversation,
                    "seq": self.seq,
                    "from": self.from,
                })
            }
            // FCM HTTP v1 through SNS: the message object goes under `fcmV1Message`.
            Platform::Fcm => json!({
                "fcmV1Message": {
                    "message": {
                        "notification": { "title": self.from, "body": text },
                        "data": {
                            "conversation": self.conversation,
                            "seq": self.seq.to_string(),
                            "from": self.from,
                        },
                        "android": {
                            "priority": "high",
                            "collapse_key": self.conversation,
                        },
                    }
                }
            }),
        };
        json!({ "default": text, platform.sns_key(): payload.to_string() })
    }
}

/// The compact event published to the messages topic for other subscribers (email, SMS,
/// analytics). Subscribers filter on the message attributes `user` (the sender) and
/// `conversation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageEvent {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub from: UserId,
    pub sent_at: String,
    /// Members the message reached on no live connection.
    pub offline: Vec<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(preview: bool) -> PushDevice {
        PushDevice {
            user: UserId::new("bob").unwrap(),
            device: DeviceId::new("phone").unwrap(),
            platform: Platform::Apns,
            token: "t".into(),
            endpoint: "e".into(),
            preview,
            registered_at: Utc::now(),
        }
    }

    fn payload(n: &Notification, p: Platform) -> Value {
        let m = n.sns_message(p);
        serde_json::from_str(m[p.sns_key()].as_str().unwrap()).unwrap()
    }

    #[test]
    fn pushes_are_content_free_unless_the_device_opted_in() {
        let (conv, alice) = (
            ConversationId::new("dm:alice:bob").unwrap(),
            UserId::new("alice").unwrap(),
        );
        let quiet = Notification::for_device(&device(false), &conv, 7, &alice, "secret plans");
        let apns = payload(&quiet, Platform::Apns);
        assert_eq!(apns["aps"]["alert"]["body"], "New message");
        assert_eq!(
            (apns["seq"].as_u64(), apns["from"].as_str()),
            (Some(7), Some("alice"))
        );
        assert!(
            !quiet
                .sns_message(Platform::Apns)
                .to_string()
                .contains("secret")
        );

        assert!(
            apns["aps"].get("badge").is_none(),
            "no badge unless counted"
        );
        let badged = quiet.clone().with_badge(4);
        assert_eq!(payload(&badged, Platform::Apns)["aps"]["badge"], 4);

        let chatty = Notification::for_device(&device(true), &conv, 7, &alice, &"x".repeat(150));
        let fcm = payload(&chatty, Platform::Fcm);
        let body = fcm["fcmV1Message"]["message"]["notification"]["body"]
            .as_str()
            .unwrap();
        assert_eq!(body.chars().count(), PREVIEW_CHARS + 1);
        assert_eq!(fcm["fcmV1Message"]["message"]["data"]["seq"], "7");
    }
}
