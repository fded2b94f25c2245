//! The embedded notifier: records what SNS would push and publish, instead of sending it, so
//! client developers can see it (`GET /_local/pushes` on the gateway, and the log).
//!
//! It behaves like SNS where the product can tell: `register` is idempotent per endpoint and
//! re-enables it with a fresh token; a token has one endpoint (registering a token another
//! endpoint has returns that endpoint, as SNS's CreatePlatformEndpoint does); a push to an
//! unknown endpoint is `NotFound`. A token that starts with `invalid` stands for one the
//! platform rejects: its endpoint turns disabled on the first push, as SNS marks endpoints when
//! APNs/FCM report a dead token.

use async_trait::async_trait;
use chrono::Utc;
use messenger::domain::UserId;
use messenger::ports::{Notifier, NotifyError};
use messenger::push::{MessageEvent, Notification, Platform, PushDevice};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many of each kind (pushes, topic events, reports) are kept: the most recent. A gateway
/// left running for days must not grow with every message it ever carried.
pub const KEPT: usize = 1_000;

/// The last [`KEPT`] of something, oldest first.
#[derive(Debug)]
struct Recent<T>(VecDeque<T>);

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self(VecDeque::new())
    }
}

impl<T> Recent<T> {
    fn push(&mut self, item: T) {
        if self.0.len() == KEPT {
            self.0.pop_front();
        }
        self.0.push_back(item);
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

/// One push that would have gone to a device.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedPush {
    pub at: String,
    pub user: String,
    pub device: String,
    pub platform: Platform,
    pub endpoint: String,
    /// The SNS message (`MessageStructure=json`) exactly as it would be published.
    pub message: Value,
}

#[derive(Debug)]
struct Endpoint {
    platform: Platform,
    token: String,
    enabled: bool,
}

/// Records pushes and topic events in memory: the last [`KEPT`] of each.
#[derive(Debug, Default)]
pub struct LocalNotifier {
    endpoints: Mutex<HashMap<String, Endpoint>>,
    pushes: Mutex<Recent<RecordedPush>>,
    /// Kept typed: turned into the topic's JSON only when someone looks (`snapshot`).
    events: Mutex<Recent<MessageEvent>>,
    reports: Mutex<Recent<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalNotifier {
    /// What was recorded (the last [`KEPT`] of each kind, oldest first), optionally only the
    /// pushes to one user's devices.
    pub fn snapshot(&self, user: Option<&str>) -> Value {
        let pushes: Vec<RecordedPush> = lock(&self.pushes)
            .iter()
            .filter(|p| user.is_none_or(|u| p.user == u))
            .cloned()
            .collect();
        let events: Vec<Value> = lock(&self.events)
            .iter()
            .map(|event| {
                let attributes = json!({ "user": event.from, "conversation": event.conversation });
                json!({ "message": event, "attributes": attributes })
            })
            .collect();
        json!({ "pushes": pushes, "events": events, "reports": lock(&self.reports).0 })
    }
}

#[async_trait]
impl Notifier for LocalNotifier {
    async fn register(
        &self,
        platform: Platform,
        token: &str,
        user: &UserId,
        existing: Option<&str>,
    ) -> Result<String, NotifyError> {
        let mut endpoints = lock(&self.endpoints);
        let same_token = endpoints
            .iter()
            .find(|(_, e)| e.platform == platform && e.token == token)
            .map(|(id, _)| id.clone());
        let id = match existing.filter(|e| endpoints.contains_key(*e)) {
            Some(e) => e.to_owned(),
            // SNS: the token's endpoint, whoever created it.
            None => same_token.unwrap_or_else(|| {
                format!(
                    "local:endpoint/{}/{}/{}",
                    platform.sns_key(),
                    user,
                    messenger::domain::random_hex(8)
                )
            }),
        };
        endpoints.insert(
            id.clone(),
            Endpoint {
                platform,
                token: token.to_owned(),
                enabled: true,
            },
        );
        Ok(id)
    }

    async fn unregister(&self, endpoint: &str) -> Result<(), NotifyError> {
        lock(&self.endpoints).remove(endpoint);
        Ok(())
    }

    async fn push(&self, device: &PushDevice, n: &Notification) -> Result<(), NotifyError> {
        {
            let mut endpoints = lock(&self.endpoints);
            let endpoint = endpoints
                .get_mut(&device.endpoint)
                .ok_or(NotifyError::NotFound)?;
            if endpoint.token.starts_with("invalid") {
                endpoint.enabled = false;
            }
            if !endpoint.enabled {
                return Err(NotifyError::Disabled);
            }
        }
        let message = n.sns_message(device.platform);
        tracing::info!(
            user = %device.user, device = %device.device, conversation = %n.conversation, seq = n.seq,
            "push recorded (embedded mode: nothing is sent)"
        );
        lock(&self.pushes).push(RecordedPush {
            at: messenger::protocol::format_time(&Utc::now()),
            user: device.user.to_string(),
            device: device.device.to_string(),
            platform: device.platform,
            endpoint: device.endpoint.clone(),
            message,
        });
        Ok(())
    }

    /// Recorded as the moderation topic would receive it (`reports` of `GET /_local/pushes`).
    async fn report(&self, report: &messenger::moderation::Report) -> Result<(), NotifyError> {
        let attributes = json!({ "reason": report.reason, "conversation": report.conversation });
        lock(&self.reports).push(json!({ "message": report, "attributes": attributes }));
        Ok(())
    }

    async fn publish(&self, event: &MessageEvent) -> Result<(), NotifyError> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger::domain::ConversationId;

    #[tokio::test]
    async fn only_the_most_recent_events_are_kept() {
        // GIVEN a notifier that published more topic events than it keeps
        let notifier = LocalNotifier::default();
        let conversation = ConversationId::new("g-recent").unwrap();
        for seq in 1..=(KEPT as u64 + 5) {
            let event = MessageEvent {
                conversation: conversation.clone(),
                seq,
                from: UserId::new("amy").unwrap(),
                sent_at: "2026-12-01T00:00:00.000Z".into(),
                offline: Vec::new(),
            };
            notifier.publish(&event).await.unwrap();
        }
        // THEN the snapshot holds the last KEPT of them, oldest first
        let snapshot = notifier.snapshot(None);
        let seqs: Vec<u64> = snapshot["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.len(), KEPT);
        assert_eq!((seqs[0], seqs[KEPT - 1]), (6, KEPT as u64 + 5));
    }
}
