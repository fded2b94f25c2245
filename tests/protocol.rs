//! docs/protocol.md, section by section: the behaviours it promises that the scenario files do
//! not already show, through the embedded gateway with real clients (over the in-memory store
//! and over DynamoDB, as every e2e file).

use async_trait::async_trait;
use messenger::Stores;
use messenger::domain::{
    Amendment, ConversationId, Head, Message, NewMessage, RequestDigest, Seq, UserId,
};
use messenger::ports::{Amended, Append, Effects, MessageLog, StoreError};
use messenger_e2e::{Client, TestGateway, error_code, test_stores};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

fn user(u: &str) -> UserId {
    UserId::new(u).unwrap()
}

// ------------------------------------------------------------------ Connecting

#[tokio::test]
async fn without_a_device_claim_the_device_is_the_query_parameter_else_default() {
    let gw = TestGateway::start().await;
    let now = chrono::Utc::now();
    let token = messenger::auth::mint(
        &gw.config.jwt_secret,
        &user("alice"),
        None,
        now,
        now + chrono::Duration::hours(1),
    );
    for (query, device) in [("", "default"), ("&device=tablet", "tablet")] {
        let url = format!("{}?token={token}{query}", gw.url());
        let mut alice = Client::connect(&url, "alice").await.unwrap();
        let r = alice
            .request(
                json!({"action":"register_push","platform":"fcm","token":format!("t-{device}")}),
            )
            .await;
        assert_eq!(
            (r["type"].as_str(), r["device"].as_str()),
            (Some("push_registered"), Some(device)),
            "{query:?}: {r}"
        );
    }
}

// ------------------------------------------------------------------ Requests and replies

#[tokio::test]
async fn a_numeric_id_is_echoed_as_a_number_and_an_id_over_128_bytes_is_refused() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    for id in [json!(42), json!(-7), json!(2.5)] {
        alice
            .send(json!({"action":"presence","users":[],"id":id}))
            .await;
        let reply = alice.recv_type("presence").await;
        assert_eq!(reply["id"], id, "{reply}");
    }
    // 128 bytes is the most: in multi-byte characters too (64 × "é").
    let longest = "é".repeat(64);
    alice
        .send(json!({"action":"presence","users":[],"id":longest}))
        .await;
    assert_eq!(alice.recv_type("presence").await["id"], longest.as_str());
    for too_long in ["x".repeat(129), "é".repeat(65)] {
        alice
            .send(json!({"action":"presence","users":[],"id":too_long}))
            .await;
        let e = alice.recv_type("error").await;
        assert_eq!((error_code(&e), e.get("id")), ("bad_request", None), "{e}");
    }
    assert!(alice.backlog().is_empty(), "{:?}", alice.backlog());
}

// ------------------------------------------------------------------ send

#[tokio::test]
async fn a_user_can_write_to_themselves_and_their_other_devices_get_it() {
    let gw = TestGateway::start().await;
    let mut phone = gw.connect("alice", "phone").await;
    let mut laptop = gw.connect("alice", "laptop").await;
    let sent = phone.send_to("alice", "note-1", "remember the milk").await;
    assert_eq!(
        (&sent["type"], &sent["conversation"], &sent["seq"]),
        (&json!("sent"), &json!("dm:alice:alice"), &json!(1)),
        "{sent}"
    );
    let m = laptop.recv_type("message").await;
    assert_eq!(
        (&m["from"], &m["body"]),
        (&json!("alice"), &json!("remember the milk"))
    );
    let page = laptop.request(json!({"action":"sync"})).await;
    assert_eq!(seqs(&page), [1]);
    let inbox = laptop.request(json!({"action":"conversations"})).await;
    assert_eq!(inbox["conversations"][0]["with"], "alice", "{inbox}");
    assert!(
        phone.backlog().iter().all(|v| v["type"] != "message"),
        "no echo"
    );
}

