//! End-to-end chat scenarios: real WebSocket clients through the embedded gateway.

use messenger_e2e::{Client, TestGateway, send_concurrently};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DM: &str = "dm:alice:bob";

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// Takes the message request `conv`.
async fn accept(client: &mut Client, conv: &str) {
    let r = client
        .request(json!({"action":"accept","conversation":conv}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
}

async fn message(client: &mut Client, seq: u64) -> Value {
    client
        .recv_where(|v| v["type"] == "message" && v["seq"] == seq)
        .await
}

#[tokio::test]
async fn a_message_reaches_every_device_and_the_ack_comes_back_as_a_receipt() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut alice_laptop = gw.connect("alice", "laptop").await;
    let mut bob_phone = gw.connect("bob", "phone").await;
    let mut bob_laptop = gw.connect("bob", "laptop").await;

    let sent = alice.send_to("bob", "c-1", "hi bob").await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["conversation"], DM);
    assert_eq!(sent["seq"], 1);
    assert_eq!(sent["client_msg_id"], "c-1");
    assert!(sent["sent_at"].as_str().unwrap().ends_with('Z'));

    for device in [&mut bob_phone, &mut bob_laptop, &mut alice_laptop] {
        let m = message(device, 1).await;
        assert_eq!(m["from"], "alice");
        assert_eq!(m["body"], "hi bob");
        assert_eq!(m["conversation"], DM);
        assert_eq!(m["client_msg_id"], "c-1");
        assert_eq!(m["sent_at"], sent["sent_at"]);
    }

    // A first message from someone bob never wrote to is a message request: he takes it, so
    // alice gets his receipts (docs/protocol.md, "Message requests").
    accept(&mut bob_phone, DM).await;
    assert_eq!(
        bob_laptop.recv_type("request_state").await["state"],
        "accepted"
    );

    let acked = bob_phone
        .request(json!({"action":"ack","conversation":DM,"seq":1,"kind":"delivered"}))
        .await;
    assert_eq!(acked["type"], "acked");
    for device in [&mut alice, &mut alice_laptop, &mut bob_laptop] {
        let r = device.recv_type("receipt").await;
        assert_eq!(
            r,
            json!({"type":"receipt","conversation":DM,"seq":1,"kind":"delivered","by":"bob"})
        );
    }

    bob_phone
        .request(json!({"action":"ack","conversation":DM,"seq":1,"kind":"read"}))
        .await;
    let r = alice
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
        .await;
    assert_eq!(r["by"], "bob");
    assert!(
        alice.backlog().iter().all(|v| v["type"] != "message"),
        "the sender's own device gets no echo"
    );
}

#[tokio::test]
async fn an_ack_without_an_id_gets_no_reply_but_its_receipt_goes_out() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    message(&mut bob, 1).await;
    accept(&mut bob, DM).await;

    bob.send(json!({"action":"ack","conversation":DM,"seq":1,"kind":"delivered"}))
        .await;
    let r = alice.recv_type("receipt").await;
    assert_eq!((&r["seq"], &r["by"]), (&json!(1), &json!("bob")));
    // The receipt went out, so the ack has run: a reply to it would be on bob's socket
    // ahead of the answer to his next request.
    let page = bob.request(json!({"action":"sync","since":{DM: 1}})).await;
    assert_eq!(page["type"], "sync");
    assert!(
        bob.backlog().iter().all(|v| v["type"] != "acked"),
        "{:?}",
        bob.backlog()
    );
    // A bad ack without an id is still answered, with an error.
    bob.send(json!({"action":"ack","conversation":DM,"seq":9,"kind":"delivered"}))
        .await;
    let e = bob.recv_type("error").await;
    assert_eq!(e["code"], "bad_request", "{e}");
}

#[tokio::test]
async fn a_resent_client_msg_id_returns_the_same_seq_and_delivers_the_same_message_again() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;

    let first = alice.send_to("bob", "c-1", "once").await;
    message(&mut bob, 1).await;
    let retry = alice.send_to("bob", "c-1", "once").await;
    assert_eq!(retry["type"], "sent");
    assert_eq!(retry["seq"], first["seq"]);
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["sent_at"], first["sent_at"]);

    // The retry delivered the same message (seq 1) again: its first attempt could have died
    // before reaching bob, and his client drops a seq it has. Nothing new was stored: the next
    // message is seq 2.
    let again = bob.recv_type("message").await;
    assert_eq!(
        (again["seq"].as_u64(), again["client_msg_id"].as_str()),
        (Some(1), Some("c-1"))
    );
    let second = alice.send_to("bob", "c-2", "twice").await;
    assert_eq!(second["seq"], 2);
    let next = bob.recv_type("message").await;
    assert_eq!(
        (next["seq"].as_u64(), next["client_msg_id"].as_str()),
        (Some(2), Some("c-2"))
    );
}

#[tokio::test]
async fn a_from_field_in_the_frame_cannot_change_the_sender() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let sent = alice
        .request(json!({"action":"send","to":"bob","client_msg_id":"c-1","body":"trust me","from":"carol"}))
        .await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(message(&mut bob, 1).await["from"], "alice");
}

