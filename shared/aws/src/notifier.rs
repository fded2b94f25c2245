//! Adapter layer: the [`Notifier`] port on SNS — mobile push through platform endpoints
//! (APNs, FCM) and the messages topic for other subscribers.

use crate::sdk::CallTimeouts;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use messenger::domain::UserId;
use messenger::ports::{Notifier, NotifyError};
use messenger::push::{MessageEvent, Notification, Platform, PushDevice};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The SNS platform applications of a deployment (template parameters); a platform without one
/// refuses registrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformApps {
    pub apns: Option<String>,
    pub apns_sandbox: Option<String>,
    pub fcm: Option<String>,
}

impl PlatformApps {
    fn arn(&self, platform: Platform) -> Option<&str> {
        match platform {
            Platform::Apns => self.apns.as_deref(),
            Platform::ApnsSandbox => self.apns_sandbox.as_deref(),
            Platform::Fcm => self.fcm.as_deref(),
        }
    }
}

/// What the notifier did: pushes accepted by SNS, topic events published, calls that failed.
#[derive(Debug, Default)]
pub struct NotifyCounters {
    pub pushes: AtomicU64,
    pub topic_events: AtomicU64,
    pub failures: AtomicU64,
}

impl NotifyCounters {
    /// (pushes, topic events, failures) so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (
            get(&self.pushes),
            get(&self.topic_events),
            get(&self.failures),
        )
    }
}

/// Mobile push and topic events on SNS. Build once per process.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    apps: PlatformApps,
    topic_arn: Option<String>,
    moderation_topic_arn: Option<String>,
    counters: Arc<NotifyCounters>,
}

/// An SNS call failed. The SDK error's own `Display` says only "service error", so the whole
/// chain (code and message) goes into the text the logs show.
fn failed<E: std::error::Error + Send + Sync + 'static>(e: E) -> NotifyError {
    let text = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
    NotifyError::Failed(text.into())
}

impl SnsNotifier {
    /// A notifier for these platform applications and topic (either may be absent), with the
    /// same explicit timeouts and retries as PostToConnection (throttling, 5xx and timeouts
    /// tried 3 times, 50 ms up to 1 s apart): a push must not hold up a send's invocation.
    pub fn new(sdk: &SdkConfig, apps: PlatformApps, topic_arn: Option<String>) -> Self {
        let retries = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(50))
            .with_max_backoff(std::time::Duration::from_secs(1));
        let config = aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(CallTimeouts::default().config())
            .retry_config(retries)
            .build();
        Self {
            client: Client::from_conf(config),
            apps,
            topic_arn,
            moderation_topic_arn: None,
            counters: Arc::default(),
        }
    }

    /// Publishes reports to this topic (none: reports are stored only).
    pub fn with_moderation_topic(mut self, arn: Option<String>) -> Self {
        self.moderation_topic_arn = arn;
        self
    }

    /// What this notifier has done so far.
    pub fn counters(&self) -> &NotifyCounters {
        &self.counters
    }

    /// Points an existing endpoint at `token`, enabled again. `Ok(false)` when it is gone.
    async fn refresh(
        &self,
        endpoint: &str,
        token: &str,
        user: &UserId,
    ) -> Result<bool, NotifyError> {
        let r = self
            .client
            .set_endpoint_attributes()
            .endpoint_arn(endpoint)
            .attributes("Token", token)
            .attributes("Enabled", "true")
            .attributes("CustomUserData", user.as_str())
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(e)),
        }
    }
}

