//! Test harness: a real embedded gateway on a loopback port and real WebSocket clients.
//!
//! [`TestGateway::start`] serves `messenger-local` on 127.0.0.1:0 in this process; [`Client`]
//! is a tokio-tungstenite client speaking the JSON protocol; every frame it receives is checked
//! against docs/asyncapi.yaml ([`spec`]). Every wait is for an event (a frame, a close); the
//! timeout on each wait only turns a hang into a failure. [`deployed`] does the
//! same against the IaC template deployed on an emulator.

pub mod deployed;
pub mod spec;

use futures_util::{SinkExt, StreamExt};
use messenger::Stores;
use messenger::auth;
use messenger::domain::{DeviceId, UserId};
use messenger::ports::Poster;
use messenger_aws::DynamoStore;
use messenger_aws::faults::{FaultPlan, FaultyStore};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long any single wait may take before the test fails (a hang guard, not a timing check).
pub const WAIT: Duration = Duration::from_secs(20);

/// Fresh, empty stores for one test: in memory, or DynamoDB when `MESSENGER_E2E_STORE=dynamodb`
/// (the test command runs the whole suite both ways).
pub async fn test_stores() -> Stores {
    test_stores_raw().await.0
}

/// [`test_stores`], with the DynamoDB store itself when that is the store (to read the table's
/// items as stored).
pub async fn test_stores_raw() -> (Stores, Option<DynamoStore>) {
    match std::env::var("MESSENGER_E2E_STORE").as_deref() {
        Err(_) | Ok("memory") => (Stores::in_memory(), None),
        // Small log buckets, so the scenarios cross bucket boundaries too.
        Ok("dynamodb") => {
            let store = messenger_aws::testing::fresh_store(10).await;
            // As messenger-local runs it: one process, appends queued per conversation.
            let store = store.with_local_append_lock();
            let stores = Stores::from_one(std::sync::Arc::new(store.clone()));
            (stores, Some(store))
        }
        Ok(other) => panic!("MESSENGER_E2E_STORE={other}: expected memory or dynamodb"),
    }
}

/// Where a test gateway keeps attachments: its own temporary directory over the in-memory
/// store, a fresh bucket on MiniStack's S3 over DynamoDB (`serve --store dynamodb --s3-bucket`).
pub async fn test_files() -> messenger_local::files::Files {
    match std::env::var("MESSENGER_E2E_STORE").as_deref() {
        Ok("dynamodb") => messenger_local::files::Files::Store(std::sync::Arc::new(
            messenger_aws::testing::fresh_bucket().await,
        )),
        _ => messenger_local::files::Files::Temporary,
    }
}

/// Fresh stores for one test with `plan`'s faults on every call, and the same stores without
/// faults (to check what was really stored). In memory the faults are injected at the ports;
/// on DynamoDB under the SDK client (throttling, cancelled transactions, 500s, timeouts, lost
/// responses), so the adapter's own retries run.
pub async fn faulty_test_stores(plan: Arc<FaultPlan>) -> (Stores, Stores) {
    match std::env::var("MESSENGER_E2E_STORE").as_deref() {
        Err(_) | Ok("memory") => {
            let clean = Stores::in_memory();
            (FaultyStore::wrap(clean.clone(), plan), clean)
        }
        Ok("dynamodb") => {
            let (faulty, clean) = messenger_aws::testing::fresh_store_with_faults(10, plan).await;
            (
                Stores::from_one(Arc::new(faulty.with_local_append_lock())),
                Stores::from_one(Arc::new(clean)),
            )
        }
        Ok(other) => panic!("MESSENGER_E2E_STORE={other}: expected memory or dynamodb"),
    }
}

