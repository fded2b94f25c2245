//! Group chats end to end: real WebSocket clients through the embedded gateway.

use messenger_e2e::{Client, TestGateway, error_code, send_concurrently};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};

/// The whole log of `conv` as this device sees it through sync: (seq, from, body, event type).
async fn synced(client: &mut Client, conv: &str) -> Vec<(u64, String, String, String)> {
    let page = client.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(page["more"], false);
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["conversation"] == conv)
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["from"].as_str().unwrap().to_owned(),
                m["body"].as_str().unwrap().to_owned(),
                m["event"]["type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn members_on_and_offline_converge_on_the_same_messages_and_membership_events() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;

    let created = alice
        .request(json!({"action":"create_group","name":"Trip","members":["bob","carol","bob"]}))
        .await;
    let g = created["conversation"].as_str().unwrap().to_owned();
    assert!(g.starts_with("g:"));
    assert_eq!(created["name"], "Trip");
    assert_eq!(created["seq"], 1);
    assert_eq!(
        created["members"],
        json!([{"user":"alice","role":"admin"},{"user":"bob","role":"member"},{"user":"carol","role":"member"}])
    );
    for c in [&mut bob, &mut carol] {
        let m = c
            .recv_where(|v| v["type"] == "message" && v["seq"] == 1)
            .await;
        assert_eq!(m["event"]["type"], "group_created");
        assert_eq!(m["event"]["members"], json!(["alice", "bob", "carol"]));
    }

    assert_eq!(alice.say(&g, "a-1", "where to?").await["seq"], 2);
    assert_eq!(bob.say(&g, "b-1", "Lisbon").await["seq"], 3);
    let renamed = carol
        .request(json!({"action":"rename_group","conversation":g,"name":"Lisbon trip"}))
        .await;
    assert_eq!(
        (renamed["seq"].as_u64(), renamed["name"].as_str()),
        (Some(4), Some("Lisbon trip"))
    );
    let added = alice
        .request(json!({"action":"add_members","conversation":g,"users":["dave","bob"]}))
        .await;
    assert_eq!(added["seq"], 5);
    assert_eq!(added["members"].as_array().unwrap().len(), 4);

    // Live devices saw every message by push, in seq order per conversation.
    for c in [&mut bob, &mut carol] {
        let m = c
            .recv_where(|v| v["type"] == "message" && v["seq"] == 5)
            .await;
        assert_eq!(m["event"], json!({"type":"members_added","users":["dave"]}));
    }

    // Devices that were offline catch up through sync and see exactly the same log.
    let expected = synced(&mut alice, &g).await;
    assert_eq!(
        expected.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        expected[2],
        (3, "bob".into(), "Lisbon".into(), String::new())
    );
    assert_eq!(expected[3].3, "group_renamed");
    let mut alice_laptop = gw.connect("alice", "laptop").await;
    let mut bob_tablet = gw.connect("bob", "tablet").await;
    for c in [&mut alice_laptop, &mut bob_tablet, &mut carol] {
        assert_eq!(synced(c, &g).await, expected, "{}", c.user);
    }

    // The new member reads from the event that added them, never the earlier history.
    let mut dave = gw.connect("dave", "phone").await;
    assert_eq!(synced(&mut dave, &g).await, expected[4..].to_vec());
    let h = dave
        .request(json!({"action":"history","conversation":g}))
        .await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    assert_eq!(h["more"], false);
    assert_eq!(dave.say(&g, "d-1", "hi all").await["seq"], 6);
}

