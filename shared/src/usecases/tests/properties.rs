//! Property tests where order matters: random schedules of sends (new and retried), acks and
//! syncs from several devices, run concurrently with the tasks interleaved at every port call
//! (a seeded number of yields before each), for many seeds. Whatever the interleaving:
//! - seqs are gapless per conversation, each `(sender, client_msg_id)` stored once, and every
//!   `sent` for it names the same seq, the one in the log;
//! - a pointer never moves back (sampled between the steps of the run), ends at the highest
//!   accepted ack (`read` implies `delivered`), and every receipt names a seq an ack of that
//!   user accepted — in a 1:1 conversation the last of them the final pointer;
//! - every delivered message is the log's message at that seq;
//! - reactions added and taken back concurrently (the amend transaction racing the appends)
//!   leave each message with exactly what replaying the log's reaction entries gives.
//!
//! A failure names its seed; `MESSENGER_PROPERTY_SEED=<seed>` runs only that one.

use crate::domain::{
    Amendment, Connection, ConnectionId, ConversationId, GroupInfo, Head, LogEvent, Member,
    Membership, Message, NewMessage, ReceiptKind, RequestState, Seq, UserId,
};
use crate::ports::{
    Amended, Append, Connections, Conversations, Effects, GroupContext, GroupKeys, MessageLog,
    StoreError, UserPresence, WriteContext, WriteKeys, WriteReads,
};
use crate::request::{Caller, Frame};
use crate::routes::Action;
use crate::usecases::serve_frame;
use crate::usecases::testkit::World;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// SplitMix64, shared by the tasks of one run.
#[derive(Clone)]
struct Rng(Arc<Mutex<u64>>);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(seed)))
    }
    fn next(&self) -> u64 {
        let mut s = self.0.lock().unwrap();
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&self, n: u64) -> u64 {
        self.next() % n
    }
    /// Gives the other tasks a seeded number of turns.
    async fn shuffle(&self) {
        for _ in 0..self.below(4) {
            tokio::task::yield_now().await;
        }
    }
}

/// The storage ports a send and an ack use, with the task yielding before each call.
struct Interleaved {
    connections: Arc<dyn Connections>,
    conversations: Arc<dyn Conversations>,
    messages: Arc<dyn MessageLog>,
    reads: Arc<dyn WriteReads>,
    rng: Rng,
}

