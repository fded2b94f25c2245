//! The one error type of the use cases, and the one place it becomes a client `error` frame.

use crate::domain::InvalidId;
use crate::ports::StoreError;
use crate::protocol::ErrorCode;

/// Why a request failed. Client mistakes carry a message meant for the client; infrastructure
/// failures keep their source for the logs and show the client only a generic text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Over a per-user rate limit: nothing was done; retry after this long.
    #[error("too many requests: retry in {} ms", retry_after_ms(.0))]
    RateLimited(chrono::Duration),
    /// An idempotency key (`client_msg_id`) reused for another request: nothing was done.
    #[error("{0}")]
    Conflict(String),
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("push platform failed")]
    Notify(#[from] crate::ports::NotifyError),
    #[error("object store failed")]
    Objects(#[from] crate::ports::ObjectError),
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
}

impl From<InvalidId> for Error {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl Error {
    /// The code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::UnknownAction(_) => ErrorCode::UnknownAction,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Forbidden(_) | Self::Unauthenticated(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Objects(crate::ports::ObjectError::NotConfigured) => ErrorCode::BadRequest,
            Self::Store(_) | Self::Notify(_) | Self::Objects(_) => ErrorCode::Internal,
        }
    }

    /// The message the client sees: never an infrastructure detail.
    pub fn client_message(&self, request_id: &str) -> String {
        match self {
            Self::Objects(e @ crate::ports::ObjectError::NotConfigured) => e.to_string(),
            Self::Store(_) | Self::Notify(_) | Self::Objects(_) => {
                format!("internal error (request {request_id}); please retry")
            }
            other => other.to_string(),
        }
    }

    /// How long the client should wait before retrying (`rate_limited` only).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::RateLimited(d) => Some(retry_after_ms(d)),
            _ => None,
        }
    }

    /// Whether this is the server's fault (logged at error level) rather than the client's.
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Internal
    }
}

/// A wait in whole milliseconds, rounded up (a client that waits exactly this long is allowed).
fn retry_after_ms(d: &chrono::Duration) -> u64 {
    let micros = d.num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
    micros.div_ceil(1000).max(1)
}