#[tokio::test]
async fn a_removed_member_gets_nothing_more_and_can_neither_read_nor_post() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let g = alice.create_group("Team", &["bob", "carol"]).await;

    let removed = alice
        .request(json!({"action":"remove_members","conversation":g,"users":["carol"]}))
        .await;
    assert_eq!(removed["members"].as_array().unwrap().len(), 2);
    let event = carol
        .recv_where(|v| v["type"] == "message" && v["seq"] == 2)
        .await;
    assert_eq!(
        event["event"],
        json!({"type":"members_removed","users":["carol"]})
    );

    bob.say(&g, "b-1", "carol is gone").await;
    alice
        .recv_where(|v| v["type"] == "message" && v["seq"] == 3)
        .await;
    assert_eq!(
        error_code(&carol.say(&g, "c-1", "still here?").await),
        "forbidden"
    );
    assert_eq!(
        error_code(
            &carol
                .request(json!({"action":"history","conversation":g}))
                .await
        ),
        "forbidden"
    );
    assert_eq!(
        error_code(
            &carol
                .request(json!({"action":"ack","conversation":g,"seq":3,"kind":"read"}))
                .await
        ),
        "forbidden"
    );
    let page = carol
        .request(json!({"action":"sync","since":{g.clone(): 0}}))
        .await;
    assert_eq!(page["messages"], json!([]));
    assert!(
        carol.backlog().iter().all(|v| v["seq"] != 3),
        "nothing sent after the removal reached carol: {:?}",
        carol.backlog()
    );
}

/// Concurrent connections of one gateway process (see chat.rs for where processes race).
#[tokio::test]
async fn five_members_sending_concurrently_get_gapless_seqs() {
    let gw = TestGateway::start().await;
    let names = ["m1", "m2", "m3", "m4", "m5"];
    let mut admin = gw.connect("m1", "phone").await;
    let g = admin.create_group("Load", &names[1..]).await;
    admin.close().await;
    let mut senders = Vec::new();
    for name in names {
        senders.push((
            gw.connect(name, "phone").await,
            json!({ "conversation": g }),
        ));
    }
    let all = send_concurrently(senders, 20).await;
    assert_eq!(
        all,
        (2..=101).collect::<Vec<u64>>(),
        "seq 1 is the created event"
    );
}

#[tokio::test]
async fn only_admins_manage_members_and_the_last_admin_leaving_promotes_the_next() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut mallory = gw.connect("mallory", "phone").await;
    let g = alice.create_group("Club", &["bob", "carol"]).await;

    // A member, a forged frame and an outsider are all refused.
    assert_eq!(
        error_code(
            &bob.request(json!({"action":"add_members","conversation":g,"users":["mallory"]}))
                .await
        ),
        "forbidden"
    );
    let forged = json!({"action":"remove_members","conversation":g,"users":["carol"],"from":"alice","role":"admin","userId":"alice"});
    assert_eq!(error_code(&bob.request(forged).await), "forbidden");
    assert_eq!(
        error_code(
            &mallory
                .request(json!({"action":"add_members","conversation":g,"users":["mallory"]}))
                .await
        ),
        "forbidden"
    );
    assert_eq!(error_code(&mallory.say(&g, "m-1", "hi").await), "forbidden");
    assert_eq!(
        error_code(
            &mallory
                .request(json!({"action":"leave_group","conversation":g}))
                .await
        ),
        "forbidden"
    );
    assert_eq!(
        error_code(
            &alice
                .request(json!({"action":"remove_members","conversation":g,"users":["alice"]}))
                .await
        ),
        "bad_request"
    );

    // A later joiner who sorts before every founder: the longest-standing member is a founder.
    let added = alice
        .request(json!({"action":"add_members","conversation":g,"users":["aaron"]}))
        .await;
    assert_eq!(added["seq"], 2, "{added}");
    let left = alice
        .request(json!({"action":"leave_group","conversation":g}))
        .await;
    assert_eq!(
        (left["type"].as_str(), left["seq"].as_u64()),
        (Some("left"), Some(3))
    );
    let event = bob
        .recv_where(|v| v["type"] == "message" && v["seq"] == 3)
        .await;
    assert_eq!(event["from"], "alice");
    assert_eq!(
        event["event"],
        json!({"type":"member_left","promoted":["bob"]})
    );
    let added = bob
        .request(json!({"action":"add_members","conversation":g,"users":["dave"]}))
        .await;
    assert_eq!(
        added["members"],
        json!([{"user":"aaron","role":"member"},{"user":"bob","role":"admin"},{"user":"carol","role":"member"},{"user":"dave","role":"member"}])
    );
    assert_eq!(
        error_code(&alice.say(&g, "a-9", "back?").await),
        "forbidden"
    );
}

