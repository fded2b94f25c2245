//! The embedded gateway behaves like API Gateway where clients can tell: authorizer, route
//! selection and typed errors, size limits, timeouts, the `@connections` API, stale connections.

use chrono::Utc;
use messenger::Stores;
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger_e2e::{Client, Closed, TestGateway, eventually, http};
use messenger_local::GatewayConfig;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

fn user(u: &str) -> UserId {
    UserId::new(u).unwrap()
}

async fn gateway_with_store(config: GatewayConfig) -> (TestGateway, Stores) {
    TestGateway::start_with_store(config).await
}

async fn connection_ids(store: &Stores, u: &str) -> Vec<String> {
    let conns = store
        .connections
        .of_users(&[user(u)], Utc::now())
        .await
        .unwrap();
    conns.into_iter().map(|c| c.id.to_string()).collect()
}

fn refused_status(result: Result<Client, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the connection was accepted"),
    }
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_refused() {
    let gw = TestGateway::start().await;
    assert_eq!(
        refused_status(Client::connect(&gw.url(), "anon").await),
        401
    );
    let url = |t: &str| format!("{}?token={t}", gw.url());
    assert_eq!(
        refused_status(Client::connect(&url("not-a-jwt"), "anon").await),
        403
    );

    let now = Utc::now();
    let forged = messenger::auth::mint(
        b"wrong secret",
        &user("alice"),
        None,
        now,
        now + chrono::Duration::hours(1),
    );
    assert_eq!(
        refused_status(Client::connect(&url(&forged), "anon").await),
        403
    );
    let secret = &gw.config.jwt_secret;
    let expired = messenger::auth::mint(
        secret,
        &user("alice"),
        None,
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    );
    assert_eq!(
        refused_status(Client::connect(&url(&expired), "anon").await),
        403
    );

    let wrong_stage = format!("ws://{}/prod?token={}", gw.addr, gw.token("alice", "phone"));
    assert_eq!(
        refused_status(Client::connect(&wrong_stage, "alice").await),
        403
    );
}

#[tokio::test]
async fn every_bad_frame_gets_a_typed_error_and_the_connection_stays_usable() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let cases = [
        (json!({"action":"fly"}), "unknown_action"),
        (json!({"no_action":true}), "bad_request"),
        (
            json!({"action":"send","to":"bob","client_msg_id":"c-1","body":5}),
            "bad_request",
        ),
        (
            json!({"action":"send","to":"bob","body":"no id"}),
            "bad_request",
        ),
        (
            json!({"action":"send","client_msg_id":"c-2","body":"to nobody"}),
            "bad_request",
        ),
        (
            json!({"action":"send","to":"bob","conversation":"dm:alice:bob","client_msg_id":"c-3","body":"both"}),
            "bad_request",
        ),
        (
            json!({"action":"send","to":"bad id!","client_msg_id":"c-4","body":"x"}),
            "bad_request",
        ),
        (
            json!({"action":"send","to":"bob","client_msg_id":"c-5","body":""}),
            "bad_request",
        ),
        (
            json!({"action":"send","to":"bob","client_msg_id":"c-6","body":"x".repeat(16 * 1024 + 1)}),
            "too_large",
        ),
        (
            json!({"action":"ack","conversation":"dm:alice:bob","seq":1,"kind":"seen"}),
            "bad_request",
        ),
        (
            json!({"action":"sync","since":{"dm:alice:bob":"three"}}),
            "bad_request",
        ),
        (json!({"action":"presence","users":"bob"}), "bad_request"),
    ];
    for (frame, code) in cases {
        let e = alice.request(frame.clone()).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame} → {e}"
        );
        assert!(!e["message"].as_str().unwrap().is_empty());
        if let Some(cmid) = frame.get("client_msg_id") {
            assert_eq!(
                &e["client_msg_id"], cmid,
                "the error echoes the client_msg_id"
            );
        }
    }

    // Frames that cannot be parsed: the error cannot echo an id, but it comes.
    // An array is no frame even when it names an action (its route: `routes.rs`' unit test).
    for raw in ["{not json", "[1,2]", "\"send\"", "[\"send\"]"] {
        alice.send_raw(Message::Text(raw.into())).await;
        let e = alice.recv_type("error").await;
        assert_eq!(e["code"], "bad_request", "{raw}");
    }
    alice
        .send_raw(Message::Binary(vec![0xff, 0x00].into()))
        .await;
    assert_eq!(alice.recv_type("error").await["code"], "bad_request");
    alice
        .send(json!({"action":"presence","users":[],"id":{"nested":1}}))
        .await;
    let e = alice.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e.get("id")),
        (Some("bad_request"), None),
        "an object id is refused"
    );

    // Nothing was stored by any of it, and the same connection still works.
    let page = alice.request(json!({"action":"sync"})).await;
    assert_eq!(page["messages"], json!([]));
    let sent = alice.send_to("bob", "c-ok", "finally").await;
    assert_eq!(
        (sent["type"].as_str(), sent["seq"].as_u64()),
        (Some("sent"), Some(1))
    );
    let e = alice
        .request(json!({"action":"ack","conversation":"dm:alice:bob","seq":2,"kind":"read"}))
        .await;
    assert_eq!(
        e["code"], "bad_request",
        "cannot ack past the latest message: {e}"
    );
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let mut config = GatewayConfig::default();
    config.limits.max_body_bytes = 10;
    let (gw, _) = gateway_with_store(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    assert_eq!(
        alice.send_to("bob", "c-1", "0123456789").await["type"],
        "sent"
    );
    assert_eq!(
        alice.send_to("bob", "c-2", "0123456789A").await["code"],
        "too_large"
    );
}

