//! Infrastructure layer: the one AWS SDK configuration a process builds at start.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use std::time::Duration;

/// Loads the SDK configuration from the environment (region, credentials, and endpoint
/// overrides: `AWS_ENDPOINT_URL` for every service, `AWS_ENDPOINT_URL_DYNAMODB` etc. for one),
/// with the rustls+ring HTTPS client. The SDK crates are built without a default client (that
/// one pulls the aws-lc C build), so the client must be passed here explicitly.
pub async fn load() -> SdkConfig {
    base().load().await
}

/// A configuration for an emulator at `endpoint`: fixed test credentials, `us-east-1` unless
/// `AWS_REGION` says otherwise. Used by tests and local tools.
pub async fn for_endpoint(endpoint: &str) -> SdkConfig {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    base()
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "emulator",
        ))
        .load()
        .await
}

fn base() -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

/// Explicit timeouts for calls made inside a route invocation (PostToConnection, SNS).
/// PostToConnection can hang on a half-dead connection; a send must not wait for it long,
/// since the whole fan-out shares API Gateway's 29 s integration timeout.
#[derive(Debug, Clone, Copy)]
pub struct CallTimeouts {
    /// Establishing the TCP/TLS connection to the management endpoint.
    pub connect: Duration,
    /// Waiting for response bytes.
    pub read: Duration,
    /// One attempt, end to end.
    pub attempt: Duration,
    /// The whole call, retries included.
    pub operation: Duration,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(2),
            attempt: Duration::from_secs(3),
            operation: Duration::from_secs(5),
        }
    }
}

impl CallTimeouts {
    /// DynamoDB's: a request normally takes milliseconds, so an attempt that hangs for 3 s is
    /// abandoned and retried (the SDK's retries, then the store's own, all inside the send's
    /// 29 s); one request with its retries gives up after 10 s.
    pub fn dynamodb() -> Self {
        Self {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(3),
            attempt: Duration::from_secs(3),
            operation: Duration::from_secs(10),
        }
    }

    /// The SDK's form of these timeouts.
    pub fn config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}