#[tokio::test]
async fn the_body_limit_is_16_kib_counted_in_utf8_bytes() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    // 16 384 bytes, in one-byte and in two-byte characters: accepted and delivered whole.
    for (cmid, body) in [
        ("c-1", "x".repeat(16 * 1024)),
        ("c-2", "é".repeat(8 * 1024)),
    ] {
        let sent = alice.send_to("bob", cmid, &body).await;
        assert_eq!(sent["type"], "sent", "{cmid}: {}", sent["code"]);
        let m = bob
            .recv_where(|v| v["type"] == "message" && v["client_msg_id"] == cmid)
            .await;
        assert_eq!(m["body"], body.as_str());
    }
    // 8 193 characters are fewer than 16 384, but 16 386 bytes: too large, and nothing stored.
    let e = alice.send_to("bob", "c-3", &"é".repeat(8 * 1024 + 1)).await;
    assert_eq!(
        (error_code(&e), &e["client_msg_id"]),
        ("too_large", &json!("c-3"))
    );
    let page = bob.request(json!({"action":"sync"})).await;
    assert_eq!(seqs(&page), [1, 2]);
}

// ------------------------------------------------------------------ ack

#[tokio::test]
async fn read_past_delivered_sends_delivered_then_read_and_seq_0_is_a_bad_request() {
    let gw = TestGateway::start().await;
    let dm = "dm:alice:bob";
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut bob_tablet = gw.connect("bob", "tablet").await;
    for i in 1..=3 {
        alice.send_to("bob", &format!("c-{i}"), "hi").await;
    }
    // Bob takes alice's message request, so she gets his receipts.
    let r = bob
        .request(json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let e = bob
        .request(json!({"action":"ack","conversation":dm,"seq":0,"kind":"read"}))
        .await;
    assert_eq!(error_code(&e), "bad_request", "{e}");

    // bob reads up to 2 without having acked delivery: two receipts, delivered first.
    let acked = bob
        .request(json!({"action":"ack","conversation":dm,"seq":2,"kind":"read"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    for device in [&mut alice, &mut bob_tablet] {
        let first = device.recv_type("receipt").await;
        let second = device.recv_type("receipt").await;
        assert_eq!(
            [&first["kind"], &second["kind"]],
            [&json!("delivered"), &json!("read")],
            "{}",
            device.user
        );
        assert_eq!((&first["seq"], &second["seq"]), (&json!(2), &json!(2)));
    }
    // Delivered past read, then read up to it: one receipt each.
    bob.request(json!({"action":"ack","conversation":dm,"seq":3,"kind":"delivered"}))
        .await;
    bob.request(json!({"action":"ack","conversation":dm,"seq":3,"kind":"read"}))
        .await;
    let d = alice.recv_type("receipt").await;
    let r = alice.recv_type("receipt").await;
    assert_eq!(
        [(&d["kind"], &d["seq"]), (&r["kind"], &r["seq"])],
        [
            (&json!("delivered"), &json!(3)),
            (&json!("read"), &json!(3))
        ]
    );
    let inbox = bob.request(json!({"action":"conversations"})).await;
    let c = &inbox["conversations"][0];
    assert_eq!((&c["delivered"], &c["read"]), (&json!(3), &json!(3)));
    assert!(
        alice.backlog().iter().all(|v| v["type"] != "receipt"),
        "no other receipt: {:?}",
        alice.backlog()
    );
}

// ------------------------------------------------------------------ sync, history, inbox

#[tokio::test]
async fn sync_goes_conversation_by_conversation_oldest_first_in_pages() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let g = bob
        .request(json!({"action":"create_group","name":"G","members":["alice"]}))
        .await["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    // Interleaved in time across three conversations.
    for i in 1..=3 {
        carol.send_to("bob", &format!("c-{i}"), "from carol").await;
        alice.send_to("bob", &format!("a-{i}"), "from alice").await;
        alice
            .request(json!({"action":"send","conversation":g,"client_msg_id":format!("g-{i}"),"body":"to the group"}))
            .await;
    }
    // In id order: dm:alice:bob, dm:bob:carol, then the group (its seq 1 is its creation).
    let mut expected: Vec<(String, u64)> = Vec::new();
    for (conv, n) in [("dm:alice:bob", 3), ("dm:bob:carol", 3), (g.as_str(), 4)] {
        expected.extend((1..=n).map(|s| (conv.to_owned(), s)));
    }
    let mut tablet = gw.connect("bob", "tablet").await;
    let mut since: BTreeMap<String, Value> = BTreeMap::new();
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let page = tablet
            .request(json!({"action":"sync","since":since,"limit":4}))
            .await;
        pages += 1;
        let messages = page["messages"].as_array().unwrap();
        assert!(messages.len() <= 4, "{page}");
        for m in messages {
            got.push((
                m["conversation"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            ));
        }
        for (c, s) in page["since"].as_object().unwrap() {
            since.insert(c.clone(), s.clone());
        }
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(got, expected);
    assert_eq!(pages, 3, "10 messages in pages of 4");
}

/// The documented page sizes: `sync` 100 by default and at most; `history` 20 by default, at
/// most 100; `conversations` 100 by default and at most. (The log and the memberships are
/// seeded through the store: the pages are what is under test.)
#[tokio::test]
async fn page_sizes_default_and_cap_as_documented() {
    let (gw, stores) = TestGateway::start_with_store(GatewayConfig::default()).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let dm = ConversationId::direct(&alice, &bob);
    let now = chrono::Utc::now();
    // A 1:1 conversation's first message makes its members.
    let message = |conv: &ConversationId, from: &UserId, i: usize| NewMessage {
        conversation: conv.clone(),
        from: from.clone(),
        client_msg_id: messenger::domain::ClientMsgId::new(format!("c-{i}")).unwrap(),
        digest: RequestDigest::of("send", conv, &[&format!("m{i}")]),
        body: format!("m{i}"),
        event: None,
        sent_at: now,
        expires_at: None,
        reply_to: None,
        attachments: Vec::new(),
    };
    let members = |a: &UserId, b: &UserId| Effects {
        direct: vec![
            (a.clone(), messenger::domain::RequestState::Accepted),
            (b.clone(), messenger::domain::RequestState::Accepted),
        ],
        ..Default::default()
    };
    for i in 1..=105 {
        let effects = if i == 1 {
            members(&alice, &bob)
        } else {
            Effects::default()
        };
        let stored = stores
            .messages
            .append_with(message(&dm, &alice, i), &effects, None)
            .await
            .unwrap();
        assert!(matches!(stored, Append::Stored(_)), "{stored:?}");
    }
    // 101 conversations for carol.
    let joins = (0..101).map(|i| {
        let (carol, peer) = (user("carol"), user(&format!("p{i:03}")));
        let conv = ConversationId::direct(&carol, &peer);
        let stores = stores.clone();
        async move {
            let m = message(&conv, &peer, i);
            stores
                .messages
                .append_with(m, &members(&carol, &peer), None)
                .await
                .unwrap()
        }
    });
    futures_util::future::join_all(joins).await;

    let mut b = gw.connect("bob", "phone").await;
    let len = |v: &Value, key: &str| v[key].as_array().unwrap().len();
    for frame in [
        json!({"action":"sync"}),
        json!({"action":"sync","limit":500}),
    ] {
        let page = b.request(frame.clone()).await;
        assert_eq!(
            (len(&page, "messages"), &page["more"]),
            (100, &json!(true)),
            "{frame}"
        );
    }
    let rest = b
        .request(json!({"action":"sync","since":{dm.as_str(): 100}}))
        .await;
    assert_eq!(
        (seqs(&rest), &rest["more"]),
        ((101..=105).collect(), &json!(false))
    );

    let h = b
        .request(json!({"action":"history","conversation":dm}))
        .await;
    assert_eq!(seqs(&h), (86..=105).rev().collect::<Vec<_>>(), "20 newest");
    assert_eq!(h["more"], true);
    let h = b
        .request(json!({"action":"history","conversation":dm,"limit":500}))
        .await;
    assert_eq!((len(&h, "messages"), &h["more"]), (100, &json!(true)));
    assert_eq!(h["messages"][99]["seq"], 6);

    let mut c = gw.connect("carol", "phone").await;
    for frame in [
        json!({"action":"conversations"}),
        json!({"action":"conversations","limit":500}),
    ] {
        let page = c.request(frame.clone()).await;
        assert_eq!(
            (len(&page, "conversations"), &page["more"]),
            (100, &json!(true)),
            "{frame}"
        );
    }
    let last = c
        .request(json!({"action":"conversations","after":"dm:carol:p099"}))
        .await;
    assert_eq!(
        last["conversations"][0]["conversation"], "dm:carol:p100",
        "{last}"
    );
    assert_eq!(
        (len(&last, "conversations"), &last["more"]),
        (1, &json!(false))
    );
}

// ------------------------------------------------------------------ presence

#[tokio::test]
async fn presence_takes_at_most_100_users() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let users: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let p = alice
        .request(json!({"action":"presence","users":users[..100]}))
        .await;
    assert_eq!(p["users"].as_array().unwrap().len(), 100, "{}", p["code"]);
    let e = alice
        .request(json!({"action":"presence","users":users}))
        .await;
    assert_eq!(error_code(&e), "bad_request", "{e}");
}

// ------------------------------------------------------------------ Errors

/// A message log whose appends fail while `failing` is set, as a store outage would.
struct FlakyLog {
    inner: Arc<dyn MessageLog>,
    failing: AtomicBool,
}

#[async_trait]
impl MessageLog for FlakyLog {
    async fn append_with(
        &self,
        msg: NewMessage,
        effects: &Effects,
        seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the store is unavailable".into()));
        }
        self.inner.append_with(msg, effects, seen).await
    }
    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        self.inner.last_seqs(convs).await
    }
    async fn amend(&self, amendment: &Amendment) -> Result<Amended, StoreError> {
        self.inner.amend(amendment).await
    }
    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError> {
        self.inner.heads(convs).await
    }
    async fn by_seqs(
        &self,
        conv: &ConversationId,
        seqs: &[Seq],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.by_seqs(conv, seqs, now).await
    }
    async fn after(
        &self,
        conv: &ConversationId,
        after: Seq,
        limit: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.after(conv, after, limit, now).await
    }
    async fn before(
        &self,
        conv: &ConversationId,
        before: Seq,
        limit: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.before(conv, before, limit, now).await
    }
}

#[tokio::test]
async fn a_store_failure_is_internal_names_a_request_id_stores_nothing_and_the_retry_works() {
    let stores = test_stores().await;
    let log = Arc::new(FlakyLog {
        inner: stores.messages.clone(),
        failing: AtomicBool::new(true),
    });
    let stores = Stores {
        messages: log.clone(),
        ..stores
    };
    let gw = TestGateway::start_on(GatewayConfig::default(), stores).await;
    let mut alice = gw.connect("alice", "phone").await;
    let e = alice.send_to("bob", "c-1", "hello?").await;
    assert_eq!(
        (error_code(&e), &e["client_msg_id"]),
        ("internal", &json!("c-1")),
        "{e}"
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("internal error (request ") && message.ends_with("); please retry"),
        "no detail of the failure reaches the client: {message}"
    );
    assert!(!message.contains("unavailable"), "{message}");

    // The connection still works, nothing was stored, and the retry stores the message once.
    let page = alice.request(json!({"action":"sync"})).await;
    assert_eq!(page["messages"], json!([]));
    log.failing.store(false, Ordering::SeqCst);
    let sent = alice.send_to("bob", "c-1", "hello?").await;
    assert_eq!(
        (&sent["seq"], sent.get("duplicate")),
        (&json!(1), None),
        "{sent}"
    );
}