#[async_trait]
impl WriteReads for Interleaved {
    async fn read_for_write(
        &self,
        keys: WriteKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<WriteContext, StoreError> {
        self.rng.shuffle().await;
        self.reads.read_for_write(keys, now).await
    }
    async fn read_for_group(
        &self,
        keys: GroupKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<GroupContext, StoreError> {
        self.rng.shuffle().await;
        self.reads.read_for_group(keys, now).await
    }
}

#[async_trait]
impl Connections for Interleaved {
    async fn put(&self, conn: &Connection, max_live: usize) -> Result<Vec<Connection>, StoreError> {
        self.rng.shuffle().await;
        self.connections.put(conn, max_live).await
    }
    async fn disconnect(
        &self,
        user: &UserId,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.rng.shuffle().await;
        self.connections.disconnect(user, id, at).await
    }
    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError> {
        self.rng.shuffle().await;
        self.connections.remove(user, id).await
    }
    async fn presence(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UserId, UserPresence>, StoreError> {
        self.rng.shuffle().await;
        self.connections.presence(users, now).await
    }
    async fn of_users(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Connection>, StoreError> {
        self.rng.shuffle().await;
        self.connections.of_users(users, now).await
    }
}

#[async_trait]
impl Conversations for Interleaved {
    async fn membership(
        &self,
        c: &ConversationId,
        u: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        self.rng.shuffle().await;
        self.conversations.membership(c, u).await
    }
    async fn members(&self, c: &ConversationId) -> Result<Vec<Member>, StoreError> {
        self.rng.shuffle().await;
        self.conversations.members(c).await
    }
    async fn pointers(&self, c: &ConversationId) -> Result<Vec<Membership>, StoreError> {
        self.rng.shuffle().await;
        self.conversations.pointers(c).await
    }
    async fn of_user(&self, u: &UserId) -> Result<Vec<Membership>, StoreError> {
        self.rng.shuffle().await;
        self.conversations.of_user(u).await
    }
    async fn advance(
        &self,
        c: &ConversationId,
        u: &UserId,
        k: ReceiptKind,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        self.rng.shuffle().await;
        self.conversations.advance(c, u, k, seq, chats).await
    }
    async fn read_through(
        &self,
        c: &ConversationId,
        u: &UserId,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        self.rng.shuffle().await;
        self.conversations.read_through(c, u, seq, chats).await
    }
    async fn set_muted(
        &self,
        c: &ConversationId,
        u: &UserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.rng.shuffle().await;
        self.conversations.set_muted(c, u, until).await
    }
    async fn set_request(
        &self,
        c: &ConversationId,
        u: &UserId,
        state: RequestState,
        peer: Option<(&UserId, RequestState)>,
    ) -> Result<bool, StoreError> {
        self.rng.shuffle().await;
        self.conversations.set_request(c, u, state, peer).await
    }
    async fn groups(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, GroupInfo>, StoreError> {
        self.rng.shuffle().await;
        self.conversations.groups(convs).await
    }
}

#[async_trait]
impl MessageLog for Interleaved {
    async fn append_with(
        &self,
        msg: NewMessage,
        effects: &Effects,
        seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        self.rng.shuffle().await;
        self.messages.append_with(msg, effects, seen).await
    }
    async fn amend(&self, a: &Amendment) -> Result<Amended, StoreError> {
        self.rng.shuffle().await;
        self.messages.amend(a).await
    }
    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError> {
        self.rng.shuffle().await;
        self.messages.heads(convs).await
    }
    async fn by_seqs(
        &self,
        c: &ConversationId,
        seqs: &[Seq],
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.rng.shuffle().await;
        self.messages.by_seqs(c, seqs, now).await
    }
    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        self.rng.shuffle().await;
        self.messages.last_seqs(convs).await
    }
    async fn after(
        &self,
        c: &ConversationId,
        after: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.rng.shuffle().await;
        self.messages.after(c, after, limit, now).await
    }
    async fn before(
        &self,
        c: &ConversationId,
        before: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.rng.shuffle().await;
        self.messages.before(c, before, limit, now).await
    }
}

/// Devices: (user, device).
const DEVICES: [(&str, &str); 4] = [
    ("alice", "phone"),
    ("alice", "laptop"),
    ("bob", "phone"),
    ("carol", "phone"),
];

/// Frames of one random schedule: (device index, frame).
fn schedule(rng: &Rng, group: &str, ops: usize) -> Vec<(usize, Value)> {
    let convs = |user: &str| -> Vec<String> {
        let mut c = vec![group.to_owned()];
        match user {
            "alice" => c.push("dm:alice:bob".into()),
            "bob" => c.extend(["dm:alice:bob".into(), "dm:bob:carol".into()]),
            _ => c.push("dm:bob:carol".into()),
        }
        c
    };
    let mut sent: Vec<(usize, String, String)> = Vec::new();
    let mut out = Vec::new();
    for k in 0..ops {
        let d = rng.below(DEVICES.len() as u64) as usize;
        let user = DEVICES[d].0;
        let mine = convs(user);
        let conv = mine[rng.below(mine.len() as u64) as usize].clone();
        let frame = match rng.below(12) {
            0..=4 => {
                // A retry (of a send by the same user, to the same conversation) now and then.
                let earlier: Vec<_> = sent
                    .iter()
                    .filter(|(u, _, _)| DEVICES[*u].0 == user)
                    .collect();
                let (conv, cmid) = match earlier.is_empty() || rng.below(10) >= 3 {
                    true => (conv, format!("{user}-{k}")),
                    false => {
                        let (_, c, m) = earlier[rng.below(earlier.len() as u64) as usize];
                        (c.clone(), m.clone())
                    }
                };
                sent.push((d, conv.clone(), cmid.clone()));
                json!({"action":"send","conversation":conv,"client_msg_id":cmid,"body":"hi"})
            }
            5..=8 => {
                let kind = if rng.below(2) == 0 {
                    "delivered"
                } else {
                    "read"
                };
                json!({"action":"ack","conversation":conv,"seq":1 + rng.below(8),"kind":kind})
            }
            9 | 10 => {
                let emoji = ["👍", "❤️"][rng.below(2) as usize];
                json!({"action":"react","conversation":conv,"seq":1 + rng.below(8),
                    "emoji":emoji,"remove":rng.below(3) == 0})
            }
            _ => json!({"action":"sync","since":{}}),
        };
        out.push((d, frame));
    }
    out
}

/// Runs one seed; panics with the seed on a broken property. Returns how many reaction
/// entries the logs hold (the schedules must exercise the amend transaction).
async fn run(seed: u64, ops: usize) -> usize {
    let w = World::new();
    let callers: Vec<Caller> = {
        let mut v = Vec::new();
        for (u, d) in DEVICES {
            v.push(w.connect(u, d).await);
        }
        v
    };
    // A group of the three, and both 1:1 conversations.
    let r = w.request(
        &callers[0],
        json!({"name":"G","members":["bob","carol"],"client_msg_id":"g-1"}),
    );
    crate::usecases::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    let group = w.take(&callers[0])[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    for (from, to) in [(0, "bob"), (2, "carol")] {
        let r = w.request(
            &callers[from],
            json!({"to":to,"client_msg_id":format!("first-{to}"),"body":"hello"}),
        );
        crate::usecases::send::send(&w.app, &r, r.frame().unwrap())
            .await
            .unwrap();
    }
    for c in &callers {
        w.take(c);
    }

    let rng = Rng::new(seed);
    let clean = w.app.stores.clone();
    let mut app = w.app.clone();
    let interleaved = Arc::new(Interleaved {
        connections: clean.connections.clone(),
        conversations: clean.conversations.clone(),
        messages: clean.messages.clone(),
        reads: clean.reads.clone(),
        rng: rng.clone(),
    });
    app.stores.connections = interleaved.clone();
    app.stores.conversations = interleaved.clone();
    app.stores.messages = interleaved.clone();
    app.stores.reads = interleaved;

    let frames = schedule(&rng, &group, ops);
    let pending = Arc::new(AtomicUsize::new(frames.len()));
    let mut tasks = Vec::new();
    for (i, (d, frame)) in frames.iter().cloned().enumerate() {
        let (app, caller, rng, pending) = (
            app.clone(),
            callers[d].clone(),
            rng.clone(),
            pending.clone(),
        );
        tasks.push(tokio::spawn(async move {
            rng.shuffle().await;
            let mut frame = frame;
            frame["id"] = json!(i);
            let action = Action::from_name(frame["action"].as_str().unwrap()).unwrap();
            let text = frame.to_string();
            serve_frame(
                &app,
                action.function().expect("a function"),
                caller,
                format!("r{i}"),
                Frame::Text(&text),
            )
            .await;
            pending.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    // Pointers sampled between the steps: never backwards.
    let convs: Vec<ConversationId> = [group.as_str(), "dm:alice:bob", "dm:bob:carol"]
        .iter()
        .map(|c| ConversationId::new(*c).unwrap())
        .collect();
    let users: Vec<UserId> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| UserId::new(*u).unwrap())
        .collect();
    let mut last: BTreeMap<(usize, usize), (Seq, Seq)> = BTreeMap::new();
    while pending.load(Ordering::SeqCst) > 0 {
        for (ci, c) in convs.iter().enumerate() {
            for (ui, u) in users.iter().enumerate() {
                if let Some(m) = clean.conversations.membership(c, u).await.unwrap() {
                    let before = last
                        .insert((ci, ui), (m.delivered, m.read))
                        .unwrap_or((0, 0));
                    assert!(
                        m.delivered >= before.0 && m.read >= before.1,
                        "seed {seed}: {u}'s pointers in {c} moved back: {before:?} → {:?}",
                        (m.delivered, m.read)
                    );
                }
            }
        }
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.expect("a task");
    }

    // What every device got, in order.
    let posts: Vec<Vec<Value>> = callers.iter().map(|c| w.take(c)).collect();
    // Replies by request id.
    let mut replies: BTreeMap<usize, Value> = BTreeMap::new();
    for (d, got) in posts.iter().enumerate() {
        for f in got.iter().filter(|f| f.get("id").is_some()) {
            let i = f["id"].as_u64().unwrap() as usize;
            assert_eq!(
                frames[i].0, d,
                "seed {seed}: the reply to {i} went to another device"
            );
            assert!(
                replies.insert(i, f.clone()).is_none(),
                "seed {seed}: two replies to {i}"
            );
        }
    }
    assert_eq!(
        replies.len(),
        frames.len(),
        "seed {seed}: a frame went unanswered"
    );

    let now = Utc::now();
    let mut logs: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    for c in &convs {
        let log = clean.messages.after(c, 0, 10_000, now).await.unwrap();
        let seqs: Vec<Seq> = log.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=log.len() as Seq).collect::<Vec<_>>(),
            "seed {seed}: {c} has a gap"
        );
        let chat: Vec<&Message> = log.iter().filter(|m| m.event.is_none()).collect();
        let keys: BTreeSet<_> = chat.iter().map(|m| (&m.from, &m.client_msg_id)).collect();
        assert_eq!(
            keys.len(),
            chat.len(),
            "seed {seed}: {c} stored a send twice"
        );
        // Replaying the reaction entries in log order gives each message's reactions.
        let mut replayed: BTreeMap<Seq, BTreeSet<(String, String)>> = BTreeMap::new();
        for m in &log {
            match &m.event {
                Some(LogEvent::ReactionAdded { seq, emoji }) => {
                    let fresh = replayed
                        .entry(*seq)
                        .or_default()
                        .insert((emoji.to_string(), m.from.to_string()));
                    assert!(fresh, "seed {seed}: {c}#{} adds a reaction it had", m.seq);
                }
                Some(LogEvent::ReactionRemoved { seq, emoji }) => {
                    let had = replayed
                        .entry(*seq)
                        .or_default()
                        .remove(&(emoji.to_string(), m.from.to_string()));
                    assert!(
                        had,
                        "seed {seed}: {c}#{} removes a reaction it lacked",
                        m.seq
                    );
                }
                _ => {}
            }
        }
        for m in &chat {
            let stored: BTreeSet<(String, String)> = m
                .reactions
                .iter()
                .flat_map(|r| r.users.iter().map(|u| (r.emoji.to_string(), u.to_string())))
                .collect();
            let expected = replayed.remove(&m.seq).unwrap_or_default();
            assert_eq!(stored, expected, "seed {seed}: {c}#{}'s reactions", m.seq);
        }
        logs.insert(c.to_string(), log);
    }
    // Every `sent` names the log's seq for its client_msg_id.
    for (i, (d, frame)) in frames.iter().enumerate() {
        let reply = &replies[&i];
        if frame["action"] == "send" {
            assert_eq!(reply["type"], "sent", "seed {seed}: {frame} → {reply}");
            let log = &logs[reply["conversation"].as_str().unwrap()];
            let stored = log
                .iter()
                .find(|m| {
                    m.from.as_str() == DEVICES[*d].0
                        && m.client_msg_id.as_str() == frame["client_msg_id"]
                })
                .unwrap_or_else(|| panic!("seed {seed}: {frame} acked but not stored"));
            assert_eq!(reply["seq"], stored.seq, "seed {seed}: {frame}");
        }
    }
    // Final pointers: the highest accepted ack or own message (sending reads: both pointers
    // move to the sender's new message); receipts only for accepted acks, the last the pointer
    // when an ack set it.
    let mut accepted: BTreeMap<(String, String, &str), BTreeSet<u64>> = BTreeMap::new();
    for (i, (d, frame)) in frames.iter().enumerate() {
        if frame["action"] == "ack" && replies[&i]["type"] == "acked" {
            let key = |k| {
                (
                    frame["conversation"].as_str().unwrap().to_owned(),
                    DEVICES[*d].0.to_owned(),
                    k,
                )
            };
            let seq = frame["seq"].as_u64().unwrap();
            accepted.entry(key("delivered")).or_default().insert(seq);
            if frame["kind"] == "read" {
                accepted.entry(key("read")).or_default().insert(seq);
            }
        }
    }
    for c in &convs {
        for u in &users {
            let Some(m) = clean.conversations.membership(c, u).await.unwrap() else {
                continue;
            };
            let own = logs[c.as_str()]
                .iter()
                .filter(|m| m.event.is_none() && &m.from == u)
                .map(|m| m.seq)
                .max()
                .unwrap_or(0);
            for (kind, pointer) in [("delivered", m.delivered), ("read", m.read)] {
                let key = (c.to_string(), u.to_string(), kind);
                let max = accepted
                    .get(&key)
                    .and_then(|s| s.last())
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    pointer,
                    max.max(own),
                    "seed {seed}: {u}'s {kind} pointer in {c}"
                );
                let receipts: Vec<u64> = posts
                    .iter()
                    .flatten()
                    .filter(|f| {
                        f["type"] == "receipt"
                            && f["conversation"] == c.as_str()
                            && f["by"] == u.as_str()
                            && f["kind"] == kind
                    })
                    .map(|f| f["seq"].as_u64().unwrap())
                    .collect();
                for r in &receipts {
                    assert!(
                        accepted[&key].contains(r),
                        "seed {seed}: a receipt for {r} no ack accepted"
                    );
                }
                // In a 1:1 conversation every move by an ack is told to the other member (whose
                // phone is connected); a group's receipt goes only to the authors the ack covers.
                // A send moves the pointer silently: only an ack past the own messages set it.
                if let Some(top) = receipts.iter().max().filter(|_| !c.is_group() && max > own) {
                    assert_eq!(
                        *top, pointer,
                        "seed {seed}: the last receipt is not the pointer"
                    );
                }
            }
        }
    }
    // Deliveries are the log's messages.
    for f in posts.iter().flatten().filter(|f| f["type"] == "message") {
        let log = &logs[f["conversation"].as_str().unwrap()];
        let m = &log[f["seq"].as_u64().unwrap() as usize - 1];
        assert_eq!(f["client_msg_id"], m.client_msg_id.as_str(), "seed {seed}");
    }
    logs.values()
        .flatten()
        .filter(|m| m.amends().is_some())
        .count()
}

#[test]
fn interleaved_sends_acks_and_reactions_keep_seqs_gapless_and_pointers_monotonic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let seeds: Vec<u64> = match std::env::var("MESSENGER_PROPERTY_SEED") {
        Ok(s) => vec![s.parse().expect("a seed")],
        Err(_) => (1..=200).collect(),
    };
    let mut amendments = 0;
    for seed in seeds {
        amendments += rt.block_on(run(seed, 40));
    }
    assert!(amendments > 0, "no schedule stored a reaction");
    println!("{amendments} reaction entries stored across the seeds");
}
