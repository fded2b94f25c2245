//! Adapter layer: the [`Pusher`] port on API Gateway's `@connections` management API.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use messenger::domain::ConnectionId;
use messenger::ports::{PushError, Pusher};
use std::time::Duration;

/// PostToConnection can hang on a half-dead connection; a send must not wait for it long,
/// since the whole fan-out shares API Gateway's 29 s integration timeout.
#[derive(Debug, Clone, Copy)]
pub struct PushTimeouts {
    /// Establishing the TCP/TLS connection to the management endpoint.
    pub connect: Duration,
    /// Waiting for response bytes.
    pub read: Duration,
    /// One attempt, end to end.
    pub attempt: Duration,
    /// The whole call, retries included.
    pub operation: Duration,
}

impl Default for PushTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(2),
            attempt: Duration::from_secs(3),
            operation: Duration::from_secs(5),
        }
    }
}

/// Posts frames to WebSocket connections through one API's management endpoint
/// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}` on AWS,
/// `http://127.0.0.1:4566/_aws/execute-api/{api}/{stage}` on MiniStack).
#[derive(Debug, Clone)]
pub struct ApiGwPusher {
    client: Client,
    endpoint: String,
}

impl ApiGwPusher {
    /// A pusher for the management endpoint `endpoint`, with explicit timeouts.
    pub fn new(sdk: &SdkConfig, endpoint: &str, timeouts: PushTimeouts) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .operation_attempt_timeout(timeouts.attempt)
            .operation_timeout(timeouts.operation)
            .build();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .build();
        Self {
            client: Client::from_conf(config),
            endpoint: endpoint.to_owned(),
        }
    }

    /// The management endpoint this pusher posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[async_trait]
impl Pusher for ApiGwPusher {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PushError> {
        let r = self
            .client
            .post_to_connection()
            .connection_id(conn.as_str())
            .data(Blob::new(data.as_bytes()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|e| e.is_gone_exception())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 410);
                if gone {
                    Err(PushError::Gone)
                } else {
                    Err(PushError::Failed(Box::new(e)))
                }
            }
        }
    }
}