/// An embedded gateway serving on a loopback port until dropped.
pub struct TestGateway {
    pub addr: std::net::SocketAddr,
    pub config: GatewayConfig,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestGateway {
    /// A gateway with default settings over fresh stores (see [`test_stores`]).
    pub async fn start() -> Self {
        Self::start_with(GatewayConfig::default()).await
    }

    /// A gateway with `config` over fresh stores.
    pub async fn start_with(config: GatewayConfig) -> Self {
        Self::start_with_store(config).await.0
    }

    /// A gateway over fresh stores the test can also inspect through the ports.
    pub async fn start_with_store(config: GatewayConfig) -> (Self, Stores) {
        let stores = test_stores().await;
        (Self::start_on(config, stores.clone()).await, stores)
    }

    /// A gateway over fresh stores, also handing out the DynamoDB store when that is the one.
    pub async fn start_with_raw_store(
        config: GatewayConfig,
    ) -> (Self, Stores, Option<DynamoStore>) {
        let (stores, raw) = test_stores_raw().await;
        (Self::start_on(config, stores.clone()).await, stores, raw)
    }

    /// What the embedded notifier recorded: `{"pushes":[…],"events":[…]}`.
    pub async fn recorded_pushes(&self, user: Option<&str>) -> Value {
        let path = match user {
            Some(u) => format!("/_local/pushes?user={u}"),
            None => "/_local/pushes".to_owned(),
        };
        let (status, _, body) = http(self.addr, "GET", &path, b"").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Waits until `n` messages have been published to the topic: each is published after its
    /// pushes were decided, so the recorded pushes are then final.
    pub async fn published(&self, n: usize) -> Value {
        let mut last = Value::Null;
        eventually(&format!("{n} topic events"), async || {
            last = self.recorded_pushes(None).await;
            last["events"].as_array().map_or(0, Vec::len) >= n
        })
        .await;
        last
    }

    /// A gateway with `config` over `stores`.
    pub async fn start_on(config: GatewayConfig, stores: Stores) -> Self {
        Self::start_wrapped(config, stores, |poster| poster).await
    }

    /// A gateway with `config` over `stores`, whose handlers' PostToConnection goes through
    /// `wrap_poster` (faults, crash points).
    pub async fn start_wrapped(
        config: GatewayConfig,
        stores: Stores,
        wrap_poster: impl FnOnce(Arc<dyn Poster>) -> Arc<dyn Poster> + Send + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let served = config.clone();
        tokio::spawn(async move {
            messenger_local::serve_with(listener, served, stores, wrap_poster, async {
                let _ = rx.await;
            })
            .await
            .expect("gateway serves");
        });
        Self {
            addr,
            config,
            shutdown: Some(tx),
        }
    }

    /// The WebSocket URL without a token.
    pub fn url(&self) -> String {
        format!("ws://{}/{}", self.addr, self.config.stage)
    }

    /// The management API URL of a connection.
    pub fn connection_url(&self, connection_id: &str) -> String {
        format!(
            "http://{}/{}/@connections/{connection_id}",
            self.addr, self.config.stage
        )
    }

    /// A valid token for `user` on `device`.
    pub fn token(&self, user: &str, device: &str) -> String {
        let now = chrono::Utc::now();
        auth::mint(
            &self.config.jwt_secret,
            &UserId::new(user).unwrap(),
            Some(&DeviceId::new(device).unwrap()),
            now,
            now + chrono::Duration::hours(1),
        )
    }

    /// Connects `user` on `device` with a valid token.
    pub async fn connect(&self, user: &str, device: &str) -> Client {
        let url = format!("{}?token={}", self.url(), self.token(user, device));
        Client::connect(&url, user)
            .await
            .expect("connect with a valid token")
    }

    /// Makes each pair contacts the way people become them, before the test's own clients
    /// connect: the first writes to the second (a message request), who accepts it. Each 1:1
    /// then holds that one message (seq 1, from the first user). Devices of theirs connected
    /// meanwhile get its frames too: call this first.
    pub async fn contacts(&self, pairs: &[(&str, &str)]) {
        for (a, b) in pairs {
            let mut from = self.connect(a, "introductions").await;
            let mut to = self.connect(b, "introductions").await;
            let sent = from.send_to(b, &format!("hello-{a}-{b}"), "hello").await;
            assert_eq!(sent["type"], "sent", "{sent}");
            to.recv_type("message").await;
            let conv = sent["conversation"].clone();
            let r = to
                .request(json!({"action":"accept","conversation":conv}))
                .await;
            assert_eq!(r["state"], "accepted", "{r}");
            from.close().await;
            to.close().await;
        }
    }

    /// Connects, trying again (up to 20 times) while the handshake is refused: under faults a
    /// `$connect` whose store write failed refuses it, and a client reconnects.
    pub async fn connect_retrying(&self, user: &str, device: &str) -> Client {
        let url = format!("{}?token={}", self.url(), self.token(user, device));
        let mut last = None;
        for _ in 0..20 {
            match Client::connect(&url, user).await {
                Ok(c) => return c,
                Err(e) => last = Some(e),
            }
        }
        panic!("{user}/{device}: every handshake refused; last: {last:?}")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A WebSocket client that keeps frames it was not waiting for, so none is lost.
pub struct Client {
    pub user: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    backlog: VecDeque<Value>,
    next_id: u64,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The TCP connection ended without a close frame.
    Dropped,
}

impl Client {
    pub async fn connect(
        url: &str,
        user: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = connect_async(url).await?;
        Ok(Self {
            user: user.into(),
            ws,
            backlog: VecDeque::new(),
            next_id: 0,
        })
    }

    /// Sends a frame as JSON text.
    pub async fn send(&mut self, frame: Value) {
        self.send_raw(Message::Text(frame.to_string().into())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("socket open");
    }

    /// The next frame from the socket (not the backlog); panics on close.
    async fn read(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no frame within {WAIT:?}; still waiting: {:?}",
                        self.user, self.backlog
                    )
                });
            match next {
                Some(Ok(Message::Text(t))) => {
                    let frame = serde_json::from_str(&t).expect("server frames are JSON");
                    spec::check_server_frame(&frame);
                    return frame;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{}: expected a frame, got {other:?}", self.user),
            }
        }
    }

    /// The first frame (oldest first) matching `pred`; others stay queued for later waits.
    pub async fn recv_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        loop {
            let v = self.read().await;
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
    }

    /// The first frame matching `pred` within `patience`, or `None` (a frame already queued is
    /// taken first).
    pub async fn recv_within(
        &mut self,
        patience: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("server frames are JSON");
                    spec::check_server_frame(&v);
                    if pred(&v) {
                        return Some(v);
                    }
                    self.backlog.push_back(v);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{}: expected a frame, got {other:?}", self.user),
            }
        }
    }

