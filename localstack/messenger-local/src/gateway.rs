//! The emulated API Gateway: WebSocket endpoint, route invocation, `@connections` API.
//!
//! Faithful where clients can tell: the REQUEST authorizer runs before the handshake (401
//! without a token, 403 when it denies, 500 when it fails); `$connect` runs before the handshake too and a non-2xx
//! refuses it; PostToConnection during `$connect` finds no connection (410); frames are routed
//! on `$request.body.action` with `$default` as fallback and invoked concurrently, as Lambda
//! does; a route's returned body reaches the client only on a two-way route; frames over
//! 32 KB or messages over 128 KB close the socket with 1009; idle and maximum-duration
//! timeouts close it with 1001; `$disconnect` runs after every close, whatever the cause.
//!
//! Bounded against slow and hostile clients (docs/reliability.md): each socket's outbound
//! queue holds at most `max_outbound_bytes` (past it the socket is closed with 1013, a slow
//! consumer), each write has a timeout, and handshakes are capped in number and time
//! (`server.rs`). The socket task itself is in `socket.rs`.

use crate::events::{self, Body, ConnectionContext};
use crate::notifier::LocalNotifier;
use crate::registry::{Entry, LocalPoster, Outbound, PostError, Registry};
use crate::routes;
use crate::server::{self, HandshakeLimits};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use messenger::auth::{Authenticator, IssuerVerifier};
use messenger::ports::Poster;
use messenger::request::{Caller, Frame};
use messenger::routes::Route;
use messenger::{App, Limits, Stores};
use messenger_lambda::authorizer;
use messenger_lambda::{Invocation, WsEvent, WsResponse, status};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// How the emulated API behaves. Defaults are API Gateway's quotas.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The stage: the WebSocket URL is `ws://host:port/{stage}`.
    pub stage: String,
    /// The HS256 secret the authorizer verifies development tokens with.
    pub jwt_secret: Vec<u8>,
    /// An identity provider whose tokens are accepted instead (`serve --issuer`); `None` keeps
    /// the development tokens.
    pub issuer: Option<Arc<IssuerVerifier>>,
    /// Limits handed to the route handlers (body size, page sizes, …).
    pub limits: Limits,
    /// Close a socket after this long without a frame in either direction (API Gateway: 10 min).
    pub idle_timeout: Duration,
    /// Close every socket after this long (API Gateway: 2 h).
    pub max_connection_duration: Duration,
    /// Largest WebSocket frame a client may send (API Gateway: 32 KB).
    pub max_frame_bytes: usize,
    /// Largest message, reassembled from frames, and largest PostToConnection (128 KB).
    pub max_message_bytes: usize,
    /// A route invocation that takes longer is abandoned (API Gateway: 29 s).
    pub integration_timeout: Duration,
    /// Routes with a route response: only their returned body is sent back to the client.
    pub two_way_routes: BTreeSet<String>,
    /// Where attachments are kept (`files.rs`).
    pub files: crate::files::Files,
    /// Most bytes waiting to be written to one socket; a post past it closes the socket with
    /// 1013 (a slow consumer) and is answered 410.
    pub max_outbound_bytes: usize,
    /// A write to a socket that takes longer closes it (the client stopped reading).
    pub write_timeout: Duration,
    /// Longest wait for a client's request head (and between keep-alive requests).
    pub handshake_timeout: Duration,
    /// Most connections waiting for their first response at once; more get 429.
    pub max_handshakes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            stage: "local".into(),
            jwt_secret: messenger::auth::DEV_SECRET.as_bytes().to_vec(),
            issuer: None,
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(10 * 60),
            max_connection_duration: Duration::from_secs(2 * 60 * 60),
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            integration_timeout: Duration::from_secs(29),
            two_way_routes: BTreeSet::new(),
            files: crate::files::Files::default(),
            max_outbound_bytes: 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 512,
        }
    }
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("GatewayConfig")
            .field("stage", &self.stage)
            .field("auth", &self.authenticator())
            .field("limits", &self.limits)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connection_duration", &self.max_connection_duration)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("integration_timeout", &self.integration_timeout)
            .field("two_way_routes", &self.two_way_routes)
            .field("files", &self.files)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("write_timeout", &self.write_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshakes", &self.max_handshakes)
            .finish()
    }
}

impl GatewayConfig {
    /// How the authorizer verifies tokens: the issuer's, if one is set, else the secret's.
    pub fn authenticator(&self) -> Authenticator {
        match &self.issuer {
            Some(verifier) => Authenticator::Issuer(verifier.clone()),
            None => Authenticator::Hs256(self.jwt_secret.clone()),
        }
    }
}

