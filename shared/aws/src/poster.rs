//! Adapter layer: the [`Poster`] port on API Gateway's `@connections` management API
//! (PostToConnection: delivery to a connection, not mobile push; DeleteConnection: closing one).

use crate::sdk::CallTimeouts;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use messenger::domain::ConnectionId;
use messenger::ports::{PostError, Poster};

/// Posts frames to WebSocket connections through one API's management endpoint
/// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}` on AWS,
/// `http://127.0.0.1:4566/_aws/execute-api/{api}/{stage}` on MiniStack).
#[derive(Debug, Clone)]
pub struct ApiGwPoster {
    client: Client,
    endpoint: String,
}

impl ApiGwPoster {
    /// A poster for the management endpoint `endpoint`, with explicit timeouts and retries: a
    /// post throttled (429 `LimitExceededException`), failed with a 5xx or timed out is tried
    /// up to 3 times with jittered backoff (50 ms up to 1 s), inside the timeouts' operation
    /// budget. A 410 is not retried: the connection is gone.
    pub fn new(sdk: &SdkConfig, endpoint: &str, timeouts: CallTimeouts) -> Self {
        let retries = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(50))
            .with_max_backoff(std::time::Duration::from_secs(1));
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .timeout_config(timeouts.config())
            .retry_config(retries)
            .build();
        Self {
            client: Client::from_conf(config),
            endpoint: endpoint.to_owned(),
        }
    }

    /// The management endpoint this poster posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[async_trait]
impl Poster for ApiGwPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
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
                    Err(PostError::Gone)
                } else {
                    Err(PostError::Failed(Box::new(e)))
                }
            }
        }
    }

    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        let r = self
            .client
            .delete_connection()
            .connection_id(conn.as_str())
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|e| e.is_gone_exception())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 410);
                if gone {
                    Err(PostError::Gone)
                } else {
                    Err(PostError::Failed(Box::new(e)))
                }
            }
        }
    }
}
