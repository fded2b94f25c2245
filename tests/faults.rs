//! The promise "an ack means durable, nothing is lost, exactly once in the log" under the
//! faults AWS produces (docs/reliability.md), with real WebSocket clients through the embedded
//! gateway, on both stores:
//!
//! - 1:1 and group chats with faults on 20 % of the store's calls (in memory at the ports; on
//!   DynamoDB under the SDK client: throttling, throttled and conflicting transactions, 500s,
//!   timeouts, lost responses) and on 10 % of the posts (not delivered, or delivered with the
//!   answer lost). Every `sent` message is in the log exactly once, seqs are gapless, every
//!   member has every message by live delivery or sync, and every send that got `internal` or
//!   no answer succeeded when retried with the same `client_msg_id`.
//! - Group changes (each with its key) and amendments (edits, reactions) under the same faults,
//!   each sent again until answered: every change is in the log once, in order.
//! - The send path's crash points: after the append and before the reply, after the reply and
//!   before the fan-out, in the middle of the fan-out. The client retries and syncs; nothing is
//!   lost or stored twice.
//!
//! Clients behave as docs/protocol.md asks: the same frame again after `internal` or no answer;
//! a (conversation, seq) they have is dropped; a gap in seqs means sync.

use messenger::Stores;
use messenger::domain::ConversationId;
use messenger_aws::faults::{CrashPoint, FaultPlan, FaultyPoster, seed_from_env};
use messenger_e2e::{Client, TestGateway, faulty_test_stores, test_stores};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// Faults on this share of the store's calls…
const STORE_RATE: f64 = 0.2;
/// … and of PostToConnection calls.
const POST_RATE: f64 = 0.1;

/// How long a client waits for an answer before sending the same request again: a send takes
/// milliseconds in memory and well under a second on the emulator.
fn patience() -> Duration {
    match std::env::var("MESSENGER_E2E_STORE").as_deref() {
        Ok("dynamodb") => Duration::from_millis(1500),
        _ => Duration::from_millis(400),
    }
}

/// A gateway whose store and poster inject faults, and the store without them.
async fn faulty_gateway() -> (TestGateway, Stores, [Arc<FaultPlan>; 2]) {
    let seed = seed_from_env();
    eprintln!("fault seed {seed} (MESSENGER_FAULT_SEED={seed} replays the faults' choices)");
    let store_plan = Arc::new(FaultPlan::new(seed, STORE_RATE));
    let post_plan = Arc::new(FaultPlan::new(seed ^ 0x5eed, POST_RATE));
    let (faulty, clean) = faulty_test_stores(store_plan.clone()).await;
    let posts = post_plan.clone();
    let gw = TestGateway::start_wrapped(GatewayConfig::default(), faulty, move |poster| {
        FaultyPoster::wrap(poster, posts)
    })
    .await;
    (gw, clean, [store_plan, post_plan])
}

/// What one member did and saw.
struct Outcome {
    user: String,
    /// (client_msg_id, seq) of every send, each answered `sent` in the end.
    acked: Vec<(String, u64)>,
    /// Every message of the conversation it has, by seq: live or synced, duplicates dropped.
    have: BTreeMap<u64, Value>,
    /// Requests sent again after `internal` or no answer.
    retries: usize,
}

/// Adds `m` to what a device has; a seq it already has must be the same message.
fn keep(have: &mut BTreeMap<u64, Value>, m: Value) {
    let seq = m["seq"].as_u64().expect("a seq");
    if let Some(had) = have.get(&seq) {
        assert_eq!(
            had["client_msg_id"], m["client_msg_id"],
            "seq {seq} delivered as two different messages"
        );
    }
    have.insert(seq, m);
}

