//! Development extras of the embedded gateway: the web app and development sign-in.
//!
//! - `GET /` and the files beside it: the web app (`clients/web`) and, under `/sdk/`, the SDK
//!   module it imports (`clients/typescript/src`). They are compiled into the binary, so the run
//!   command serves a working app from a fresh clone with no npm step (editing them needs a
//!   rebuild, which `cargo run` does).
//! - `POST /_local/token` with `{"user":"alice","device":"web-1"}`: a development token, minted
//!   only while the gateway runs with the development secret (not when `MESSENGER_JWT_SECRET`
//!   is set), only for loopback peers, and not for cross-origin pages.

use crate::GatewayConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use messenger::auth::{self, DEV_SECRET};
use messenger::domain::{DeviceId, UserId};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The files served, by URL path. The SDK keeps its own relative imports under `/sdk/`.
macro_rules! files {
    ($($url:literal => $path:literal,)*) => {
        &[$(($url, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path))),)*]
    };
}
const FILES: &[(&str, &str)] = files! {
    "/" => "clients/web/index.html",
    "/app.js" => "clients/web/app.js",
    "/app.css" => "clients/web/app.css",
    "/sdk/index.js" => "clients/typescript/src/index.js",
    "/sdk/client.js" => "clients/typescript/src/client.js",
    "/sdk/cursors.js" => "clients/typescript/src/cursors.js",
    "/sdk/emitter.js" => "clients/typescript/src/emitter.js",
    "/sdk/messages.js" => "clients/typescript/src/messages.js",
    "/sdk/outbox.js" => "clients/typescript/src/outbox.js",
    "/sdk/protocol.js" => "clients/typescript/src/protocol.js",
    "/sdk/storage.js" => "clients/typescript/src/storage.js",
};

/// How long a development token is valid (the web app asks for a new one on every reconnect).
const TOKEN_HOURS: i64 = 12;

/// The web app's routes, for any router state (they carry their own).
pub fn router<S: Clone + Send + Sync + 'static>(config: &GatewayConfig) -> Router<S> {
    let mut router = Router::new();
    for &(path, body) in FILES {
        router = router.route(path, get(move || async move { file(path, body) }));
    }
    let minter = Arc::new(Minter {
        development: config.jwt_secret == DEV_SECRET.as_bytes(),
        stage: config.stage.clone(),
    });
    router.route(
        "/_local/token",
        post(move |peer, headers, body| async move { minter.mint(peer, headers, body) }),
    )
}

fn file(path: &str, body: &'static str) -> Response {
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/html; charset=utf-8",
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Everything is same-origin except the WebSocket, which may be a deployed stack, and that
    // stack's attachments bucket (uploads posted to it, photos shown from it: https only).
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' ws: wss: https:; img-src 'self' data: https:; object-src 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

struct Minter {
    /// Whether the gateway verifies tokens with the development secret.
    development: bool,
    stage: String,
}

#[derive(Deserialize)]
struct TokenRequest {
    user: String,
    device: Option<String>,
}

impl Minter {
    /// `POST /_local/token`.
    fn mint(
        &self,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
        if let Err((code, why)) = may_mint(self.development, peer.ip(), origin, host) {
            return refuse(code, why);
        }
        let request: TokenRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("expected {{\"user\":\"…\",\"device\":\"…\"}}: {e}");
                return refuse(StatusCode::BAD_REQUEST, &why);
            }
        };
        let identity = UserId::new(request.user).and_then(|user| {
            let device = request.device.map(DeviceId::new).transpose()?;
            Ok((user, device.unwrap_or_else(DeviceId::unnamed)))
        });
        let (user, device) = match identity {
            Ok(ids) => ids,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let now = Utc::now();
        let expires = now + chrono::Duration::hours(TOKEN_HOURS);
        let token = auth::mint(DEV_SECRET.as_bytes(), &user, Some(&device), now, expires);
        tracing::info!(%user, %device, "minted a development token");
        let url = host.map(|h| format!("ws://{h}/{}", self.stage));
        let body = json!({
            "token": token,
            "user": user,
            "device": device,
            "expires_at": messenger::protocol::format_time(&expires),
            "url": url,
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// Whether a development token may be minted for this request, or the refusal.
fn may_mint(
    development: bool,
    peer: IpAddr,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<(), (StatusCode, &'static str)> {
    if !development {
        return Err((
            StatusCode::FORBIDDEN,
            "development tokens are minted only while the gateway runs with the development \
             secret; this one has MESSENGER_JWT_SECRET set",
        ));
    }
    if !peer.is_loopback() {
        return Err((
            StatusCode::FORBIDDEN,
            "development tokens are minted only for clients on this machine (loopback)",
        ));
    }
    // A page from another site must not sign in as anyone on this gateway.
    let same_origin = origin.is_none_or(|o| {
        let authority = o.split_once("://").map_or(o, |(_, rest)| rest);
        host == Some(authority)
    });
    if !same_origin {
        return Err((
            StatusCode::FORBIDDEN,
            "development tokens are minted only for pages served by this gateway",
        ));
    }
    Ok(())
}

fn refuse(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({ "message": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const HOST: Option<&str> = Some("127.0.0.1:8080");

    #[test]
    fn tokens_are_minted_for_loopback_peers_with_the_development_secret() {
        assert_eq!(may_mint(true, LOOPBACK, None, HOST), Ok(()));
        assert_eq!(
            may_mint(
                true,
                "::1".parse().unwrap(),
                Some("http://127.0.0.1:8080"),
                HOST
            ),
            Ok(())
        );
    }

    #[test]
    fn tokens_are_refused_with_another_secret_to_remote_peers_and_other_origins() {
        let refused = |r: Result<(), (StatusCode, &str)>| r.unwrap_err().0;
        assert_eq!(
            refused(may_mint(false, LOOPBACK, None, HOST)),
            StatusCode::FORBIDDEN
        );
        let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(
            refused(may_mint(true, remote, None, HOST)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            refused(may_mint(true, LOOPBACK, Some("https://evil.example"), HOST)),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn every_served_file_has_content() {
        for (path, body) in FILES {
            assert!(!body.trim().is_empty(), "{path} is empty");
        }
    }

    #[test]
    fn every_sdk_module_is_served() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/typescript/src");
        for entry in std::fs::read_dir(src).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let url = format!("/sdk/{name}");
            assert!(
                FILES.iter().any(|(path, _)| *path == url),
                "clients/typescript/src/{name} is not in web.rs's FILES: the page cannot import it"
            );
        }
    }
}
