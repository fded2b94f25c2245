//! Reference layer: the least a server can do for the same traffic, to measure the product
//! against. Raw tokio-tungstenite, one task per socket plus a writer task, no storage, no
//! events, no Lambda shape: it verifies the token at the handshake, answers `send` with `sent`
//! (a per-conversation seq from a counter) and forwards `message` to every other connection of
//! both members. Anything else gets an `error` frame. It is not a product: it forgets
//! everything, has no idempotency and knows no groups.

use chrono::{SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use messenger::auth;
use messenger::domain::{ConversationId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How the reference server behaves.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    /// The HS256 secret tokens are verified with.
    pub jwt_secret: Vec<u8>,
    /// Disable Nagle's algorithm on accepted sockets (true: what a latency-minded server does;
    /// false reproduces a server that leaves the OS default, as axum does unless told).
    pub nodelay: bool,
    /// tungstenite's read buffer per socket. tungstenite zero-fills it up to this size on every
    /// read attempt, so its 128 KiB default costs CPU per frame and RSS per socket; 8 KiB
    /// (the default here) holds several chat frames.
    pub read_buffer_bytes: usize,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            jwt_secret: auth::DEV_SECRET.as_bytes().to_vec(),
            nodelay: true,
            read_buffer_bytes: 8 * 1024,
        }
    }
}

type Outbox = mpsc::UnboundedSender<Message>;

#[derive(Default)]
struct Hub {
    /// user → (connection number, outbox) of each live connection.
    users: Mutex<HashMap<String, Vec<(u64, Outbox)>>>,
    /// conversation → last seq.
    seqs: Mutex<HashMap<String, u64>>,
    next_conn: AtomicU64,
}

/// Serves the reference protocol on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ReferenceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = Arc::new(Hub::default());
    let config = Arc::new(config);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    // Out of descriptors or a reset during accept: keep serving the others.
                    Err(_) => continue,
                };
                tokio::spawn(connection(stream, hub.clone(), config.clone()));
            }
        }
    }
}

async fn connection(stream: TcpStream, hub: Arc<Hub>, config: Arc<ReferenceConfig>) {
    if config.nodelay {
        let _ = stream.set_nodelay(true);
    }
    let mut user = None;
    // The callback's signature is tungstenite's: its error type is an HTTP response.
    #[allow(clippy::result_large_err)]
    let authorize = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let token = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_owned)
        });
        let refuse = |code: StatusCode| {
            let mut r = ErrorResponse::new(None);
            *r.status_mut() = code;
            r
        };
        let Some(token) = token else {
            return Err(refuse(StatusCode::UNAUTHORIZED));
        };
        match auth::verify(&config.jwt_secret, &token, Utc::now()) {
            Ok(identity) => {
                user = Some(identity.user.to_string());
                Ok(resp)
            }
            Err(_) => Err(refuse(StatusCode::FORBIDDEN)),
        }
    };
    let accepting = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        authorize,
        Some(crate::client::ws_config().read_buffer_size(config.read_buffer_bytes)),
    );
    let Ok(ws) = accepting.await else {
        return;
    };
    let Some(user) = user else { return };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let id = hub.next_conn.fetch_add(1, Ordering::Relaxed);
    hub.users
        .lock()
        .unwrap()
        .entry(user.clone())
        .or_default()
        .push((id, tx.clone()));
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        match msg {
            Message::Text(t) => hub.on_frame(&user, id, &tx, t.as_str()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    let mut users = hub.users.lock().unwrap();
    if let Some(conns) = users.get_mut(&user) {
        conns.retain(|(c, _)| *c != id);
        if conns.is_empty() {
            users.remove(&user);
        }
    }
    drop(users);
    drop(tx);
    writer.abort();
}

#[derive(Deserialize)]
struct SendIn {
    action: Option<String>,
    id: Option<Value>,
    to: Option<String>,
    conversation: Option<String>,
    client_msg_id: Option<String>,
    body: Option<String>,
}

fn text(v: Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

fn error(id: Option<&Value>, code: &str, message: &str) -> Message {
    text(json!({"id": id, "type": "error", "code": code, "message": message}))
}

impl Hub {
    fn on_frame(&self, me: &str, conn: u64, reply: &Outbox, frame: &str) {
        let Ok(f) = serde_json::from_str::<SendIn>(frame) else {
            let _ = reply.send(error(None, "bad_request", "malformed frame"));
            return;
        };
        if f.action.as_deref() != Some("send") {
            let _ = reply.send(error(f.id.as_ref(), "unknown_action", "only send"));
            return;
        }
        // The same 1:1 id rule as the product (sorted user ids).
        let members = match (&f.to, &f.conversation) {
            (Some(to), None) => UserId::new(me)
                .ok()
                .zip(UserId::new(to.as_str()).ok())
                .map(|(a, b)| ConversationId::direct(&a, &b)),
            (None, Some(c)) => ConversationId::new(c.as_str()).ok(),
            _ => None,
        }
        .and_then(|c| c.direct_members().map(|m| (c, m)))
        .filter(|(_, (a, b))| a.as_str() == me || b.as_str() == me);
        let (Some((conv, (a, b))), Some(cmid), Some(body)) = (members, f.client_msg_id, f.body)
        else {
            let _ = reply.send(error(f.id.as_ref(), "bad_request", "not a 1:1 send"));
            return;
        };
        let conv = conv.to_string();
        let seq = {
            let mut seqs = self.seqs.lock().unwrap();
            let s = seqs.entry(conv.clone()).or_insert(0);
            *s += 1;
            *s
        };
        let sent_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let _ = reply.send(text(json!({
            "id": f.id, "type": "sent", "client_msg_id": cmid, "conversation": conv,
            "seq": seq, "sent_at": sent_at,
        })));
        let message = Utf8Bytes::from(
            json!({
                "type": "message", "conversation": conv, "seq": seq, "from": me,
                "body": body, "sent_at": sent_at, "client_msg_id": cmid,
            })
            .to_string(),
        );
        let users = self.users.lock().unwrap();
        let members = if a == b { vec![a] } else { vec![a, b] };
        for m in &members {
            for (c, outbox) in users.get(m.as_str()).into_iter().flatten() {
                if *c != conn {
                    let _ = outbox.send(Message::Text(message.clone()));
                }
            }
        }
    }
}
