//! Several `messenger-local serve --store dynamodb` processes over the same tables, as
//! concurrent Lambda instances are on AWS: each process queues its own appends per
//! conversation, so only the conditional head write stands between processes.
//!
//! - Senders spread over three processes, all writing into one group, really race: a proxy in
//!   front of DynamoDB counts the transactions DynamoDB cancelled, and the seqs are still
//!   exactly 1..=N.
//! - A process SIGKILLed in the middle of a burst (sends cut wherever they were: joining the
//!   memberships of a new 1:1, appending, answering, fanning out), then restarted: the clients
//!   retry what was not acknowledged with the same `client_msg_id`s and sync. Every log is
//!   exactly 1..=head, every acknowledged message is there once with the seq it was acked with.

mod common;

use common::{DynamoProxy, WAIT, serve};
use futures_util::{SinkExt, StreamExt};
use messenger::domain::{ConversationId, DeviceId, UserId};
use messenger::ports::{Conversations, MessageLog};
use messenger_aws::{DynamoStore, Tables};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Fresh tables on the emulator (created here, before any gateway starts) and a store over them
/// to inspect what the gateways wrote.
async fn fresh_tables() -> (String, DynamoStore) {
    let endpoint = messenger_aws::testing::emulator_endpoint();
    let prefix = format!("proc{}-", messenger::contract::tag());
    let sdk = messenger_aws::sdk::for_endpoint(&endpoint).await;
    let store = DynamoStore::new(&sdk, Tables::with_prefix(&prefix));
    store.create_tables().await.expect("create tables");
    (prefix, store)
}

/// A gateway process over the tables `prefix` names, reaching DynamoDB at `endpoint`. Bursts
/// here are about races and kills, not limits (`tests/security.rs` covers those): sends are not
/// rate limited.
async fn gateway(endpoint: &str, prefix: &str) -> (Child, String) {
    serve(&[
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        endpoint,
        "--table-prefix",
        prefix,
        "--rate-send",
        "0",
    ])
    .await
}

/// A token the gateways accept (they sign with MESSENGER_JWT_SECRET, or the development secret).
fn token(user: &str, device: &str) -> String {
    let secret = std::env::var("MESSENGER_JWT_SECRET")
        .unwrap_or_else(|_| messenger::auth::DEV_SECRET.to_owned());
    let now = chrono::Utc::now();
    messenger::auth::mint(
        secret.as_bytes(),
        &UserId::new(user).unwrap(),
        Some(&DeviceId::new(device).unwrap()),
        now,
        now + chrono::Duration::hours(1),
    )
}

async fn connect(url: &str, user: &str, device: &str) -> Socket {
    let url = format!("{url}?token={}", token(user, device));
    tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("{user}/{device} connects: {e}"))
        .0
}

/// The next JSON frame, or `None` once the socket is gone (closed, reset, or the server died).
async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame or the end of the socket");
        match frame {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

/// Sends one request and returns its reply (other frames are skipped).
async fn request(ws: &mut Socket, mut frame: Value) -> Value {
    let id = messenger::contract::tag();
    frame["id"] = json!(id);
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        let v = next(ws).await.expect("a reply before the socket ends");
        if v["id"] == id.as_str() {
            return v;
        }
    }
}

/// A `send` whose request id is its `client_msg_id`.
fn send_frame(target: (&str, &str), cmid: &str) -> Value {
    json!({"action":"send", target.0: target.1, "client_msg_id": cmid, "body": format!("body of {cmid}"), "id": cmid})
}

/// Sends every frame at once on `ws`, then collects the replies (by request id) until each is
/// answered or the socket ends. Each `sent` reply bumps `acks`.
async fn burst(
    mut ws: Socket,
    frames: Vec<Value>,
    acks: tokio::sync::watch::Sender<usize>,
) -> BTreeMap<String, Value> {
    let mut pending: BTreeSet<String> = BTreeSet::new();
    for f in frames {
        pending.insert(f["id"].as_str().unwrap().to_owned());
        if ws.send(Message::Text(f.to_string().into())).await.is_err() {
            break;
        }
    }
    let mut replies = BTreeMap::new();
    while !pending.is_empty() {
        let Some(v) = next(&mut ws).await else { break };
        let Some(id) = v["id"].as_str() else { continue };
        if pending.remove(id) {
            if v["type"] == "sent" {
                acks.send_modify(|n| *n += 1);
            }
            replies.insert(id.to_owned(), v);
        }
    }
    replies
}

/// SIGKILLs the gateway and waits until it is dead.
async fn kill(mut child: Child) {
    child.start_kill().expect("SIGKILL");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the gateway dies")
        .unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
}