#[tokio::test]
async fn a_frame_over_32_kb_closes_the_socket_with_1009() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let big = json!({"action":"send","to":"bob","client_msg_id":"c","body":"x".repeat(33 * 1024)});
    alice.send(big).await;
    assert_eq!(alice.closed().await, Closed::Code(1009));
}

#[tokio::test]
async fn a_message_over_128_kb_in_small_frames_closes_the_socket_with_1009() {
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let chunk = vec![b'x'; 30 * 1024];
    alice
        .send_raw(Message::Frame(Frame::message(
            chunk.clone(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    for _ in 0..4 {
        alice
            .send_raw(Message::Frame(Frame::message(
                chunk.clone(),
                OpCode::Data(Data::Continue),
                false,
            )))
            .await;
    }
    alice
        .send_raw(Message::Frame(Frame::message(
            chunk,
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    assert_eq!(alice.closed().await, Closed::Code(1009));
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_forgotten() {
    let config = GatewayConfig {
        idle_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    let (gw, store) = gateway_with_store(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    assert_eq!(connection_ids(&store, "alice").await.len(), 1);
    assert_eq!(alice.closed().await, Closed::Code(1001));
    assert!(
        connection_ids(&store, "alice").await.is_empty(),
        "$disconnect ran before the close"
    );
}

#[tokio::test]
async fn heartbeats_keep_an_idle_connection_open_and_reach_no_function() {
    let idle = Duration::from_millis(600);
    let config = GatewayConfig {
        idle_timeout: idle,
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    // Heartbeats only, well inside the idle timeout, for three timeouts.
    let until = tokio::time::Instant::now() + idle * 3;
    while tokio::time::Instant::now() < until {
        alice.send(json!({"action":"heartbeat","id":"hb"})).await;
        tokio::select! {
            c = alice.closed() => panic!("closed while heartbeating: {c:?}"),
            _ = tokio::time::sleep(idle / 6) => {}
        }
    }
    // Still open and usable. And no function ran for any heartbeat: every function route
    // answers every frame (a result or an error), and nothing came back before this reply.
    let reply = alice
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(reply["users"][0]["online"], true, "{reply}");
    assert!(alice.backlog().is_empty(), "{:?}", alice.backlog());
}

#[tokio::test]
async fn a_connection_is_closed_at_its_maximum_duration_even_when_busy() {
    let config = GatewayConfig {
        max_connection_duration: Duration::from_millis(500),
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    // Keep it busy: heartbeats until the gateway closes it.
    let closed = loop {
        alice.send(json!({"action":"heartbeat"})).await;
        tokio::select! {
            c = alice.closed() => break c,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    };
    assert_eq!(closed, Closed::Code(1001));
}

#[tokio::test]
async fn the_connections_api_posts_describes_and_deletes_and_410s_unknown_ids() {
    let (gw, store) = gateway_with_store(GatewayConfig::default()).await;
    let mut alice = gw.connect("alice", "phone").await;
    let id = connection_ids(&store, "alice").await.pop().unwrap();
    let path = |id: &str| format!("/{}/@connections/{id}", gw.config.stage);

    // Any payload goes through; this one is a frame docs/asyncapi.yaml knows, as clients check.
    let frame = br#"{"type":"presence","users":[]}"#;
    let (status, _, _) = http(gw.addr, "POST", &path(&id), frame).await;
    assert_eq!(status, 200);
    assert_eq!(
        alice.recv_type("presence").await,
        json!({"type":"presence","users":[]})
    );

    let (status, _, body) = http(gw.addr, "GET", &path(&id), b"").await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        info["connectedAt"].is_string() && info["lastActiveAt"].is_string(),
        "{info}"
    );
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");

    let (status, _, _) = http(gw.addr, "POST", &path(&id), &vec![b'x'; 129 * 1024]).await;
    assert_eq!(status, 413);

    let (status, _, _) = http(gw.addr, "DELETE", &path(&id), b"").await;
    assert_eq!(status, 204);
    assert_eq!(alice.closed().await, Closed::Code(1000));
    assert!(
        connection_ids(&store, "alice").await.is_empty(),
        "$disconnect ran"
    );
    for method in ["POST", "GET", "DELETE"] {
        let (status, error_type, _) = http(gw.addr, method, &path(&id), b"{}").await;
        assert_eq!(
            (status, error_type.as_deref()),
            (410, Some("GoneException")),
            "{method}"
        );
    }
    let (status, _, _) = http(gw.addr, "POST", &path("never-existed"), b"{}").await;
    assert_eq!(status, 410);
}

#[tokio::test]
async fn a_stale_connection_is_deleted_on_410_and_the_live_ones_still_get_the_message() {
    let (gw, store) = gateway_with_store(GatewayConfig::default()).await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    // A connection whose $disconnect never ran: in the store, unknown to the gateway.
    let now = Utc::now();
    let stale = Connection {
        id: ConnectionId::new("stale-conn=").unwrap(),
        user: user("bob"),
        device: DeviceId::new("old-tablet").unwrap(),
        connected_at: now - chrono::Duration::hours(1),
        expires_at: now + chrono::Duration::hours(2),
    };
    store.connections.put(&stale, 0).await.unwrap();
    assert_eq!(connection_ids(&store, "bob").await.len(), 2);

    alice.send_to("bob", "c-1", "hi").await;
    assert_eq!(bob.recv_type("message").await["seq"], 1);
    eventually("the stale connection is deleted", async || {
        connection_ids(&store, "bob").await.len() == 1
    })
    .await;
    assert!(
        !connection_ids(&store, "bob")
            .await
            .contains(&"stale-conn=".to_string())
    );
}

/// A socket whose client reads nothing (a 4 KiB receive buffer), opened as `user`.
async fn silent_client(
    gw: &TestGateway,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let url = format!("{}?token={}", gw.url(), gw.token(user, "phone"));
    tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake")
        .0
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_when_a_write_times_out() {
    // GIVEN a 300 ms write timeout, a queue bound too large to matter, and mallory not reading
    let config = GatewayConfig {
        write_timeout: Duration::from_millis(300),
        max_outbound_bytes: 256 * 1024 * 1024,
        ..GatewayConfig::default()
    };
    let (gw, store) = gateway_with_store(config).await;
    let _mallory = silent_client(&gw, "mallory").await;
    let id = connection_ids(&store, "mallory").await.pop().unwrap();
    let path = format!("/{}/@connections/{id}", gw.config.stage);
    // WHEN 12.5 MiB are posted to her, more than the kernel's socket buffers take
    for _ in 0..200 {
        if http(gw.addr, "POST", &path, &vec![b'x'; 64 * 1024]).await.0 == 410 {
            break;
        }
    }
    // THEN her socket is closed when a write blocks past the timeout (not by the queue
    // bound), and `$disconnect` forgets her
    eventually("mallory's connection is closed", async || {
        http(gw.addr, "GET", &path, b"").await.0 == 410
    })
    .await;
    eventually("$disconnect ran", async || {
        connection_ids(&store, "mallory").await.is_empty()
    })
    .await;
    let (_, _, stats) = http(gw.addr, "GET", "/_local/stats", b"").await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        (&stats["slow_consumers"], &stats["queued_bytes"]),
        (&json!(0), &json!(0)),
        "{stats}"
    );
}

#[tokio::test]
async fn a_handshake_that_never_finishes_its_request_head_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // GIVEN a 300 ms handshake timeout
    let config = GatewayConfig {
        handshake_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(config).await;
    // WHEN a client sends half a request head and then nothing (slowloris)
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /local?token=x HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // THEN the gateway closes the connection without an answer
    let mut buf = Vec::new();
    let read = tokio::time::timeout(messenger_e2e::WAIT, slow.read_to_end(&mut buf))
        .await
        .expect("closed by the gateway");
    assert!(
        read.is_err() || buf.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&buf)
    );
    // … and a real client still connects
    gw.connect("alice", "phone").await;
}

#[tokio::test]
async fn handshakes_past_the_cap_are_refused_with_429_until_one_finishes() {
    use tokio::io::AsyncWriteExt;
    // GIVEN room for two handshakes in progress, both taken by clients that send half a head
    let config = GatewayConfig {
        max_handshakes: 2,
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(config).await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /local HTTP/1.1\r\n").await.unwrap();
        stalled.push(s);
    }
    let url = format!("{}?token={}", gw.url(), gw.token("alice", "phone"));
    // WHEN a third client connects
    // THEN it is refused as API Gateway refuses past its connection rate: 429
    // LimitExceededException (once the gateway has accepted the two stalled ones)
    let mut refusal = None;
    eventually("a handshake past the cap is refused", async || {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tungstenite::Error::Http(r)) => {
                refusal = Some(r);
                true
            }
            Ok((mut ws, _)) => {
                let _ = ws.close(None).await;
                false
            }
            Err(e) => panic!("{e}"),
        }
    })
    .await;
    let refusal = refusal.unwrap();
    assert_eq!(refusal.status().as_u16(), 429);
    assert_eq!(
        refusal.headers()["x-amzn-ErrorType"],
        "LimitExceededException"
    );
    // WHEN the stalled clients go away
    drop(stalled);
    // THEN handshakes are served again
    eventually("a handshake succeeds again", async || {
        Client::connect(&url, "alice").await.is_ok()
    })
    .await;
}