/// SNS refuses to create a second endpoint for a token with other attributes, naming the
/// existing one: "Invalid parameter: Token Reason: Endpoint <arn> already exists with the same
/// Token, but different attributes."
fn existing_endpoint(message: &str) -> Option<&str> {
    let rest = &message[message.find("Endpoint ")? + "Endpoint ".len()..];
    let arn = rest.split_whitespace().next()?;
    (arn.starts_with("arn:") && rest.contains("already exists")).then_some(arn)
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn register(
        &self,
        platform: Platform,
        token: &str,
        user: &UserId,
        existing: Option<&str>,
    ) -> Result<String, NotifyError> {
        let app = self.apps.arn(platform).ok_or_else(|| {
            NotifyError::Unsupported(format!(
                "push platform {} is not configured",
                platform.sns_key()
            ))
        })?;
        if let Some(endpoint) = existing
            && self.refresh(endpoint, token, user).await?
        {
            return Ok(endpoint.to_owned());
        }
        let r = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(app)
            .token(token)
            .custom_user_data(user.as_str())
            .send()
            .await;
        match r {
            Ok(out) => out.endpoint_arn.ok_or_else(|| {
                NotifyError::Failed("CreatePlatformEndpoint returned no ARN".into())
            }),
            Err(e) => {
                let message = e
                    .as_service_error()
                    .and_then(|e| e.meta().message())
                    .unwrap_or_default();
                match existing_endpoint(message) {
                    // The token has an endpoint already (another user's, or a lost record):
                    // take it over for this user.
                    Some(arn) if self.refresh(arn, token, user).await? => Ok(arn.to_owned()),
                    _ => Err(failed(e)),
                }
            }
        }
    }

    async fn unregister(&self, endpoint: &str) -> Result<(), NotifyError> {
        // DeleteEndpoint is idempotent on SNS.
        self.client
            .delete_endpoint()
            .endpoint_arn(endpoint)
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn push(&self, device: &PushDevice, n: &Notification) -> Result<(), NotifyError> {
        let r = self
            .client
            .publish()
            .target_arn(&device.endpoint)
            .message_structure("json")
            .message(n.sns_message(device.platform).to_string())
            .send()
            .await;
        match r {
            Ok(_) => {
                self.counters.pushes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                let service = e.as_service_error();
                if service.is_some_and(|e| e.is_endpoint_disabled_exception()) {
                    Err(NotifyError::Disabled)
                } else if service.is_some_and(|e| e.is_not_found_exception()) {
                    Err(NotifyError::NotFound)
                } else {
                    Err(failed(e))
                }
            }
        }
    }

    /// The report as JSON, with the attributes `reason` and `conversation` to filter on.
    async fn report(&self, report: &messenger::moderation::Report) -> Result<(), NotifyError> {
        let Some(topic) = &self.moderation_topic_arn else {
            return Ok(());
        };
        let attribute = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(failed)
        };
        let reason = serde_json::to_value(report.reason).map_err(failed)?;
        let body = serde_json::to_string(report).map_err(failed)?;
        let r = self
            .client
            .publish()
            .topic_arn(topic)
            .message(body)
            .message_attributes("reason", attribute(reason.as_str().unwrap_or("other"))?)
            .message_attributes("conversation", attribute(report.conversation.as_str())?)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                Err(failed(e))
            }
        }
    }

    async fn publish(&self, event: &MessageEvent) -> Result<(), NotifyError> {
        let Some(topic) = &self.topic_arn else {
            return Ok(());
        };
        let attribute = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(failed)
        };
        let body = serde_json::to_string(event).map_err(failed)?;
        let r = self
            .client
            .publish()
            .topic_arn(topic)
            .message(body)
            .message_attributes("user", attribute(event.from.as_str())?)
            .message_attributes("conversation", attribute(event.conversation.as_str())?)
            .send()
            .await;
        match r {
            Ok(_) => {
                self.counters.topic_events.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                Err(failed(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::existing_endpoint;

    #[test]
    fn the_existing_endpoint_is_read_from_the_conflict_message() {
        let m = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:us-east-1:123:endpoint/GCM/app/abc already exists with the same Token, but different attributes.";
        assert_eq!(
            existing_endpoint(m),
            Some("arn:aws:sns:us-east-1:123:endpoint/GCM/app/abc")
        );
        assert_eq!(existing_endpoint("Invalid parameter: Token"), None);
    }
}