/// The whole log of `conv`, checked to be exactly seqs 1..=head with no `(from, client_msg_id)`
/// twice; returns each message's (from, client_msg_id) by seq.
async fn gapless_log(
    store: &DynamoStore,
    conv: &ConversationId,
) -> BTreeMap<u64, (String, String)> {
    let all = store
        .after(conv, 0, 100_000, chrono::Utc::now())
        .await
        .unwrap();
    let head = store.last_seqs(std::slice::from_ref(conv)).await.unwrap()[conv];
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "{conv}: exactly 1..={head}"
    );
    let log: BTreeMap<u64, (String, String)> = all
        .iter()
        .map(|m| (m.seq, (m.from.to_string(), m.client_msg_id.to_string())))
        .collect();
    let keys: BTreeSet<_> = log.values().collect();
    assert_eq!(keys.len(), log.len(), "{conv}: a send was stored twice");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_three_gateway_processes_race_for_the_head_and_get_seqs_1_to_n() {
    let (prefix, store) = fresh_tables().await;
    let proxy = DynamoProxy::start(&messenger_aws::testing::emulator_endpoint()).await;
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(gateway(&proxy.endpoint, &prefix).await);
    }
    const USERS: usize = 6;
    const EACH: usize = 15;
    let users: Vec<String> = (0..USERS).map(|i| format!("racer{i}")).collect();
    let mut admin = connect(&gateways[0].1, &users[0], "phone").await;
    let created = request(
        &mut admin,
        json!({"action":"create_group","name":"Race","members":users[1..]}),
    )
    .await;
    assert_eq!(created["type"], "group", "{created}");
    let g = created["conversation"].as_str().unwrap().to_owned();

    // Every user on a gateway of its own (round robin), all sending at once.
    let (acks, _) = tokio::sync::watch::channel(0);
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let ws = connect(&gateways[i % gateways.len()].1, user, "laptop").await;
        let frames = (0..EACH)
            .map(|k| send_frame(("conversation", &g), &format!("{user}-{k}")))
            .collect();
        tasks.push(tokio::spawn(burst(ws, frames, acks.clone())));
    }
    let mut acked = BTreeMap::new();
    for t in tasks {
        for (cmid, reply) in t.await.unwrap() {
            assert_eq!(reply["type"], "sent", "{reply}");
            acked.insert(reply["seq"].as_u64().unwrap(), cmid);
        }
    }
    let n = (USERS * EACH) as u64 + 1; // and seq 1, the group's creation
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (2..=n).collect::<Vec<_>>(),
        "distinct, gapless seqs"
    );
    let conv = ConversationId::new(g.as_str()).unwrap();
    let log = gapless_log(&store, &conv).await;
    assert_eq!(log.len() as u64, n);
    for (seq, cmid) in &acked {
        assert_eq!(&log[seq].1, cmid, "seq {seq} holds what its ack said");
    }

    // The processes did contend: DynamoDB refused some of their head writes, and the losers
    // tried again (every message took exactly one applied transaction).
    let stats = proxy.stats();
    println!("{n} messages over 3 processes: {stats:?}");
    assert!(
        stats.cancelled_transactions > 0,
        "no transaction lost a race: the processes never contended ({stats:?})"
    );
    assert_eq!(stats.committed_transactions, n, "{stats:?}");
}