pub(crate) struct Gateway {
    auth: Authenticator,
    notifier: Arc<LocalNotifier>,
    pub(crate) config: GatewayConfig,
    app: App,
    pub(crate) registry: Arc<Registry>,
    api_id: String,
    domain_name: String,
}

/// Serves the gateway on `listener` until `shutdown` completes, then closes every socket.
/// Tests bind port 0 and pass their own shutdown signal.
pub async fn serve(
    listener: TcpListener,
    config: GatewayConfig,
    stores: Stores,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, config, stores, |poster| poster, shutdown).await
}

/// [`serve`], with the handlers' PostToConnection wrapped by `wrap_poster` (tests inject
/// faults and crashes there).
pub async fn serve_with(
    listener: TcpListener,
    config: GatewayConfig,
    stores: Stores,
    wrap_poster: impl FnOnce(Arc<dyn Poster>) -> Arc<dyn Poster>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new(
        config.max_message_bytes,
        config.max_outbound_bytes,
    ));
    let notifier = Arc::new(LocalNotifier::default());
    let files = crate::files::mount(
        &config.files,
        &config.jwt_secret,
        listener.local_addr()?,
        config.limits.attachments.max_bytes,
    )
    .await?;
    let app = App::new(
        stores,
        wrap_poster(Arc::new(LocalPoster(registry.clone()))),
        config.limits.clone(),
    )
    .with_notifier(notifier.clone())
    .with_objects(files.objects.clone());
    let limits = HandshakeLimits {
        max_handshakes: config.max_handshakes,
        handshake_timeout: config.handshake_timeout,
        request_timeout: config.handshake_timeout + config.integration_timeout,
    };
    let gateway = Arc::new(Gateway {
        auth: config.authenticator(),
        notifier,
        api_id: "messenger".into(),
        domain_name: listener.local_addr()?.to_string(),
        config,
        app,
        registry: registry.clone(),
    });
    let router = Router::new()
        .route("/_local/pushes", get(recorded_pushes))
        .route("/_local/stats", get(stats))
        .route("/_local/reports", get(list_reports))
        .route("/_local/reports/{id}", get(read_report))
        .route("/{stage}", get(connect))
        .route(
            "/{stage}/@connections/{id}",
            get(get_connection)
                .post(post_to_connection)
                .delete(delete_connection),
        )
        .merge(crate::web::router(&gateway.config))
        .merge(files.router())
        .with_state(gateway);
    let served = server::serve(listener, router, limits, async move {
        shutdown.await;
        registry.close_all(1001, "Going away");
    })
    .await;
    files.close().await;
    served
}

fn api_error(code: StatusCode, message: &str, error_type: &'static str) -> Response {
    let mut r = (code, Json(json!({ "message": message }))).into_response();
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    r
}

