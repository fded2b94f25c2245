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
use std::collections::HashMap;
use std::sync::Mutex;

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

/// Records pushes and topic events in memory.
#[derive(Debug, Default)]
pub struct LocalNotifier {
    endpoints: Mutex<HashMap<String, Endpoint>>,
    pushes: Mutex<Vec<RecordedPush>>,
    /// Kept typed: turned into the topic's JSON only when someone looks (`snapshot`).
    events: Mutex<Vec<MessageEvent>>,
    reports: Mutex<Vec<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalNotifier {
    /// Everything recorded so far, optionally only for one user's devices.
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
        json!({ "pushes": pushes, "events": events, "reports": *lock(&self.reports) })
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