#[tokio::test]
async fn the_group_size_limit_is_a_typed_error() {
    let mut config = GatewayConfig::default();
    config.limits.max_group_members = 3;
    let gw = TestGateway::start_with(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    let e = alice
        .request(json!({"action":"create_group","name":"Big","members":["b","c","d"]}))
        .await;
    assert_eq!(error_code(&e), "too_large");
    let g = alice.create_group("Small", &["b", "c"]).await;
    let e = alice
        .request(json!({"action":"add_members","conversation":g,"users":["d"]}))
        .await;
    assert_eq!(error_code(&e), "too_large");
    let e = alice
        .request(json!({"action":"create_group","name":"   "}))
        .await;
    assert_eq!(error_code(&e), "bad_request");
}

#[tokio::test]
async fn a_retried_create_lands_on_the_same_group_with_one_event() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let frame =
        json!({"action":"create_group","name":"Once","members":["bob"],"client_msg_id":"g-1"});
    let first = alice.request(frame.clone()).await;
    let retry = alice.request(frame).await;
    assert_eq!(
        (&first["conversation"], &first["seq"]),
        (&retry["conversation"], &retry["seq"])
    );
    let g = first["conversation"].as_str().unwrap();
    assert_eq!(synced(&mut alice, g).await.len(), 1);
}

#[tokio::test]
async fn the_inbox_lists_every_conversation_newest_first_with_latest_seq_and_my_pointers() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    alice.send_to("bob", "c-2", "there").await;
    let g = alice.create_group("Pals", &["bob"]).await;
    // Both are message requests to bob (alice is no contact of his): he takes them.
    for conv in ["dm:alice:bob", g.as_str()] {
        let r = bob
            .request(json!({"action":"accept","conversation":conv}))
            .await;
        assert_eq!(r["state"], "accepted", "{r}");
    }
    bob.request(json!({"action":"ack","conversation":"dm:alice:bob","seq":1,"kind":"read"}))
        .await;

    let inbox = bob.request(json!({"action":"conversations"})).await;
    assert_eq!(inbox["more"], false);
    let mut rows = inbox["conversations"].as_array().unwrap().clone();
    // The group was created last: it comes first. Its preview is the creation event.
    let last: Vec<Value> = rows
        .iter_mut()
        .map(|r| r.as_object_mut().unwrap().remove("last").unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            json!({"conversation":g,"kind":"group","name":"Pals","role":"member","last_seq":1,
                   "delivered":0,"read":0,"unread":0,"muted":false}),
            json!({"conversation":"dm:alice:bob","kind":"direct","with":"alice","role":"member",
                   "last_seq":2,"delivered":1,"read":1,"unread":1,"muted":false}),
        ]
    );
    assert_eq!(
        (&last[0]["event"], &last[0]["from"]),
        (&json!("group_created"), &json!("alice"))
    );
    assert_eq!(
        (&last[1]["seq"], &last[1]["text"]),
        (&json!(2), &json!("there"))
    );
    assert_eq!(inbox["unread_total"], 1);
    let first = bob
        .request(json!({"action":"conversations","limit":1}))
        .await;
    assert_eq!(
        (
            first["conversations"].as_array().unwrap().len(),
            &first["more"]
        ),
        (1, &json!(true))
    );
    let rest = bob
        .request(json!({"action":"conversations","cursor":first["cursor"]}))
        .await;
    assert_eq!(rest["conversations"][0]["conversation"], "dm:alice:bob");
    let after = bob
        .request(json!({"action":"conversations","after":g}))
        .await;
    assert_eq!(after["conversations"], rest["conversations"]);
}