    /// Sends `frame` under request id `id` until it is answered with something other than
    /// `internal` or `rate_limited`, as a client does: the same frame (same `id`, same
    /// `client_msg_id`) again after such an error or after `patience` without an answer. At
    /// most 30 tries. Returns the answer and how many tries were retries.
    pub async fn request_until_answered(
        &mut self,
        id: &str,
        mut frame: Value,
        patience: Duration,
    ) -> (Value, usize) {
        frame["id"] = json!(id);
        for retries in 0..30 {
            self.send(frame.clone()).await;
            let answer = self.recv_within(patience, |v| v["id"] == id).await;
            match answer {
                Some(a)
                    if a["type"] == "error"
                        && (a["code"] == "internal" || a["code"] == "rate_limited") => {}
                Some(a) => return (a, retries),
                None => {}
            }
        }
        panic!("{}: {frame} unanswered after 30 tries", self.user)
    }

    /// Every message of `conv` after `after`, by `sync` pages (each retried until answered;
    /// the cursors of other conversations advance as the pages say).
    pub async fn sync_all(&mut self, conv: &str, after: u64, patience: Duration) -> Vec<Value> {
        let mut since = serde_json::Map::new();
        since.insert(conv.to_owned(), json!(after));
        let mut got = Vec::new();
        loop {
            self.next_id += 1;
            let id = format!("{}-sync-{}", self.user, self.next_id);
            let frame = json!({"action":"sync","since":since});
            let (page, _) = self.request_until_answered(&id, frame, patience).await;
            assert_eq!(page["type"], "sync", "{page}");
            got.extend(
                page["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .filter(|m| m["conversation"] == conv)
                    .cloned(),
            );
            for (c, seq) in page["since"].as_object().expect("cursors") {
                since.insert(c.clone(), seq.clone());
            }
            if page["more"] != true {
                return got;
            }
        }
    }

    /// The next frame of this `type`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        self.recv_where(|v| v["type"] == ty).await
    }

