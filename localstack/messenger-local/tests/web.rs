//! The web app and development sign-in the gateway serves: files at `/` and `/sdk/`, and
//! `POST /_local/token`, which mints only with the development secret and only for same-origin
//! requests (loopback-only is a unit test of `web.rs`: every test peer here is loopback).

use chrono::Utc;
use messenger::Stores;
use messenger::auth::{self, DEV_SECRET};
use messenger_local::GatewayConfig;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);

/// Serves a gateway with `secret` on a loopback port until the sender is dropped.
async fn gateway(secret: &str) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = GatewayConfig {
        jwt_secret: secret.as_bytes().to_vec(),
        ..GatewayConfig::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(messenger_local::serve(
        listener,
        config,
        Stores::in_memory(),
        async {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// One HTTP/1.1 request: (status, headers in lower case, body).
async fn http(addr: SocketAddr, head: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn token_request(origin: Option<&str>) -> String {
    let origin = origin.map_or(String::new(), |o| format!("\r\nOrigin: {o}"));
    format!("POST /_local/token HTTP/1.1\r\nContent-Type: application/json{origin}")
}

#[tokio::test]
async fn the_web_app_and_the_sdk_it_imports_are_served() {
    let (addr, _stop) = gateway(DEV_SECRET).await;
    let (status, head, body) = http(addr, "GET / HTTP/1.1", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        body.contains(r#"<script type="module" src="/app.js">"#),
        "{body}"
    );
    let (status, head, body) = http(addr, "GET /app.js HTTP/1.1", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(body.contains("from '/sdk/index.js'"));
    let (status, _, body) = http(addr, "GET /sdk/index.js HTTP/1.1", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("MessengerClient"));
}

#[tokio::test]
async fn a_development_token_is_minted_for_a_same_origin_loopback_page() {
    let (addr, _stop) = gateway(DEV_SECRET).await;
    let origin = format!("http://{addr}");
    let body = r#"{"user":"alice","device":"web-1"}"#;
    let (status, _, reply) = http(addr, &token_request(Some(&origin)), body).await;
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["url"], format!("ws://{addr}/local"));
    let identity = auth::verify(
        DEV_SECRET.as_bytes(),
        reply["token"].as_str().unwrap(),
        Utc::now(),
    )
    .expect("a token the gateway accepts");
    assert_eq!(
        (identity.user.as_str(), identity.device.as_str()),
        ("alice", "web-1")
    );
}

#[tokio::test]
async fn no_token_is_minted_with_a_real_secret_for_another_origin_or_an_invalid_user() {
    let (addr, _stop) = gateway("a-deployment-secret-0123456789abcdef").await;
    let (status, _, reply) = http(addr, &token_request(None), r#"{"user":"alice"}"#).await;
    assert_eq!(status, 403);
    assert!(reply.contains("MESSENGER_JWT_SECRET"), "{reply}");

    let (addr, _stop) = gateway(DEV_SECRET).await;
    let evil = Some("https://evil.example");
    let (status, _, _) = http(addr, &token_request(evil), r#"{"user":"alice"}"#).await;
    assert_eq!(status, 403);
    let (status, _, reply) = http(addr, &token_request(None), r#"{"user":"al ice"}"#).await;
    assert_eq!(status, 400);
    assert!(reply.contains("invalid user id"), "{reply}");
    let (status, _, _) = http(addr, &token_request(None), "not json").await;
    assert_eq!(status, 400);
}