/// One member: sends `n` messages to `target` (each until answered), waits for the others,
/// then syncs from the first seq it is missing.
async fn member(
    mut client: Client,
    conv: String,
    target: Value,
    n: usize,
    everyone_sent: Arc<Barrier>,
) -> Outcome {
    let user = client.user.clone();
    let (mut acked, mut retries) = (Vec::new(), 0);
    for i in 0..n {
        let cmid = format!("{user}-{i}");
        let mut frame =
            json!({"action":"send","client_msg_id":cmid,"body":format!("{user} says {i}")});
        for (k, v) in target.as_object().expect("a target") {
            frame[k] = v.clone();
        }
        let (sent, r) = client
            .request_until_answered(&cmid, frame, patience())
            .await;
        assert_eq!(sent["type"], "sent", "{user}: {sent}");
        assert_eq!(sent["conversation"], conv.as_str());
        acked.push((cmid, sent["seq"].as_u64().expect("a seq")));
        retries += r;
    }
    everyone_sent.wait().await;
    let mut have = BTreeMap::new();
    let live: Vec<Value> = client
        .backlog()
        .iter()
        .filter(|v| v["type"] == "message" && v["conversation"] == conv.as_str())
        .cloned()
        .collect();
    for m in live {
        keep(&mut have, m);
    }
    // The first gap (its own messages are gaps too: no device of its own got them live).
    let cursor = (1..).find(|s| !have.contains_key(s)).expect("a gap") - 1;
    for m in client.sync_all(&conv, cursor, patience()).await {
        keep(&mut have, m);
    }
    Outcome {
        user,
        acked,
        have,
        retries,
    }
}

/// Runs `members` concurrently and checks the promise against the log read without faults:
/// seqs 1..=N each once, every acked send there exactly once at its seq, every member holding
/// every seq. `system` counts the system messages expected besides the sends.
async fn check(
    clean: &Stores,
    plans: &[Arc<FaultPlan>; 2],
    conv: &str,
    outcomes: Vec<Outcome>,
    system: usize,
) {
    for p in plans {
        p.set_enabled(false);
    }
    let conv_id = ConversationId::new(conv).unwrap();
    let log = clean
        .messages
        .after(&conv_id, 0, 100_000, chrono::Utc::now())
        .await
        .expect("the log, read without faults");
    let sends: usize = outcomes.iter().map(|o| o.acked.len()).sum();
    let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=(sends + system) as u64).collect::<Vec<_>>(),
        "the log is gapless and holds each send once"
    );
    let stored: BTreeMap<(String, String), u64> = log
        .iter()
        .map(|m| ((m.from.to_string(), m.client_msg_id.to_string()), m.seq))
        .collect();
    assert_eq!(
        stored.len(),
        log.len(),
        "a (sender, client_msg_id) stored twice"
    );
    let mut retries = 0;
    for o in &outcomes {
        retries += o.retries;
        for (cmid, seq) in &o.acked {
            assert_eq!(
                stored.get(&(o.user.clone(), cmid.clone())),
                Some(seq),
                "{}'s {cmid}: acked as seq {seq}",
                o.user
            );
        }
        let have: BTreeSet<u64> = o.have.keys().copied().collect();
        let all: BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(have, all, "{} is missing messages", o.user);
    }
    let injected = plans[0].total_injected() + plans[1].total_injected();
    println!(
        "{conv}: {} messages acked, 0 lost, 0 duplicated; {retries} client retries; store {}; posts {}",
        sends,
        plans[0].summary(),
        plans[1].summary()
    );
    assert!(injected > 0, "no fault was injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_under_faults_every_acked_message_is_stored_once_and_reaches_the_other() {
    // GIVEN alice and bob on a gateway whose store and posts fail now and then
    let (gw, clean, plans) = faulty_gateway().await;
    let alice = gw.connect_retrying("alice", "phone").await;
    let bob = gw.connect_retrying("bob", "phone").await;
    let conv = "dm:alice:bob".to_owned();
    // WHEN both send 15 messages at once, retrying what fails
    let barrier = Arc::new(Barrier::new(2));
    let tasks = [(alice, "bob"), (bob, "alice")].map(|(c, to)| {
        tokio::spawn(member(
            c,
            conv.clone(),
            json!({ "to": to }),
            15,
            barrier.clone(),
        ))
    });
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("a member"));
    }
    // THEN every acked message is in the log once, and both have all of them
    check(&clean, &plans, &conv, outcomes, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_under_faults_every_member_gets_every_acked_message_once() {
    // GIVEN a group of four created (and retried) through the faults
    let (gw, clean, plans) = faulty_gateway().await;
    let mut alice = gw.connect_retrying("alice", "phone").await;
    let frame = json!({"action":"create_group","name":"Faults","members":["bob","carol","dave"],"client_msg_id":"g-1"});
    let (group, _) = alice
        .request_until_answered("create", frame, patience())
        .await;
    assert_eq!(group["type"], "group", "{group}");
    let conv = group["conversation"].as_str().unwrap().to_owned();
    let mut clients = vec![alice];
    for u in ["bob", "carol", "dave"] {
        clients.push(gw.connect_retrying(u, "phone").await);
    }
    // WHEN all four send 8 messages at once
    let barrier = Arc::new(Barrier::new(clients.len()));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(member(
                c,
                conv.clone(),
                json!({ "conversation": conv }),
                8,
                barrier.clone(),
            ))
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("a member"));
    }
    // THEN the log is the creation event and every acked message once, and every member has
    // all of them
    check(&clean, &plans, &conv, outcomes, 1).await;
}

