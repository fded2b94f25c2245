//! Messenger in the Lambda shape: API Gateway WebSocket events in, proxy responses out.
//!
//! The Lambda binaries (through `messenger-aws`) call [`handle`] with the event the runtime
//! hands them; it decodes it ([`Invocation::of_event`]) and [`serve`]s it. The embedded gateway
//! (`messenger-local`) decodes each connection's caller once, from its `$connect` event, and
//! hands each frame's [`Invocation`] to the same [`serve`] in-process, so the embedded mode runs
//! the code a deployment runs after decoding. The core (`messenger`) knows nothing of these event
//! types: this crate reads the caller from the authorizer's context and the frame from the body,
//! and hands them over.
//! - [`handle`]: one WebSocket route event, served by one [`Function`]; [`serve`]: one decoded
//!   invocation.
//! - [`authorizer`]: the `$connect` REQUEST authorizer's decision.
//! - [`jwks`]: an identity provider's signing keys over HTTPS (the core's JWKS port).
//!
//! Replies reach the client through PostToConnection, never through the route's returned body:
//! on AWS a returned body reaches the client only on a two-way route (one with a RouteResponse),
//! which MiniStack's CloudFormation cannot create. So every route is one-way, answers by
//! posting, and returns a bare status code.

pub mod authorizer;
pub mod jwks;
#[cfg(feature = "test-support")]
pub mod testing;

use chrono::DateTime;
use messenger::domain::{ConnectionId, DeviceId, UserId};
use messenger::request::{Caller, Frame};
use messenger::routes::Function;
use messenger::{App, Error, usecases};
use serde_json::Value;
use tracing::Instrument;

pub use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest as AuthorizerEvent,
    ApiGatewayCustomAuthorizerResponse as AuthorizerResponse,
    ApiGatewayProxyResponse as WsResponse, ApiGatewayWebsocketProxyRequest as WsEvent,
};
pub use aws_lambda_events::encodings::Body as ResponseBody;

/// Authorizer context key holding the user id (API Gateway copies the authorizer's context
/// into `requestContext.authorizer` of every route of the connection).
pub const CTX_USER: &str = "userId";
/// Authorizer context key holding the device id.
pub const CTX_DEVICE: &str = "device";

/// A response with only a status code.
pub fn status(code: i64) -> WsResponse {
    let mut r = WsResponse::default();
    r.status_code = code;
    r
}

/// Reads the caller from the event: the user only ever comes from the authorizer context.
pub fn caller(event: &WsEvent) -> Result<Caller, Error> {
    let ctx = &event.request_context;
    let field = |k: &str| ctx.authorizer.fields.get(k).and_then(Value::as_str);
    let unauthenticated = |e: messenger::domain::InvalidId| Error::Unauthenticated(e.to_string());
    let user = field(CTX_USER)
        .ok_or_else(|| Error::Unauthenticated("no user in the authorizer context".into()))?;
    let connection = ctx
        .connection_id
        .as_deref()
        .ok_or_else(|| Error::Unauthenticated("event has no connection id".into()))?;
    Ok(Caller {
        user: UserId::new(user).map_err(unauthenticated)?,
        device: match field(CTX_DEVICE) {
            Some(d) => DeviceId::new(d).map_err(unauthenticated)?,
            None => DeviceId::unnamed(),
        },
        connection: ConnectionId::new(connection).map_err(unauthenticated)?,
        connected_at: DateTime::from_timestamp_millis(ctx.connected_at)
            .filter(|_| ctx.connected_at > 0),
    })
}

/// Serves one API Gateway WebSocket event on `function`: decodes it ([`Invocation::of_event`])
/// and serves the invocation ([`serve`]). The Lambda binaries call this with the event the
/// runtime handed them.
pub async fn handle(app: &App, function: Function, event: WsEvent) -> WsResponse {
    match Invocation::of_event(&event) {
        Ok(invocation) => serve(app, function, invocation).await,
        Err(e) => {
            // Only a misconfigured API (a route without the authorizer's context) gets here.
            tracing::error!(error = %e, route = ?event.request_context.route_key, "event without caller");
            status(403)
        }
    }
}

/// What a route invocation carries once its event is decoded: the caller (from the
/// authorizer's context, never from the frame), API Gateway's request id and route key, and the
/// frame. [`handle`] decodes it from the JSON event; the embedded gateway builds it in-process
/// from what it already knows about the connection, and both are served by [`serve`].
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub caller: Caller,
    pub request_id: String,
    pub route_key: &'a str,
    /// The frame of a `MESSAGE` event (`$connect` and `$disconnect` have none).
    pub frame: Frame<'a>,
}

impl<'a> Invocation<'a> {
    /// Decodes an API Gateway WebSocket event.
    pub fn of_event(event: &'a WsEvent) -> Result<Self, Error> {
        let ctx = &event.request_context;
        Ok(Self {
            caller: caller(event)?,
            request_id: ctx.request_id.clone().unwrap_or_default(),
            route_key: ctx.route_key.as_deref().unwrap_or(""),
            frame: if event.is_base64_encoded {
                Frame::Binary
            } else {
                Frame::Text(event.body.as_deref().unwrap_or(""))
            },
        })
    }
}

/// Serves one decoded invocation on `function`: `$connect` and `$disconnect` run their use case
/// (a non-2xx status refuses the handshake); every other function runs the frame pipeline
/// ([`usecases::serve_frame`]) and answers by posting.
pub async fn serve(app: &App, function: Function, invocation: Invocation<'_>) -> WsResponse {
    let Invocation {
        caller,
        request_id,
        route_key,
        frame,
    } = invocation;
    match function {
        Function::Connect => lifecycle(app, route_key, &caller, usecases::connect::connect).await,
        Function::Disconnect => {
            lifecycle(app, route_key, &caller, usecases::disconnect::disconnect).await
        }
        Function::Default
        | Function::Send
        | Function::Ack
        | Function::Sync
        | Function::Presence
        | Function::Groups
        | Function::Devices => {
            usecases::serve_frame(app, function, caller, request_id, frame).await;
            status(200)
        }
    }
}

/// Runs a lifecycle route (`$connect`, `$disconnect`): no frame, no reply; 200 or 500.
async fn lifecycle(
    app: &App,
    route_key: &str,
    caller: &Caller,
    run: impl AsyncFnOnce(&App, &Caller) -> Result<(), Error>,
) -> WsResponse {
    let span = tracing::info_span!(
        "lifecycle",
        route = route_key,
        connection = %caller.connection,
        user = %caller.user,
    );
    match run(app, caller).instrument(span).await {
        Ok(()) => status(200),
        Err(e) => {
            tracing::error!(error = ?e, connection = %caller.connection, "lifecycle route failed");
            status(500)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> WsEvent {
        let raw = include_str!("../../tests/fixtures/websocket-send-event.json");
        serde_json::from_str(raw).unwrap()
    }

    /// The runtime's recorded WebSocket event deserialises into the type the handlers take.
    #[test]
    fn recorded_websocket_event_parses() {
        let caller = caller(&recorded()).unwrap();
        assert_eq!(caller.user.as_str(), "alice");
        assert_eq!(caller.device.as_str(), "phone");
    }

    #[test]
    fn event_without_authorizer_user_has_no_caller() {
        let mut event = recorded();
        event.request_context.authorizer.fields.clear();
        assert!(matches!(caller(&event), Err(Error::Unauthenticated(_))));
    }
}