#[tokio::test]
async fn an_offline_recipient_syncs_exactly_the_missed_messages_in_order() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    for i in 1..=2 {
        alice
            .send_to("bob", &format!("c-{i}"), &format!("m{i}"))
            .await;
        message(&mut bob, i).await;
    }
    bob.close().await;
    for i in 3..=7 {
        let sent = alice
            .send_to("bob", &format!("c-{i}"), &format!("m{i}"))
            .await;
        assert_eq!(sent["seq"], i);
    }

    let mut bob = gw.connect("bob", "phone").await;
    let page = bob.request(json!({"action":"sync","since":{DM: 2}})).await;
    assert_eq!(page["type"], "sync");
    assert_eq!(seqs(&page["messages"]), vec![3, 4, 5, 6, 7]);
    assert_eq!(page["messages"][0]["body"], "m3");
    assert_eq!(page["more"], false);
    assert_eq!(page["since"], json!({DM: 7}));

    // A brand-new device pages through everything with a small page size.
    let mut tablet = gw.connect("bob", "tablet").await;
    let mut cursors: BTreeMap<String, Value> = BTreeMap::new();
    let mut got = Vec::new();
    loop {
        let page = tablet
            .request(json!({"action":"sync","since":cursors,"limit":3}))
            .await;
        got.extend(seqs(&page["messages"]));
        for (conv, seq) in page["since"].as_object().unwrap() {
            cursors.insert(conv.clone(), seq.clone());
        }
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(got, (1..=7).collect::<Vec<_>>());
    let done = tablet
        .request(json!({"action":"sync","since":cursors}))
        .await;
    assert_eq!(
        (done["messages"].as_array().unwrap().len(), &done["more"]),
        (0, &json!(false))
    );
}

#[tokio::test]
async fn history_pages_backwards() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    for i in 1..=7 {
        alice
            .send_to("bob", &format!("c-{i}"), &format!("m{i}"))
            .await;
    }
    let page = alice
        .request(json!({"action":"history","conversation":DM,"limit":3}))
        .await;
    assert_eq!(
        (seqs(&page["messages"]), &page["more"]),
        (vec![7, 6, 5], &json!(true))
    );
    let page = alice
        .request(json!({"action":"history","conversation":DM,"before":5,"limit":3}))
        .await;
    assert_eq!(
        (seqs(&page["messages"]), &page["more"]),
        (vec![4, 3, 2], &json!(true))
    );
    let page = alice
        .request(json!({"action":"history","conversation":DM,"before":2,"limit":3}))
        .await;
    assert_eq!(
        (seqs(&page["messages"]), &page["more"]),
        (vec![1], &json!(false))
    );
}

#[tokio::test]
async fn presence_shows_online_then_offline_with_last_seen_and_hides_strangers() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    bob.send_to("alice", "c-1", "hey").await;
    // Until alice takes bob's message request he sees nothing of her.
    let p = bob
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(
        p["users"][0],
        json!({"user":"alice","online":false,"last_seen":null})
    );
    message(&mut alice, 1).await;
    accept(&mut alice, DM).await;

    let p = bob
        .request(json!({"action":"presence","users":["alice","bob"]}))
        .await;
    assert_eq!(p["users"][0]["user"], "alice");
    assert_eq!(p["users"][0]["online"], true);
    assert_eq!(p["users"][1]["online"], true, "the caller sees itself");

    let before_close = chrono::Utc::now();
    alice.close().await;
    let p = bob
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(p["users"][0]["online"], false);
    let last_seen: chrono::DateTime<chrono::Utc> = p["users"][0]["last_seen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last_seen >= before_close - chrono::Duration::milliseconds(1));

    // carol shares no conversation with alice: she learns nothing.
    let p = carol
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(
        p["users"][0],
        json!({"user":"alice","online":false,"last_seen":null})
    );
}

#[tokio::test]
async fn an_outsider_can_neither_read_nor_post_into_a_conversation() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    alice.send_to("bob", "c-1", "private").await;

    for frame in [
        json!({"action":"send","conversation":DM,"client_msg_id":"x-1","body":"let me in"}),
        json!({"action":"history","conversation":DM}),
        json!({"action":"ack","conversation":DM,"seq":1,"kind":"read"}),
    ] {
        let e = carol.request(frame.clone()).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{frame}"
        );
    }
    let e = carol.request(json!({"action":"send","conversation":"no spaces allowed","client_msg_id":"x-2","body":"?"})).await;
    assert_eq!(e["code"], "bad_request", "a malformed id is a bad request");
    let page = carol
        .request(json!({"action":"sync","since":{DM: 0}}))
        .await;
    assert_eq!(page["messages"], json!([]));
    let page = alice
        .request(json!({"action":"history","conversation":DM}))
        .await;
    assert_eq!(
        seqs(&page["messages"]),
        vec![1],
        "nothing was stored by the outsider"
    );
    assert!(
        carol.backlog().is_empty(),
        "the outsider received nothing: {:?}",
        carol.backlog()
    );
}

/// Concurrent connections of one gateway process, whose appends queue per conversation. Processes
/// racing for the head: localstack/messenger-local/tests/processes.rs.
#[tokio::test]
async fn four_connections_sending_concurrently_get_gapless_distinct_seqs() {
    // 100 sends of one user at once: past the default send limit, which is not what this
    // measures (tests/security.rs does).
    let mut config = messenger_local::GatewayConfig::default();
    config.limits.rates = messenger::ratelimit::RateLimits::OFF;
    let gw = TestGateway::start_with(config).await;
    let mut senders = Vec::new();
    for (user, device, peer) in [
        ("alice", "a", "bob"),
        ("alice", "b", "bob"),
        ("bob", "a", "alice"),
        ("bob", "b", "alice"),
    ] {
        senders.push((gw.connect(user, device).await, json!({ "to": peer })));
    }
    let all = send_concurrently(senders, 50).await;
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());
}
