//! Fuzzing layer: frames through the real handler stack, in process, driven by a seeded PRNG
//! (stable Rust; no cargo-fuzz). For every action, valid frames are mutated structurally (on
//! their JSON: fields dropped, retyped, added, actions swapped, ids of every shape), at the byte
//! level, or replaced by random bytes, then handled exactly as the embedded gateway handles a
//! socket's frame: route selection on `action`, the API Gateway event, `messenger_lambda::handle`,
//! the use case, the in-memory store. And the authorizer's token parser ([`tokens`]).
//!
//! Checked for every frame: no panic; exactly one reply to the sending connection; the reply
//! is a result or an `error` with a typed code; it echoes the frame's `id` when that is a valid
//! one. Every 1,000 frames, and at the end, the connection is shown usable: a valid `send` is
//! stored and a heartbeat answered. A failure names the seed and the frame that caused it.

mod mutate;
mod tokens;

use futures_util::FutureExt;
use messenger::domain::ConnectionId;
use messenger::ports::{PostError, Poster};
use messenger::routes::Route;
use messenger::{App, Limits};
use messenger_local::events::{Body, ConnectionContext};
use mutate::{Rng, mutate_bytes, mutate_json, random_bytes};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Error codes a reply may carry (docs/protocol.md).
const CODES: &[&str] = &[
    "bad_request",
    "unknown_action",
    "too_large",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "internal",
];
/// Result types a reply may be.
const RESULTS: &[&str] = &[
    "sent",
    "upload",
    "download",
    "acked",
    "sync",
    "history",
    "presence",
    "group",
    "left",
    "conversations",
    "push_registered",
    "push_unregistered",
    "receipts",
    "edited",
    "deleted",
    "reacted",
    "muted",
    "block_state",
    "blocked",
    "reported",
    "request_state",
];

/// What to fuzz, and how much.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    /// Frames in total (shared by the workers).
    pub frames: u64,
    /// Authorizer tokens in total.
    pub tokens: u64,
    pub seed: u64,
    /// Threads, each with its own world and PRNG (`seed + worker`).
    pub workers: usize,
    /// A worker starts a fresh world (empty store) every this many frames, so a long run does
    /// not grow without bound.
    pub reset_every: u64,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        Self {
            frames: 100_000,
            tokens: 10_000,
            seed: 1,
            workers: 1,
            reset_every: 50_000,
        }
    }
}

/// What a fuzz run did.
#[derive(Debug, Default, Serialize)]
pub struct FuzzReport {
    pub seed: u64,
    pub workers: usize,
    pub frames: u64,
    pub tokens: u64,
    /// Tokens the authorizer allowed (each checked).
    pub tokens_allowed: u64,
    /// Valid `send`s and heartbeats that showed the connection usable.
    pub health_checks: u64,
    pub seconds: f64,
    pub frames_per_second: f64,
    /// Replies by type, and errors by code (`error:<code>`).
    pub replies: BTreeMap<String, u64>,
    /// Frames that were binary (not UTF-8).
    pub binary_frames: u64,
}

/// A frame the stack mishandled.
#[derive(Debug, thiserror::Error)]
#[error("worker {worker} (seed {seed}), frame {index}: {what}\nframe: {frame}")]
pub struct FuzzFailure {
    pub worker: usize,
    pub seed: u64,
    pub index: u64,
    pub what: String,
    /// The frame (text, or `binary:<hex>`).
    pub frame: String,
}

/// Records every post, by connection.
#[derive(Default)]
struct Recorder(Mutex<Vec<(ConnectionId, String)>>);

#[async_trait::async_trait]
impl Poster for Recorder {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        let mut posts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        posts.push((conn.clone(), data.to_owned()));
        Ok(())
    }
    /// A connection closed by the service (a user past the connection cap): the fuzzed world
    /// keeps using its connections, so nothing to record.
    async fn close(&self, _: &ConnectionId) -> Result<(), PostError> {
        Ok(())
    }
}