/// `GET /{stage}` with an upgrade: authorizer, `$connect`, handshake.
async fn connect(
    State(gw): State<Arc<Gateway>>,
    Path(stage): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(r) = wrong_stage(&gw, &stage) {
        return r;
    }
    // API Gateway answers 401 itself when the identity source is missing.
    if query
        .get(authorizer::TOKEN_PARAM)
        .is_none_or(String::is_empty)
    {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "UnauthorizedException",
        );
    }
    let source_ip = peer.ip().to_string();
    let auth_event = events::authorizer(&gw.api_id, &stage, &headers, &query, &source_ip);
    let Ok(decision) = authorizer::handle(&gw.auth, &auth_event, Utc::now()).await else {
        // The authorizer failed (the issuer's keys are unavailable): API Gateway answers 500.
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            "AuthorizerConfigurationException",
        );
    };
    if !authorizer::allows(&decision) {
        return api_error(StatusCode::FORBIDDEN, "Forbidden", "ForbiddenException");
    }
    let mut authorizer = match decision.context {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    authorizer.insert("principalId".into(), json!(decision.principal_id));

    let connected_at = Utc::now();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ctx = ConnectionContext {
        api_id: gw.api_id.clone(),
        stage,
        domain_name: gw.domain_name.clone(),
        connection_id: events::random_id(),
        connected_at,
        source_ip: source_ip.clone(),
        user_agent: user_agent.clone(),
        authorizer,
    };
    let connect_event = ctx.connect(&headers, &query, connected_at);
    // The caller every frame of this connection is invoked as, decoded once from the
    // `$connect` event the way the handler decodes each event (the authorizer's context, the
    // connection id and time never change for a connection).
    let caller = messenger_lambda::caller(&connect_event);
    let response = gw.invoke(Route::Connect, connect_event).await;
    if !(200..300).contains(&response.status_code) {
        let code = u16::try_from(response.status_code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return api_error(code, "Connection refused by $connect", "ForbiddenException");
    }
    // `$connect` refuses an event without a caller (403) before this.
    let Ok(caller) = caller else {
        return api_error(StatusCode::FORBIDDEN, "Forbidden", "ForbiddenException");
    };

    // Registered before the 101 goes out: a client that has seen its handshake complete can be
    // posted to at once (posts queue until the socket task starts).
    let (entry, rx) = Entry::new(connected_at, source_ip, user_agent);
    gw.registry.insert(ctx.connection_id.clone(), entry.clone());
    let (gw_failed, ctx_failed) = (gw.clone(), ctx.clone());
    upgrade
        // tungstenite zero-fills its read buffer before every read: the default 128 KiB made
        // that memset the gateway's hottest spot and cost ~140 KiB per connection (see
        // docs/benchmarks.md). Frames larger than 8 KiB still arrive; the buffer grows.
        .read_buffer_size(8 * 1024)
        // The socket task writes what is queued with one flush (socket.rs): frames collect
        // in the write buffer up to this, then go out in one write.
        .write_buffer_size(16 * 1024)
        .max_frame_size(gw.config.max_frame_bytes)
        .max_message_size(gw.config.max_message_bytes)
        .on_failed_upgrade(move |e| {
            tracing::info!(error = %e, "handshake failed after $connect");
            gw_failed.registry.remove(&ctx_failed.connection_id);
            tokio::spawn(async move {
                gw_failed
                    .disconnect(&ctx_failed, 1006, "handshake failed")
                    .await
            });
        })
        .on_upgrade(
            move |socket| async move { gw.run_socket(ctx, caller, entry, rx, socket).await },
        )
}

/// Whether an integration's returned body goes back to the client: only on a two-way route.
pub fn route_response(
    two_way_routes: &BTreeSet<String>,
    route: &str,
    response: WsResponse,
) -> Option<Outbound> {
    use messenger_lambda::ResponseBody as B;
    if !two_way_routes.contains(route) {
        return None;
    }
    match response.body? {
        B::Text(t) => Some(Outbound::Text(t)),
        B::Binary(b) => Some(Outbound::Binary(b)),
        _ => None,
    }
}

impl Gateway {
    async fn invoke(&self, route: Route, event: WsEvent) -> WsResponse {
        let call = routes::invoke(&self.app, route, event);
        match tokio::time::timeout(self.config.integration_timeout, call).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(route = route.key(), "integration timed out");
                status(504)
            }
        }
    }

    pub(crate) async fn disconnect(&self, ctx: &ConnectionContext, code: u16, reason: &str) {
        let event = ctx.disconnect(code, reason, Utc::now());
        self.invoke(Route::Disconnect, event).await;
    }

    /// Invokes the selected route for one client frame, concurrently with the socket's other
    /// frames (API Gateway does not serialise a connection's invocations). The invocation is
    /// handed over in-process, as the handler would decode it from the `MESSAGE` event
    /// (`events.rs` builds that event; `$connect` and `$disconnect` still go through theirs).
    ///
    /// The socket task polls the invocation once itself: one that completes at once (on the
    /// in-memory store, most do) costs no task; one that waits (a store or a post over the
    /// network, a fault) goes on in a task of its own, so the socket reads on meanwhile. A
    /// panic in that first poll is caught, as the task would have caught it.
    pub(crate) async fn dispatch(self: &Arc<Self>, caller: &Caller, entry: &Entry, body: Body) {
        // Parsed once: for the route selection here, and for the handler (a frame that is not
        // JSON goes to `$default`, whose handler parses it again to say why).
        let json = match &body {
            Body::Text(t) => serde_json::from_str::<serde_json::Value>(t).ok(),
            Body::Binary(_) => None,
        };
        let route = json.as_ref().map_or(Route::Default, Route::of_json);
        let deadline = Instant::now() + self.config.integration_timeout;
        let (gw, caller) = (self.clone(), caller.clone());
        // Boxed: the handler's future is several KiB, and a waiting one moves into a task.
        let mut call = Box::pin(async move {
            let invocation = Invocation {
                caller,
                request_id: events::request_id(),
                route_key: route.key(),
                frame: match (json, &body) {
                    (Some(json), _) => Frame::Json(json),
                    (None, Body::Text(t)) => Frame::Text(t),
                    (None, Body::Binary(_)) => Frame::Binary,
                },
            };
            routes::serve(&gw.app, route, invocation).await
        });
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                call.as_mut().poll(cx)
            })))
        })
        .await;
        match first {
            Ok(Poll::Ready(response)) => self.respond(route, entry, response),
            Ok(Poll::Pending) => {
                let (gw, entry) = (self.clone(), entry.clone());
                tokio::spawn(async move {
                    let response = match tokio::time::timeout_at(deadline, call).await {
                        Ok(response) => response,
                        Err(_) => {
                            tracing::warn!(route = route.key(), "integration timed out");
                            status(504)
                        }
                    };
                    gw.respond(route, &entry, response);
                });
            }
            Err(_) => tracing::error!(route = route.key(), "integration panicked"),
        }
    }

    /// What an invocation returned reaches the client only on a two-way route.
    fn respond(&self, route: Route, entry: &Entry, response: WsResponse) {
        if let Some(out) = route_response(&self.config.two_way_routes, route.key(), response) {
            entry.queue(out);
        }
    }
}