    /// Sends `frame` with a fresh request id and returns the reply echoing it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        let id = format!("{}-{}", self.user, self.next_id);
        frame["id"] = json!(id);
        self.send(frame).await;
        self.recv_where(|v| v["id"] == id.as_str()).await
    }

    /// Sends a 1:1 message and returns the `sent` (or `error`) reply.
    pub async fn send_to(&mut self, to: &str, client_msg_id: &str, body: &str) -> Value {
        self.request(json!({"action":"send","to":to,"client_msg_id":client_msg_id,"body":body}))
            .await
    }

    /// Sends a message to conversation `conv` and returns the `sent` (or `error`) reply.
    pub async fn say(&mut self, conv: &str, client_msg_id: &str, body: &str) -> Value {
        self.request(
            json!({"action":"send","conversation":conv,"client_msg_id":client_msg_id,"body":body}),
        )
        .await
    }

    /// Creates a group with `members` (this user is its admin); its conversation id.
    pub async fn create_group(&mut self, name: &str, members: &[&str]) -> String {
        let g = self
            .request(json!({"action":"create_group","name":name,"members":members}))
            .await;
        assert_eq!(g["type"], "group", "{g}");
        g["conversation"].as_str().unwrap().to_owned()
    }

    /// Registers this connection's device for FCM pushes with `token`; the reply.
    pub async fn register_fcm(&mut self, token: &str, preview: bool) -> Value {
        let r = self
            .request(
                json!({"action":"register_push","platform":"fcm","token":token,"preview":preview}),
            )
            .await;
        assert_eq!(r["type"], "push_registered", "{r}");
        r
    }

    /// Frames received but not yet consumed.
    pub fn backlog(&self) -> &VecDeque<Value> {
        &self.backlog
    }

    /// Waits for the server to close the connection; frames before the close are kept.
    pub async fn closed(&mut self) -> Closed {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: not closed within {WAIT:?}", self.user));
            match next {
                Some(Ok(Message::Text(t))) => {
                    let frame = serde_json::from_str(&t).expect("JSON");
                    spec::check_server_frame(&frame);
                    self.backlog.push_back(frame);
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                    return Closed::Code(code.into());
                }
                Some(Ok(Message::Close(None))) => return Closed::Code(1005),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Closed::Dropped,
            }
        }
    }

    /// Closes the connection and waits for the server's close.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }
}

/// Each client sends `n` messages to its target (`{"to": …}` or `{"conversation": …}`) all at
/// once, concurrently with the other clients, then waits for every reply; returns the seqs of
/// all the `sent` replies, sorted (any other reply fails the test).
pub async fn send_concurrently(senders: Vec<(Client, Value)>, n: usize) -> Vec<u64> {
    let mut tasks = Vec::new();
    for (mut client, target) in senders {
        tasks.push(tokio::spawn(async move {
            // Unique per connection: a user's devices must not share client_msg_ids.
            let tag = messenger::domain::random_hex(4);
            let ids: Vec<String> = (0..n)
                .map(|i| format!("{}-{tag}-{i}", client.user))
                .collect();
            for id in &ids {
                let mut frame = json!({"action":"send","client_msg_id":id,"body":"x","id":id});
                for (k, v) in target.as_object().expect("a target object") {
                    frame[k] = v.clone();
                }
                client.send(frame).await;
            }
            let mut seqs = Vec::with_capacity(n);
            for id in &ids {
                let sent = client.recv_where(|v| v["id"] == id.as_str()).await;
                assert_eq!(sent["type"], "sent", "{sent}");
                seqs.push(sent["seq"].as_u64().expect("a seq"));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a sender task"));
    }
    all.sort_unstable();
    all
}

/// A minimal HTTP/1.1 call on loopback (the management API): (status, `x-amzn-ErrorType`, body).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("HTTP answer")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let error_type = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-amzn-errortype:")
            .map(|_| l[17..].trim().to_owned())
    });
    (status, error_type, body.to_owned())
}

/// Waits until `cond` holds, for state no client can observe as an event (a store record).
pub async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let wait = async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("never happened: {what}"));
}

/// The `code` of an `error` frame (panics on any other frame).
pub fn error_code(v: &Value) -> &str {
    v["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
}

/// The `field` of the FCM data of every push the embedded gateway recorded for `user`
/// ([`TestGateway::recorded_pushes`]), in order.
pub fn pushed_data(recorded: &Value, user: &str, field: &str) -> Vec<String> {
    recorded["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["user"] == user)
        .map(|p| {
            let fcm: Value = serde_json::from_str(p["message"]["GCM"].as_str().unwrap()).unwrap();
            fcm["fcmV1Message"]["message"]["data"][field]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}
