//! The Lambda shape: API Gateway WebSocket proxy events in, proxy responses out.
//!
//! Replies reach the client through PostToConnection ([`App::reply`]), never through the
//! route's returned body: on AWS a returned body reaches the client only on a two-way route
//! (one with a RouteResponse), which MiniStack's CloudFormation cannot create. So every route is
//! one-way, answers by posting, and returns a bare status code.

use crate::domain::{ConnectionId, DeviceId, UserId};
use crate::protocol::ServerFrame;
use crate::{App, Error};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

pub use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy,
    ApiGatewayCustomAuthorizerRequestTypeRequest as AuthorizerEvent,
    ApiGatewayCustomAuthorizerResponse as AuthorizerResponse,
    ApiGatewayProxyResponse as WsResponse, ApiGatewayWebsocketProxyRequest as WsEvent,
};

pub use aws_lambda_events::encodings::Body as ResponseBody;
pub use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};

/// Authorizer context key holding the user id (API Gateway copies the authorizer's context
/// into `requestContext.authorizer` of every route of the connection).
pub const CTX_USER: &str = "userId";
/// Authorizer context key holding the device id.
pub const CTX_DEVICE: &str = "device";
/// Longest request `id` we echo.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The authenticated connection a request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub device: DeviceId,
    pub connection: ConnectionId,
    pub connected_at: Option<DateTime<Utc>>,
}

impl Caller {
    /// Reads the caller from the event: the user only ever comes from the authorizer context.
    pub fn from_event(event: &WsEvent) -> Result<Self, Error> {
        let ctx = &event.request_context;
        let field = |k: &str| ctx.authorizer.fields.get(k).and_then(Value::as_str);
        let user = field(CTX_USER)
            .ok_or_else(|| Error::Unauthenticated("no user in the authorizer context".into()))?;
        let connection = ctx
            .connection_id
            .as_deref()
            .ok_or_else(|| Error::Unauthenticated("event has no connection id".into()))?;
        Ok(Self {
            user: UserId::new(user).map_err(|e| Error::Unauthenticated(e.to_string()))?,
            device: match field(CTX_DEVICE) {
                Some(d) => DeviceId::new(d).map_err(|e| Error::Unauthenticated(e.to_string()))?,
                None => DeviceId::unnamed(),
            },
            connection: ConnectionId::new(connection)
                .map_err(|e| Error::Unauthenticated(e.to_string()))?,
            connected_at: DateTime::from_timestamp_millis(ctx.connected_at)
                .filter(|_| ctx.connected_at > 0),
        })
    }
}

/// A client frame on a route, with the caller and what we echo back.
#[derive(Debug)]
pub struct Request {
    pub caller: Caller,
    /// The client's request id, echoed in every reply.
    pub id: Option<Value>,
    /// API Gateway's request id, for logs and internal-error messages.
    pub request_id: String,
    body: Value,
}

impl Request {
    /// A request as a route builds it, for tests and tools.
    pub fn new(caller: Caller, id: Option<Value>, request_id: &str, body: Value) -> Self {
        Self {
            caller,
            id,
            request_id: request_id.into(),
            body,
        }
    }

    /// The frame as the route's type; a wrong type or missing field is a `bad_request`.
    pub fn frame<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.body).map_err(|e| Error::BadRequest(e.to_string()))
    }

    /// The frame's `action`, when it has a string one.
    pub fn action(&self) -> Option<&str> {
        self.body.get("action").and_then(Value::as_str)
    }

    /// Answers this request.
    pub async fn reply(&self, app: &App, frame: &ServerFrame) {
        app.reply(&self.caller.connection, self.id.as_ref(), frame)
            .await;
    }
}

/// A response with only a status code.
pub fn status(code: i64) -> WsResponse {
    let mut r = WsResponse::default();
    r.status_code = code;
    r
}