impl Recorder {
    /// Posts to `conn` since the last call (others are dropped).
    fn take(&self, conn: &ConnectionId) -> Vec<String> {
        let mut posts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        posts
            .drain(..)
            .filter(|(c, _)| c == conn)
            .map(|(_, d)| d)
            .collect()
    }
}

/// The fuzzed connection (alice's phone) and the world it talks to: a 1:1 conversation with
/// bob, a group with bob and carol, everyone connected.
struct World {
    app: App,
    posts: Arc<Recorder>,
    alice: ConnectionContext,
    conn: ConnectionId,
    group: String,
    next: u64,
}

fn context(user: &str, id: &str) -> ConnectionContext {
    let mut authorizer = Map::new();
    authorizer.insert("userId".into(), json!(user));
    authorizer.insert("device".into(), json!("phone"));
    authorizer.insert("principalId".into(), json!(user));
    ConnectionContext {
        api_id: "fuzz".into(),
        stage: "local".into(),
        domain_name: "127.0.0.1".into(),
        connection_id: id.into(),
        connected_at: chrono::Utc::now(),
        source_ip: "127.0.0.1".into(),
        user_agent: None,
        authorizer,
    }
}

impl World {
    async fn new() -> Self {
        let posts = Arc::new(Recorder::default());
        // The default limits, but no rate limits: one client sends thousands of frames a second
        // here, and a rate limit would refuse nearly all of them before their use case (the
        // limits have their own tests). Every other cap stands.
        let limits = Limits {
            rates: messenger::ratelimit::RateLimits::OFF,
            ..Limits::default()
        };
        // Attachments in memory: `upload` signs forms and `send` looks files up, as on S3.
        let objects = Arc::new(messenger::attachments::signed::InMemoryObjects::in_memory());
        let app = App::in_memory(posts.clone(), limits).with_objects(objects);
        let mut w = Self {
            app,
            posts,
            alice: context("alice", "alice-phone"),
            conn: ConnectionId::new("alice-phone").unwrap(),
            group: String::new(),
            next: 0,
        };
        for (user, id) in [
            ("alice", "alice-phone"),
            ("bob", "bob-phone"),
            ("carol", "carol-phone"),
        ] {
            let ctx = context(user, id);
            let event = ctx.connect(&Default::default(), &Default::default(), chrono::Utc::now());
            messenger_local::routes::invoke(&w.app, Route::Connect, event).await;
        }
        w.valid(json!({"action":"send","to":"bob","client_msg_id":"seed-1","body":"hi"}))
            .await;
        let g = w
            .valid(json!({"action":"create_group","name":"Fuzz","members":["bob","carol"],"client_msg_id":"seed-g"}))
            .await;
        w.group = g["conversation"].as_str().expect("a group").to_owned();
        w
    }

    /// Handles one frame from alice; her replies.
    async fn handle(&self, body: Body) -> Result<Vec<String>, String> {
        let route = match &body {
            Body::Text(t) => Route::select(Some(t)),
            Body::Binary(_) => Route::Default,
        };
        let event = self.alice.message(route.key(), body, chrono::Utc::now());
        let invoked = messenger_local::routes::invoke(&self.app, route, event);
        let response = AssertUnwindSafe(invoked)
            .catch_unwind()
            .await
            .map_err(|p| format!("panicked: {}", panic_text(&p)))?;
        if response.status_code != 200 {
            return Err(format!("status {}", response.status_code));
        }
        Ok(self.posts.take(&self.conn))
    }

    /// Handles a valid frame; its one reply, which must not be an error.
    async fn valid(&mut self, frame: Value) -> Value {
        self.next += 1;
        let replies = self
            .handle(Body::Text(frame.to_string()))
            .await
            .expect("a valid frame is handled");
        let reply: Value = serde_json::from_str(&replies[0]).expect("JSON");
        assert_ne!(reply["type"], "error", "{frame} → {reply}");
        reply
    }