/// API Gateway's answer to a path outside the deployed stage.
fn wrong_stage(gw: &Gateway, stage: &str) -> Option<Response> {
    (stage != gw.config.stage)
        .then(|| api_error(StatusCode::FORBIDDEN, "Forbidden", "ForbiddenException"))
}

fn gone() -> Response {
    api_error(StatusCode::GONE, "Gone", "GoneException")
}

/// `GET /_local/pushes[?user=U]`: what SNS would have pushed and published (embedded only).
async fn recorded_pushes(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    Json(gw.notifier.snapshot(query.get("user").map(String::as_str))).into_response()
}

/// `GET /_local/stats`: open sockets, bytes queued for them, slow consumers closed so far
/// (embedded only).
async fn stats(State(gw): State<Arc<Gateway>>) -> Response {
    Json(json!({
        "connections": gw.registry.len(),
        "queued_bytes": gw.registry.queued_bytes(),
        "slow_consumers": gw.registry.slow_consumers(),
    }))
    .into_response()
}

/// `GET /_local/reports[?days=N]`: the reports of the last N days (default 7, today included),
/// oldest first, from the gateway's store: the operators' view (`messenger-local reports`).
/// Like `/_local/pushes`, served by the embedded gateway on its loopback address only.
async fn list_reports(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let days = match query.get("days").map(|d| d.parse::<u32>()) {
        None => 7,
        Some(Ok(d)) if (1..=366).contains(&d) => d,
        _ => return (StatusCode::BAD_REQUEST, "days: 1 to 366").into_response(),
    };
    match crate::reports::recent(gw.app.stores.reports.as_ref(), days, Utc::now()).await {
        Ok(reports) => Json(reports).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /_local/reports/{id}`: one report.
async fn read_report(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<messenger::moderation::ReportId>() else {
        return (StatusCode::BAD_REQUEST, "not a report id").into_response();
    };
    match gw.app.stores.reports.report(&id).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such report").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `POST /{stage}/@connections/{id}`: PostToConnection.
async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(r) = wrong_stage(&gw, &stage) {
        return r;
    }
    match gw.registry.post(&id, body.to_vec()) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(PostError::Gone) => gone(),
        Err(PostError::TooLarge) => api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Message too long",
            "PayloadTooLargeException",
        ),
    }
}

/// `GET /{stage}/@connections/{id}`: GetConnection.
async fn get_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = wrong_stage(&gw, &stage) {
        return r;
    }
    let Some(entry) = gw.registry.get(&id) else {
        return gone();
    };
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Json(json!({
        "connectedAt": fmt(entry.connected_at),
        "identity": { "sourceIp": &*entry.source_ip, "userAgent": entry.user_agent.as_deref() },
        "lastActiveAt": fmt(entry.last_active()),
    }))
    .into_response()
}

/// `DELETE /{stage}/@connections/{id}`: DeleteConnection (the socket closes, `$disconnect` runs).
async fn delete_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = wrong_stage(&gw, &stage) {
        return r;
    }
    let (code, reason) = crate::registry::CLOSED_BY_SERVICE;
    match gw.registry.close(&id, code, reason) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => gone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger_lambda::ResponseBody;

    fn response(body: &str) -> WsResponse {
        let mut r = status(200);
        r.body = Some(ResponseBody::Text(body.into()));
        r
    }

    #[test]
    fn a_returned_body_reaches_the_client_only_on_a_two_way_route() {
        let two_way: BTreeSet<String> = ["echo".to_string()].into();
        assert!(route_response(&two_way, "send", response("x")).is_none());
        assert!(matches!(
            route_response(&two_way, "echo", response("x")),
            Some(Outbound::Text(t)) if t == "x"
        ));
        assert!(route_response(&two_way, "echo", status(200)).is_none());
    }
}