/// Runs a frame route: reads the caller, parses the frame, runs the use case, and turns any
/// error into an `error` frame echoing the request's `id` (and `client_msg_id`).
pub async fn serve(
    app: &App,
    event: WsEvent,
    run: impl AsyncFnOnce(&App, &Request) -> Result<(), Error>,
) -> WsResponse {
    let caller = match Caller::from_event(&event) {
        Ok(c) => c,
        Err(e) => {
            // Only a misconfigured API (a route without the authorizer's context) gets here.
            tracing::error!(error = %e, "event without caller");
            return status(403);
        }
    };
    let ctx = &event.request_context;
    let request_id = ctx.request_id.clone().unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        route = ctx.route_key.as_deref().unwrap_or(""),
        connection = %caller.connection,
        user = %caller.user,
        request_id = %request_id,
    );
    async move {
        let (id, client_msg_id, parsed) = parse_body(&event);
        let (body, unparsable) = match parsed {
            Ok(body) => (body, None),
            Err(e) => (Value::Null, Some(e)),
        };
        let req = Request {
            caller,
            id,
            request_id,
            body,
        };
        let result = match unparsable {
            Some(e) => Err(e),
            None => run(app, &req).await,
        };
        if let Err(e) = result {
            if e.is_internal() {
                tracing::error!(error = ?e, "request failed");
            } else {
                tracing::info!(error = %e, "request refused");
            }
            let frame = ServerFrame::Error {
                code: e.code(),
                message: e.client_message(&req.request_id),
                client_msg_id,
            };
            req.reply(app, &frame).await;
        }
        status(200)
    }
    .instrument(span)
    .await
}

/// Runs a lifecycle route (`$connect`, `$disconnect`): no frame, no reply; 200 or an error code.
pub async fn serve_lifecycle(
    app: &App,
    event: WsEvent,
    run: impl AsyncFnOnce(&App, &Caller) -> Result<(), Error>,
) -> WsResponse {
    let caller = match Caller::from_event(&event) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "lifecycle event without caller");
            return status(403);
        }
    };
    let span = tracing::info_span!(
        "lifecycle",
        route = event.request_context.route_key.as_deref().unwrap_or(""),
        connection = %caller.connection,
        user = %caller.user,
    );
    match run(app, &caller).instrument(span).await {
        Ok(()) => status(200),
        Err(e) => {
            tracing::error!(error = ?e, connection = %caller.connection, "lifecycle route failed");
            status(500)
        }
    }
}

/// Splits a frame into (request id, client_msg_id, body). The ids are recovered even when the
/// rest of the frame is invalid, so the error can echo them.
fn parse_body(event: &WsEvent) -> (Option<Value>, Option<String>, Result<Value, Error>) {
    if event.is_base64_encoded {
        let e = Error::BadRequest("binary frames are not supported; send JSON text".into());
        return (None, None, Err(e));
    }
    let text = event.body.as_deref().unwrap_or("");
    let body: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                None,
                Err(Error::BadRequest(format!("malformed JSON: {e}"))),
            );
        }
    };
    if !body.is_object() {
        let e = Error::BadRequest("a frame must be a JSON object".into());
        return (None, None, Err(e));
    }
    let client_msg_id = body
        .get("client_msg_id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(MAX_REQUEST_ID_LEN).collect());
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(_)) => Some(v.clone()),
        Some(Value::String(s)) if s.len() <= MAX_REQUEST_ID_LEN => Some(Value::String(s.clone())),
        Some(_) => {
            let e = Error::BadRequest(
                "\"id\" must be a string of at most 128 bytes or a number".into(),
            );
            return (None, client_msg_id, Err(e));
        }
    };
    (id, client_msg_id, Ok(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's recorded WebSocket event deserialises into the type our handlers take.
    #[test]
    fn recorded_websocket_event_parses() {
        let raw = include_str!("../tests/fixtures/websocket-send-event.json");
        let event: WsEvent = serde_json::from_str(raw).unwrap();
        let caller = Caller::from_event(&event).unwrap();
        assert_eq!(caller.user.as_str(), "alice");
        assert_eq!(caller.device.as_str(), "phone");
        let (id, cmid, body) = parse_body(&event);
        assert_eq!(id, Some(Value::from("r-1")));
        assert_eq!(cmid.as_deref(), Some("c-1"));
        assert_eq!(body.unwrap()["action"], "send");
    }

    #[test]
    fn event_without_authorizer_user_has_no_caller() {
        let raw = include_str!("../tests/fixtures/websocket-send-event.json");
        let mut event: WsEvent = serde_json::from_str(raw).unwrap();
        event.request_context.authorizer.fields.clear();
        assert!(matches!(
            Caller::from_event(&event),
            Err(Error::Unauthenticated(_))
        ));
    }
}