    /// One valid frame of each action (and of the variants worth starting from).
    fn seeds(&mut self) -> Vec<Value> {
        self.next += 1;
        let (n, g) = (self.next, self.group.clone());
        let until =
            messenger::protocol::format_time(&(chrono::Utc::now() + chrono::Duration::hours(1)));
        vec![
            json!({"action":"send","id":format!("r{n}"),"to":"bob","client_msg_id":format!("c-{n}"),"body":"hello"}),
            json!({"action":"send","id":n,"conversation":g,"client_msg_id":format!("g-{n}"),"body":"hi all"}),
            json!({"action":"send","conversation":"dm:alice:bob","client_msg_id":format!("d-{n}"),"body":"x"}),
            json!({"action":"send","id":"q","to":"bob","client_msg_id":format!("q-{n}"),"body":"re","reply_to":1}),
            json!({"action":"edit","id":"e","conversation":"dm:alice:bob","seq":1,"body":format!("edited {n}")}),
            json!({"action":"delete","id":"d","conversation":"dm:alice:bob","seq":2 + n % 30}),
            json!({"action":"react","id":"re","conversation":"dm:alice:bob","seq":1,"emoji":"👍"}),
            json!({"action":"react","conversation":g,"seq":2,"emoji":"❤️","remove":true}),
            json!({"action":"typing","conversation":g}),
            json!({"action":"typing","id":"t","conversation":"dm:alice:bob"}),
            json!({"action":"mute","id":"m","conversation":g,"until":null}),
            json!({"action":"mute","id":"mu","conversation":"dm:alice:bob","until":until}),
            json!({"action":"unmute","id":"um","conversation":g}),
            json!({"action":"ack","id":"a","conversation":"dm:alice:bob","seq":1,"kind":"delivered"}),
            json!({"action":"ack","conversation":g,"seq":1,"kind":"read"}),
            json!({"action":"sync","id":"s","since":{"dm:alice:bob":0},"limit":10}),
            json!({"action":"sync"}),
            json!({"action":"history","id":"h","conversation":g,"before":5,"limit":3}),
            json!({"action":"presence","id":"p","users":["bob","carol","dave"]}),
            json!({"action":"receipts","id":"rc","conversation":g}),
            json!({"action":"heartbeat"}),
            json!({"action":"ack","conversation":"dm:alice:bob","seq":1,"kind":"read"}),
            json!({"action":"create_group","id":"cg","name":"G","members":["bob"],"client_msg_id":format!("cg-{}", n % 50)}),
            json!({"action":"add_members","id":"am","conversation":g,"users":["dave"]}),
            json!({"action":"remove_members","id":"rm","conversation":g,"users":["dave"]}),
            json!({"action":"rename_group","id":"rn","conversation":g,"name":"Renamed"}),
            json!({"action":"leave_group","id":"lg","conversation":format!("g:{:020x}", n)}),
            json!({"action":"conversations","id":"cv","after":"dm:a:b","limit":5}),
            json!({"action":"conversations","id":"cv2","limit":2}),
            json!({"action":"register_push","id":"rp","platform":"fcm","token":"t-1","preview":true}),
            json!({"action":"unregister_push","id":"up"}),
            // Someone outside every seeded conversation, so blocking does not refuse the sends.
            json!({"action":"block","id":"b","user":"mallory"}),
            json!({"action":"unblock","id":"ub","user":"mallory"}),
            json!({"action":"blocked","id":"bl"}),
            json!({"action":"blocked","id":"bl2","cursor":"mallory"}),
            json!({"action":"report","id":"rp","conversation":g,"seq":1,"reason":"spam","details":"x"}),
            json!({"action":"accept","id":"ac","conversation":"dm:alice:bob"}),
            json!({"action":"decline","id":"dc","conversation":"dm:alice:bob"}),
            json!({"action":"conversations","id":"cv3","folder":"requests"}),
            json!({"action":"upload","id":"ul","to":"bob","client_msg_id":format!("f-{n}"),"content_type":"image/jpeg","size":1000,"name":"a.jpg","width":10,"height":10}),
            json!({"action":"upload","conversation":g,"client_msg_id":"f-g","content_type":"audio/ogg","size":5,"name":"v.ogg","duration_ms":1500}),
            json!({"action":"send","id":"sf","to":"bob","client_msg_id":format!("f-{n}"),"attachments":["0123456789abcdef0123456789abcdef"]}),
            json!({"action":"download","id":"dl","conversation":"dm:alice:bob","seq":1}),
            json!({"action":"fly","id":"u"}),
        ]
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".into())
}

/// The `id` a reply to `text` must echo: a string of at most 128 bytes or a number; `None`
/// when the frame is not a JSON object or its id is absent, null or invalid.
fn expected_id(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v.get("id")? {
        n @ Value::Number(_) => Some(n.clone()),
        Value::String(s) if s.len() <= 128 => Some(Value::String(s.clone())),
        _ => None,
    }
}

/// Checks the replies to one frame; the reply's kind for the report. Three frames may go
/// unanswered (protocol.md): a `heartbeat` never is (a MOCK route), an `ack` without a valid
/// `id` is answered only when it fails, and so is a `typing`.
fn check(text: Option<&str>, replies: &[String]) -> Result<String, String> {
    let route = match text {
        Some(t) => Route::select(Some(t)),
        None => Route::Default,
    };
    let want_id = text.and_then(expected_id);
    if route.integration() == messenger::routes::Integration::Mock {
        return match replies {
            [] => Ok("unanswered:heartbeat".into()),
            _ => Err(format!("a heartbeat was answered: {replies:?}")),
        };
    }
    let ack_without_id =
        route == Route::Action(messenger::routes::Action::Ack) && want_id.is_none();
    if ack_without_id && replies.is_empty() {
        return Ok("unanswered:ack".into());
    }
    // A `typing` that succeeds (or is throttled) is never answered.
    if route == Route::Action(messenger::routes::Action::Typing) && replies.is_empty() {
        return Ok("unanswered:typing".into());
    }
    let [reply] = replies else {
        return Err(format!("{} replies: {replies:?}", replies.len()));
    };
    let reply: Value = serde_json::from_str(reply).map_err(|e| format!("reply not JSON: {e}"))?;
    let ty = reply["type"]
        .as_str()
        .ok_or_else(|| format!("reply without type: {reply}"))?;
    let want_id = text.and_then(expected_id);
    if reply.get("id") != want_id.as_ref() {
        return Err(format!(
            "reply id {:?}, expected {want_id:?}: {reply}",
            reply.get("id")
        ));
    }
    if ty == "error" {
        let code = reply["code"].as_str().unwrap_or("");
        if !CODES.contains(&code) || !reply["message"].is_string() {
            return Err(format!("untyped error: {reply}"));
        }
        return Ok(format!("error:{code}"));
    }
    if !RESULTS.contains(&ty) {
        return Err(format!("unknown reply type: {reply}"));
    }
    Ok(ty.to_owned())
}

/// One worker: `frames` frames and `tokens` tokens from `seed`.
async fn worker(
    index: usize,
    seed: u64,
    frames: u64,
    tokens: u64,
    reset_every: u64,
) -> Result<FuzzReport, FuzzFailure> {
    let mut rng = Rng::new(seed);
    let mut report = FuzzReport::default();
    let mut world = World::new().await;
    let mut seeds = world.seeds();
    // Every action of the route table has a valid frame to start from.
    for action in messenger::routes::Action::ALL {
        if !seeds.iter().any(|f| f["action"] == action.name()) {
            return Err(FuzzFailure {
                worker: index,
                seed,
                index: 0,
                what: format!("no valid frame of `{}` among the seeds", action.name()),
                frame: String::new(),
            });
        }
    }
    let fail = |i: u64, what: String, frame: String| FuzzFailure {
        worker: index,
        seed,
        index: i,
        what,
        frame,
    };
    for i in 0..frames {
        if i > 0 && i % reset_every == 0 {
            world = World::new().await;
            seeds = world.seeds();
        }
        if i % 64 == 0 {
            seeds = world.seeds();
        }
        let base = rng.pick(&seeds).clone();
        let bytes = match rng.below(100) {
            0..60 => mutate_json(&mut rng, base).to_string().into_bytes(),
            60..85 => mutate_bytes(&mut rng, &base.to_string()),
            85..95 => random_bytes(&mut rng),
            _ => base.to_string().into_bytes(),
        };
        let (body, text) = match String::from_utf8(bytes) {
            Ok(t) => (Body::Text(t.clone()), Some(t)),
            Err(e) => {
                report.binary_frames += 1;
                (Body::Binary(e.as_bytes().to_vec()), None)
            }
        };
        let shown = || text.clone().unwrap_or_else(|| "binary".into());
        let replies = world.handle(body).await.map_err(|e| fail(i, e, shown()))?;
        let kind = check(text.as_deref(), &replies).map_err(|e| fail(i, e, shown()))?;
        *report.replies.entry(kind).or_default() += 1;
        if i % 1000 == 999 || i + 1 == frames {
            health(&mut world)
                .await
                .map_err(|e| fail(i, e, "(health check)".into()))?;
            report.health_checks += 2;
        }
    }
    report.frames = frames;
    let now = chrono::Utc::now();
    let verifiers = tokens::Verifiers::new(messenger::auth::DEV_SECRET.as_bytes(), now);
    for i in 0..tokens {
        let allowed = tokens::check_one(&verifiers, &mut rng, now)
            .await
            .map_err(|e| fail(frames + i, e, "(token)".into()))?;
        report.tokens_allowed += u64::from(allowed);
    }
    report.tokens = tokens;
    Ok(report)
}

/// The fuzzed connection still works: a valid send is stored, a heartbeat answered.
async fn health(world: &mut World) -> Result<(), String> {
    world.next += 1;
    let cmid = format!("health-{}", world.next);
    let frame =
        json!({"action":"send","id":"hc","to":"bob","client_msg_id":cmid,"body":"still here"});
    let replies = world.handle(Body::Text(frame.to_string())).await?;
    let reply: Value =
        serde_json::from_str(replies.first().ok_or("no reply")?).map_err(|e| e.to_string())?;
    if reply["type"] != "sent" || reply["duplicate"] == true {
        return Err(format!("a valid send was not stored: {reply}"));
    }
    let replies = world
        .handle(Body::Text(
            r#"{"action":"presence","id":"hb","users":[]}"#.into(),
        ))
        .await?;
    if !replies
        .first()
        .is_some_and(|r| r.contains(r#""type":"presence""#))
    {
        return Err(format!("the heartbeat was not answered: {replies:?}"));
    }
    Ok(())
}

/// Runs `config.workers` workers on threads of their own, each on a current-thread runtime.
pub fn run(config: &FuzzConfig) -> Result<FuzzReport, FuzzFailure> {
    let started = Instant::now();
    let workers = config.workers.max(1);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let share = |n: u64| n / workers as u64 + u64::from((w as u64) < n % workers as u64);
            let (frames, tokens) = (share(config.frames), share(config.tokens));
            let (seed, reset) = (
                config.seed.wrapping_add(w as u64),
                config.reset_every.max(1),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(worker(w, seed, frames, tokens, reset))
            })
        })
        .collect();
    let mut total = FuzzReport {
        seed: config.seed,
        workers,
        ..FuzzReport::default()
    };
    for h in handles {
        let r = h.join().expect("a fuzz worker thread")?;
        total.frames += r.frames;
        total.tokens += r.tokens;
        total.tokens_allowed += r.tokens_allowed;
        total.health_checks += r.health_checks;
        total.binary_frames += r.binary_frames;
        for (k, v) in r.replies {
            *total.replies.entry(k).or_default() += v;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    total.frames_per_second = total.frames as f64 / total.seconds.max(1e-9);
    Ok(total)
}