/// A gateway (over fresh stores, no faults) whose posts can crash at a chosen point; the
/// invocation that crashes is abandoned after a second.
async fn crash_gateway() -> (TestGateway, CrashPoint, Stores) {
    let stores = test_stores().await;
    let point = CrashPoint::new();
    let config = GatewayConfig {
        integration_timeout: Duration::from_secs(1),
        ..GatewayConfig::default()
    };
    let layer = point.clone();
    let gw = TestGateway::start_wrapped(config, stores.clone(), move |p| layer.poster(p)).await;
    (gw, point, stores)
}

/// The log of `dm:alice:bob`: (seq, client_msg_id), read through the ports.
async fn dm_log(stores: &Stores) -> Vec<(u64, String)> {
    let conv = ConversationId::new("dm:alice:bob").unwrap();
    let log = stores
        .messages
        .after(&conv, 0, 1000, chrono::Utc::now())
        .await
        .unwrap();
    log.into_iter()
        .map(|m| (m.seq, m.client_msg_id.to_string()))
        .collect()
}

fn send(cmid: &str) -> Value {
    json!({"action":"send","to":"bob","client_msg_id":cmid,"body":"hi"})
}

/// The frame a crash point matches: a `type` frame about `cmid`.
fn about(ty: &'static str, cmid: &'static str) -> impl Fn(&str) -> bool {
    move |frame: &str| {
        frame.contains(&format!(r#""type":"{ty}""#))
            && frame.contains(&format!(r#""client_msg_id":"{cmid}""#))
    }
}

/// The seqs of `dm:alice:bob` a device got live so far.
fn live_seqs(c: &Client) -> BTreeSet<u64> {
    c.backlog()
        .iter()
        .filter(|v| v["type"] == "message")
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

#[tokio::test]
async fn a_send_dying_after_the_append_before_the_reply_is_answered_and_delivered_by_its_retry() {
    let (gw, point, stores) = crash_gateway().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    // GIVEN the send path dies after storing c-1, before answering `sent`
    let is_reply = about("sent", "c-1");
    point.arm(move |_, f| is_reply(f));
    // WHEN alice gets no answer and sends the same frame again
    let (sent, retries) = alice
        .request_until_answered("r-1", send("c-1"), Duration::from_secs(2))
        .await;
    // THEN the retry answers with the stored message, and delivers it to bob
    assert!(retries >= 1, "the first attempt was answered: {sent}");
    assert_eq!(
        (
            sent["type"].as_str(),
            sent["seq"].as_u64(),
            &sent["duplicate"]
        ),
        (Some("sent"), Some(1), &json!(true))
    );
    let m = bob
        .recv_where(|v| v["type"] == "message" && v["seq"] == 1)
        .await;
    assert_eq!(m["client_msg_id"], "c-1");
    // … and it is in the log once
    assert_eq!(dm_log(&stores).await, [(1, "c-1".to_owned())]);
}

#[tokio::test]
async fn a_send_dying_after_the_reply_before_the_fan_out_reaches_the_recipient_by_sync() {
    let (gw, point, stores) = crash_gateway().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    // GIVEN the send path dies after answering `sent` for c-1, before delivering it
    let is_delivery = about("message", "c-1");
    point.arm(move |_, f| is_delivery(f));
    // WHEN alice sends c-1 (acknowledged) and then c-2
    let sent = alice.send_to("bob", "c-1", "one").await;
    assert_eq!(
        (sent["seq"].as_u64(), &sent["duplicate"]),
        (Some(1), &Value::Null)
    );
    point.crashed().await;
    assert_eq!(alice.send_to("bob", "c-2", "two").await["seq"], 2);
    // THEN bob gets seq 2 live, sees the gap, and syncs seq 1
    bob.recv_where(|v| v["type"] == "message" && v["seq"] == 2)
        .await;
    assert!(
        !live_seqs(&bob).contains(&1),
        "seq 1 was never delivered live"
    );
    let synced = bob
        .sync_all("dm:alice:bob", 0, Duration::from_secs(5))
        .await;
    let synced: Vec<_> = synced.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(synced, [1, 2]);
    // … and each is in the log once
    assert_eq!(
        dm_log(&stores).await,
        [(1, "c-1".to_owned()), (2, "c-2".to_owned())]
    );
}

#[tokio::test]
async fn a_send_dying_in_the_middle_of_its_fan_out_reaches_every_device_by_live_delivery_or_sync() {
    let (gw, point, stores) = crash_gateway().await;
    let mut alice = gw.connect("alice", "phone").await;
    let alice_laptop = gw.connect("alice", "laptop").await;
    let bob_phone = gw.connect("bob", "phone").await;
    let bob_laptop = gw.connect("bob", "laptop").await;
    // GIVEN the send path dies at the second of c-1's three deliveries
    let is_delivery = about("message", "c-1");
    let seen = std::sync::atomic::AtomicUsize::new(0);
    point.arm(move |_, f| {
        is_delivery(f) && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
    });
    // WHEN alice sends c-1, then c-2
    assert_eq!(alice.send_to("bob", "c-1", "one").await["seq"], 1);
    point.crashed().await;
    assert_eq!(alice.send_to("bob", "c-2", "two").await["seq"], 2);
    // THEN every other device gets seq 2 live; one of them missed seq 1 and syncs it
    let mut synced_by = 0;
    for mut device in [alice_laptop, bob_phone, bob_laptop] {
        device
            .recv_where(|v| v["type"] == "message" && v["seq"] == 2)
            .await;
        let mut have = live_seqs(&device);
        have.insert(2);
        if !have.contains(&1) {
            synced_by += 1;
            let synced = device
                .sync_all("dm:alice:bob", 0, Duration::from_secs(5))
                .await;
            have.extend(synced.iter().filter_map(|m| m["seq"].as_u64()));
        }
        assert_eq!(have, BTreeSet::from([1, 2]), "{}", device.user);
    }
    assert!(synced_by >= 1, "the crash cut no delivery");
    assert_eq!(
        dm_log(&stores).await,
        [(1, "c-1".to_owned()), (2, "c-2".to_owned())]
    );
}

/// Sends `frame` until it is answered with something else than `internal`, `rate_limited` or
/// silence (as a client does), and returns the answer.
async fn until_answered(client: &mut Client, id: &str, frame: Value) -> Value {
    client.request_until_answered(id, frame, patience()).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_changes_and_amendments_under_faults_each_apply_once() {
    let (gw, clean, plans) = faulty_gateway().await;
    for p in &plans {
        p.set_enabled(false);
    }
    let mut alice = gw.connect_retrying("alice", "phone").await;
    let mut bob = gw.connect_retrying("bob", "phone").await;
    for p in &plans {
        p.set_enabled(true);
    }
    // Group changes, each with its key, each sent again until answered.
    let created = until_answered(
        &mut alice,
        "g1",
        json!({"action":"create_group","name":"Faulty","members":["bob"],"client_msg_id":"g-1"}),
    )
    .await;
    assert_eq!(created["type"], "group", "{created}");
    let g = created["conversation"].as_str().unwrap().to_owned();
    let steps = [
        json!({"action":"add_members","conversation":g,"users":["carol","dave"],"client_msg_id":"g-2"}),
        json!({"action":"rename_group","conversation":g,"name":"Still faulty","client_msg_id":"g-3"}),
        json!({"action":"remove_members","conversation":g,"users":["dave"],"client_msg_id":"g-4"}),
    ];
    for (i, frame) in steps.into_iter().enumerate() {
        let r = until_answered(&mut alice, &format!("s{i}"), frame.clone()).await;
        assert_eq!(r["type"], "group", "{frame}: {r}");
    }
    // A message, edited three times by its author, and bob's reactions added and taken back.
    let (sent, _) = alice
        .request_until_answered(
            "m1",
            json!({"action":"send","conversation":g,"client_msg_id":"m-1","body":"v0"}),
            patience(),
        )
        .await;
    let seq = sent["seq"].as_u64().expect("a seq");
    for (i, body) in ["v1", "v2", "v3"].into_iter().enumerate() {
        let r = until_answered(
            &mut alice,
            &format!("e{i}"),
            json!({"action":"edit","conversation":g,"seq":seq,"body":body}),
        )
        .await;
        assert_eq!(r["type"], "edited", "{r}");
    }
    let reactions = [("👍", false), ("👍", true), ("❤️", false)];
    for (i, (emoji, remove)) in reactions.into_iter().enumerate() {
        let r = until_answered(
            &mut bob,
            &format!("r{i}"),
            json!({"action":"react","conversation":g,"seq":seq,"emoji":emoji,"remove":remove}),
        )
        .await;
        assert_eq!(r["type"], "reacted", "{r}");
    }

    // Read without faults: each change is in the log once, in order, with no gap, and the
    // group and the message are what the answered requests made them.
    for p in &plans {
        p.set_enabled(false);
    }
    let conv = ConversationId::new(&g).unwrap();
    let log = clean
        .messages
        .after(&conv, 0, 1000, chrono::Utc::now())
        .await
        .expect("the log");
    let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "gapless");
    let kinds: Vec<&str> = log
        .iter()
        .map(|m| m.event.as_ref().map_or("chat", |e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            "group_created",
            "members_added",
            "group_renamed",
            "members_removed",
            "chat",
            "message_edited",
            "message_edited",
            "message_edited",
            "reaction_added",
            "reaction_removed",
            "reaction_added",
        ],
        "each change once"
    );
    let members: Vec<String> = clean
        .conversations
        .members(&conv)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user.to_string())
        .collect();
    assert_eq!(members, ["alice", "bob", "carol"]);
    let message = log.iter().find(|m| m.seq == seq).unwrap();
    assert_eq!(message.body, "v3");
    let reacted: Vec<(String, Vec<String>)> = message
        .reactions
        .iter()
        .map(|r| {
            let users = r.users.iter().map(|u| u.to_string()).collect();
            (r.emoji.to_string(), users)
        })
        .collect();
    assert_eq!(reacted, [("❤️".to_owned(), vec!["bob".to_owned()])]);
    let injected = plans[0].total_injected() + plans[1].total_injected();
    println!(
        "group changes and amendments: store {}; posts {}",
        plans[0].summary(),
        plans[1].summary()
    );
    assert!(injected > 0, "no fault was injected");
}