#[tokio::test]
async fn group_mates_see_each_others_presence_until_removed() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let g = alice.create_group("Neighbours", &["carol"]).await;
    let p = carol
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(p["users"][0]["online"], true);
    alice
        .request(json!({"action":"remove_members","conversation":g,"users":["carol"]}))
        .await;
    let p = carol
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(
        p["users"][0],
        json!({"user":"alice","online":false,"last_seen":null})
    );
}

#[tokio::test]
async fn a_group_receipt_goes_to_the_author_and_everyone_pulls_the_read_state() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let g = alice.create_group("Pals", &["bob", "carol"]).await;
    // Carol takes the group's request (alice is no contact of hers); bob's message does it
    // for him.
    let r = carol
        .request(json!({"action":"accept","conversation":g}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let sent = bob.say(&g, "b-1", "hello").await;
    let seq = sent["seq"].as_u64().unwrap();
    for c in [&mut alice, &mut carol] {
        c.recv_where(|v| v["type"] == "message" && v["seq"] == seq)
            .await;
    }

    // carol has read the group's first entry (alice's creation event): alice, its author,
    // gets that receipt.
    let acked = carol
        .request(json!({"action":"ack","conversation":g,"seq":1,"kind":"read","id":"a1"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    alice
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read" && v["seq"] == 1)
        .await;
    // carol reads bob's message: bob (its author) gets the receipts, alice does not.
    carol
        .send(json!({"action":"ack","conversation":g,"seq":seq,"kind":"read"}))
        .await;
    for kind in ["delivered", "read"] {
        let r = bob
            .recv_where(|v| v["type"] == "receipt" && v["kind"] == kind)
            .await;
        assert_eq!((&r["seq"], &r["by"]), (&json!(seq), &json!("carol")));
    }
    let state = alice
        .request(json!({"action":"receipts","conversation":g}))
        .await;
    assert!(
        alice
            .backlog()
            .iter()
            .all(|v| v["type"] != "receipt" || v["seq"] != seq),
        "receipts of bob's message reached alice: {:?}",
        alice.backlog()
    );
    assert_eq!(state["type"], "receipts", "{state}");
    // bob has read through his own message by sending it; alice has acked nothing.
    assert_eq!(
        state["members"],
        json!([
            {"user":"alice","delivered":0,"read":0},
            {"user":"bob","delivered":seq,"read":seq},
            {"user":"carol","delivered":seq,"read":seq},
        ])
    );
    // What everyone but alice has reached: bob's message, read by all.
    assert_eq!(
        (&state["delivered"], &state["read"]),
        (&json!(seq), &json!(seq))
    );

    // Outsiders cannot pull it.
    let mut mallory = gw.connect("mallory", "phone").await;
    let refused = mallory
        .request(json!({"action":"receipts","conversation":g}))
        .await;
    assert_eq!(error_code(&refused), "forbidden");
}

#[tokio::test]
async fn retried_membership_changes_store_no_second_event() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let g = alice.create_group("Retries", &["bob", "carol"]).await;
    let changes = [
        json!({"action":"add_members","conversation":g,"users":["dave"],"client_msg_id":"ch-1"}),
        json!({"action":"rename_group","conversation":g,"name":"Again","client_msg_id":"ch-2"}),
        json!({"action":"remove_members","conversation":g,"users":["carol"],"client_msg_id":"ch-3"}),
    ];
    for (seq, frame) in (2..).zip(changes) {
        let first = alice.request(frame.clone()).await;
        let retry = alice.request(frame.clone()).await;
        assert_eq!(first["seq"], seq, "{frame} → {first}");
        assert_eq!(
            (&retry["type"], &retry["seq"], &retry["members"]),
            (&first["type"], &first["seq"], &first["members"]),
            "{frame}"
        );
    }
    // Leaving: the retry is answered with the original `left` (alice is no member by then);
    // it stores nothing either.
    let leave = json!({"action":"leave_group","conversation":g,"client_msg_id":"ch-4"});
    assert_eq!(alice.request(leave.clone()).await["seq"], 5);
    let retry = alice.request(leave).await;
    assert_eq!(
        (&retry["type"], &retry["seq"]),
        (&json!("left"), &json!(5)),
        "{retry}"
    );

    let events: Vec<(u64, String)> = synced(&mut bob, &g)
        .await
        .into_iter()
        .map(|(seq, _, _, event)| (seq, event))
        .collect();
    let expected = [
        "group_created",
        "members_added",
        "group_renamed",
        "members_removed",
        "member_left",
    ];
    assert_eq!(
        events,
        (1..).zip(expected.map(String::from)).collect::<Vec<_>>()
    );
    // And every member's socket got each event once.
    for seq in 1..=5 {
        bob.recv_where(|v| v["type"] == "message" && v["seq"] == seq)
            .await;
    }
    assert!(
        bob.backlog().iter().all(|v| v["type"] != "message"),
        "a retry announced again: {:?}",
        bob.backlog()
    );
}

#[tokio::test]
async fn a_group_name_is_1_to_100_characters() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    // Characters, not bytes: 100 two-byte characters are a valid name.
    let longest = "é".repeat(100);
    let created = alice
        .request(json!({"action":"create_group","name":longest,"members":["bob"]}))
        .await;
    assert_eq!(created["name"], longest.as_str(), "{created}");
    let g = created["conversation"].as_str().unwrap().to_owned();
    let too_long = "x".repeat(101);
    let e = alice
        .request(json!({"action":"create_group","name":too_long}))
        .await;
    assert_eq!(error_code(&e), "bad_request");
    for name in [too_long.as_str(), ""] {
        let e = alice
            .request(json!({"action":"rename_group","conversation":g,"name":name}))
            .await;
        assert_eq!(error_code(&e), "bad_request", "{name:?}");
    }
    let inbox = alice.request(json!({"action":"conversations"})).await;
    assert_eq!(inbox["conversations"][0]["name"], longest.as_str());
    assert_eq!(synced(&mut alice, &g).await.len(), 1, "no event was stored");
}

#[tokio::test]
async fn a_removal_racing_a_burst_of_sends_lets_nothing_after_it_reach_the_removed() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let g = alice.create_group("Race", &["bob", "carol"]).await;
    // Half of bob's burst is in flight when alice removes carol; the other half follows the
    // removal's answer (so some messages certainly come after it).
    let ids: Vec<String> = (0..20).map(|i| format!("b-{i}")).collect();
    let frame = |id: &String| json!({"action":"send","conversation":g,"client_msg_id":id,"body":"x","id":id});
    for id in &ids[..10] {
        bob.send(frame(id)).await;
    }
    let removed = alice
        .request(json!({"action":"remove_members","conversation":g,"users":["carol"]}))
        .await;
    let r = removed["seq"].as_u64().expect("the removal's seq");
    for id in &ids[10..] {
        bob.send(frame(id)).await;
    }
    let mut sent = Vec::new();
    for id in &ids {
        let reply = bob.recv_where(|v| v["id"] == id.as_str()).await;
        assert_eq!(reply["type"], "sent", "{reply}");
        sent.push(reply["seq"].as_u64().unwrap());
    }
    let mut all = sent.clone();
    all.push(r);
    all.sort_unstable();
    assert_eq!(all, (2..=22).collect::<Vec<_>>(), "seqs 2..=22, once each");

    // Once alice has every message of the burst, and carol the removal event, carol has had
    // nothing from after it.
    for seq in &sent {
        alice
            .recv_where(|v| v["type"] == "message" && v["seq"] == *seq)
            .await;
    }
    carol
        .recv_where(|v| v["type"] == "message" && v["seq"] == r)
        .await;
    carol.request(json!({"action":"presence","users":[]})).await;
    let got: Vec<u64> = carol
        .backlog()
        .iter()
        .filter(|v| v["type"] == "message")
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert!(
        got.iter().all(|s| *s < r),
        "carol got {got:?}, removed at {r}"
    );
    let page = carol.request(json!({"action":"sync"})).await;
    assert_eq!(page["messages"], json!([]));
    println!(
        "removal at seq {r}; {} of bob's sends landed after it",
        sent.iter().filter(|s| **s > r).count()
    );
}