/// What happened to the sends of one burst when its gateway was killed.
#[derive(Debug, Default)]
struct KillRound {
    in_flight: usize,
    acked: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_sigkilled_mid_burst_loses_no_acknowledged_message_and_leaves_no_hole() {
    let (prefix, store) = fresh_tables().await;
    let endpoint = messenger_aws::testing::emulator_endpoint();
    const KILLS: usize = 2;
    const BURST: usize = 30;
    // Every send ever tried, by client_msg_id: its target, and the seq it was acked with.
    let mut tried: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut rounds = Vec::new();
    let mut landed_anyway = 0;
    for round in 0..=KILLS {
        let (child, url) = gateway(&endpoint, &prefix).await;
        let mut child = Some(child);
        // Retries first (as a reconnecting client does), then a new burst: messages to bob on
        // the phone; first messages to new contacts (each creates a 1:1: two memberships, then
        // the append) on the laptop.
        let unacked: Vec<&String> = tried.keys().filter(|c| !acked.contains_key(*c)).collect();
        let mut phone = Vec::new();
        let mut laptop = Vec::new();
        for cmid in unacked {
            let (key, target) = &tried[cmid];
            let frame = send_frame((key, target), cmid);
            if *key == "to" && target == "bob" {
                phone.push(frame);
            } else {
                laptop.push(frame);
            }
        }
        let retried: BTreeSet<String> = phone
            .iter()
            .chain(&laptop)
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        if round < KILLS {
            for k in 0..BURST {
                let cmid = format!("r{round}-bob-{k}");
                tried.insert(cmid.clone(), ("to", "bob".into()));
                phone.push(send_frame(("to", "bob"), &cmid));
                let (cmid, contact) = (format!("r{round}-new-{k}"), format!("contact-{round}-{k}"));
                laptop.push(send_frame(("to", &contact), &cmid));
                tried.insert(cmid, ("to", contact));
            }
        }
        let expected = phone.len() + laptop.len();
        // Bob is online: the fan-out to him is part of what the kill cuts.
        let bob = connect(&url, "bob", "phone").await;
        let (acks, mut progress) = tokio::sync::watch::channel(0);
        let tasks = [
            tokio::spawn(burst(
                connect(&url, "alice", "phone").await,
                phone,
                acks.clone(),
            )),
            tokio::spawn(burst(
                connect(&url, "alice", "laptop").await,
                laptop,
                acks.clone(),
            )),
        ];
        drop(acks);
        if round < KILLS {
            // A quarter of the burst is acknowledged: the rest is somewhere in the process.
            progress
                .wait_for(|n| *n >= expected / 4)
                .await
                .expect("a quarter of the burst is acknowledged");
            kill(child.take().unwrap()).await;
        }
        let mut this = KillRound::default();
        for t in tasks {
            let replies = t.await.unwrap();
            for (cmid, reply) in replies {
                assert_eq!(reply["type"], "sent", "{reply}");
                let seq = reply["seq"].as_u64().unwrap();
                if let Some(before) = acked.insert(cmid.clone(), seq) {
                    panic!("{cmid} acked twice: {before} and {seq}");
                }
                if retried.contains(&cmid) && reply["duplicate"] == true {
                    // Stored by the killed process, which died before it could answer.
                    landed_anyway += 1;
                }
                this.acked += 1;
            }
        }
        this.in_flight = expected - this.acked;
        drop(bob);
        if round < KILLS {
            assert!(this.in_flight > 0, "round {round}: the kill cut no send");
        } else {
            assert_eq!(this.in_flight, 0, "without a kill every send is answered");
        }
        rounds.push(this);
    }
    println!(
        "{KILLS} kills: {rounds:?}; {landed_anyway} sends stored by a killed process before it answered"
    );
    assert_eq!(
        acked.len(),
        tried.len(),
        "every send was acknowledged in the end"
    );
    assert!(
        landed_anyway > 0,
        "no kill fell between a write and its answer: the retries found nothing stored"
    );

    // Every log is exactly 1..=head and holds every acknowledged message once, at its seq.
    let dm = ConversationId::new("dm:alice:bob").unwrap();
    let log = gapless_log(&store, &dm).await;
    let to_bob: BTreeMap<u64, &String> = tried
        .iter()
        .filter(|(_, (_, t))| t == "bob")
        .map(|(cmid, _)| (acked[cmid], cmid))
        .collect();
    assert_eq!(log.len(), to_bob.len(), "one message per send to bob");
    for (seq, cmid) in &to_bob {
        assert_eq!(&log[seq], &("alice".to_owned(), (*cmid).clone()));
    }
    let alice = UserId::new("alice").unwrap();
    let alices: BTreeSet<String> = store
        .of_user(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.conversation.to_string())
        .collect();
    for (cmid, (_, contact)) in tried.iter().filter(|(_, (_, t))| t != "bob") {
        let contact = UserId::new(contact.as_str()).unwrap();
        let conv = ConversationId::direct(&alice, &contact);
        let log = gapless_log(&store, &conv).await;
        assert_eq!(log.len(), 1, "{conv}");
        assert_eq!((acked[cmid], &log[&1].1), (1, cmid));
        assert!(
            alices.contains(conv.as_str()),
            "alice is a member of {conv}"
        );
        assert!(
            store.membership(&conv, &contact).await.unwrap().is_some(),
            "{contact} is a member of {conv}"
        );
    }

    // Bob's devices catch up by sync: every message to him, in order, once.
    let (child, url) = gateway(&endpoint, &prefix).await;
    let mut tablet = connect(&url, "bob", "tablet").await;
    let mut synced = Vec::new();
    let mut since = json!({});
    loop {
        let page = request(&mut tablet, json!({"action":"sync","since":since})).await;
        for m in page["messages"].as_array().unwrap() {
            synced.push((
                m["seq"].as_u64().unwrap(),
                m["client_msg_id"].as_str().unwrap().to_owned(),
            ));
        }
        for (c, s) in page["since"].as_object().unwrap() {
            since[c] = s.clone();
        }
        if page["more"] == false {
            break;
        }
    }
    let expected: Vec<(u64, String)> = to_bob.iter().map(|(s, c)| (*s, (*c).clone())).collect();
    assert_eq!(synced, expected);
    drop(child);
}
