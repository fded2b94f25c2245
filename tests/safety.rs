//! End-to-end: blocking and reports, with real WebSocket clients through the embedded gateway (over the
//! in-memory store, and over DynamoDB when `MESSENGER_E2E_STORE=dynamodb`).

use messenger_e2e::{Client, TestGateway, error_code};
use serde_json::{Value, json};

async fn history(c: &mut Client, conv: &str) -> Vec<Value> {
    let h = c
        .request(json!({"action":"history","conversation":conv}))
        .await;
    assert_eq!(h["type"], "history", "{h}");
    h["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_blocked_users_messages_never_reach_the_blocker_its_devices_pushes_or_history() {
    let gw = TestGateway::start().await;
    // Alice wrote to carol before, and carol took her request: carol's messages push.
    gw.contacts(&[("alice", "carol")]).await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut laptop = gw.connect("alice", "laptop").await;
    let mut bob = gw.connect("bob", "phone").await;
    assert_eq!(
        bob.send_to("alice", "c-1", "hi alice").await["type"],
        "sent"
    );
    alice.recv_type("message").await;
    laptop.recv_type("message").await;

    // Alice blocks Bob: her other device learns it, Bob learns nothing.
    let r = alice.request(json!({"action":"block","user":"bob"})).await;
    assert_eq!(
        r,
        json!({"id": r["id"], "type":"block_state","user":"bob","blocked":true})
    );
    let elsewhere = laptop.recv_type("block_state").await;
    assert_eq!(
        (&elsewhere["user"], &elsewhere["blocked"]),
        (&json!("bob"), &json!(true))
    );
    // Blocking twice is answered the same.
    let again = alice.request(json!({"action":"block","user":"bob"})).await;
    assert_eq!(again["blocked"], true, "{again}");

    // Alice goes offline with a push device registered.
    alice.register_fcm("tok-alice", false).await;
    alice.close().await;
    laptop.close().await;

    // Bob's message: forbidden, nothing stored, delivered or pushed.
    let e = bob.send_to("alice", "c-2", "are you there?").await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    assert_eq!(e["message"], "you can't message this user");
    assert_eq!(e["client_msg_id"], "c-2");
    // Nor by the conversation's id, nor as an edit, a reaction or a deletion of old messages.
    let e = bob
        .request(json!({"action":"send","conversation":"dm:alice:bob","client_msg_id":"c-3","body":"??"}))
        .await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    for frame in [
        json!({"action":"edit","conversation":"dm:alice:bob","seq":1,"body":"hey"}),
        json!({"action":"react","conversation":"dm:alice:bob","seq":1,"emoji":"👍"}),
        json!({"action":"delete","conversation":"dm:alice:bob","seq":1}),
    ] {
        let e = bob.request(frame.clone()).await;
        assert_eq!(error_code(&e), "forbidden", "{frame}: {e}");
    }
    // Someone else's message does reach Alice's phone as a push: the only one.
    let mut carol = gw.connect("carol", "phone").await;
    assert_eq!(
        carol.send_to("alice", "k-1", "lunch?").await["type"],
        "sent"
    );
    let recorded = gw.published(3).await;
    let events = recorded["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        3,
        "alice's hello to carol, bob's first message and carol's: {recorded}"
    );
    let pushes: Vec<&Value> = recorded["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["user"] == "alice")
        .collect();
    assert_eq!(pushes.len(), 1, "{recorded}");
    assert!(
        pushes[0].to_string().contains("dm:alice:carol"),
        "{recorded}"
    );
    assert!(!recorded.to_string().contains("are you there"));

    // Alice's history holds only the message from before the block.
    let mut alice = gw.connect("alice", "phone").await;
    let messages = history(&mut alice, "dm:alice:bob").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["body"], "hi alice");
    // Alice cannot write to Bob either while she blocks him.
    let e = alice.send_to("bob", "a-1", "bye").await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    assert!(e["message"].as_str().unwrap().contains("unblock"), "{e}");

    // The list.
    let list = alice.request(json!({"action":"blocked"})).await;
    assert_eq!(list["type"], "blocked", "{list}");
    assert_eq!(list["more"], false);
    let users = list["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user"], "bob");

    // Unblocked: Bob's next message goes through; nothing refused comes back.
    let r = alice
        .request(json!({"action":"unblock","user":"bob"}))
        .await;
    assert_eq!(
        (&r["type"], &r["blocked"]),
        (&json!("block_state"), &json!(false))
    );
    assert_eq!(
        bob.send_to("alice", "c-4", "hello again").await["type"],
        "sent"
    );
    let m = alice.recv_type("message").await;
    assert_eq!((&m["body"], &m["seq"]), (&json!("hello again"), &json!(2)));
    let list = alice.request(json!({"action":"blocked"})).await;
    assert_eq!(list["users"], json!([]));

    // Bob was never told anything.
    assert!(
        !bob.backlog().iter().any(|f| f["type"] == "block_state"),
        "{:?}",
        bob.backlog()
    );
    let e = bob.request(json!({"action":"block","user":"bob"})).await;
    assert_eq!(error_code(&e), "bad_request", "{e}");
}

#[tokio::test]
async fn a_blocker_is_never_seen_by_the_blocked_cannot_be_added_to_groups_and_shared_groups_stay() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    assert_eq!(bob.send_to("alice", "c-1", "hi").await["type"], "sent");
    alice.recv_type("message").await;
    // Carol's group with both.
    let g = carol
        .request(json!({"action":"create_group","name":"Trip","members":["alice","bob"]}))
        .await;
    assert_eq!(g["type"], "group", "{g}");
    let group = g["conversation"].as_str().unwrap().to_owned();
    alice.recv_type("message").await;
    bob.recv_type("message").await;

    let seen = bob
        .request(json!({"action":"presence","users":["alice"]}))
        .await;
    assert_eq!(seen["users"][0]["online"], true, "before the block: {seen}");

    alice.request(json!({"action":"block","user":"bob"})).await;

    // Bob sees Alice as never seen; Alice still sees Bob.
    let seen = bob
        .request(json!({"action":"presence","users":["alice","carol"]}))
        .await;
    assert_eq!(
        seen["users"][0],
        json!({"user":"alice","online":false,"last_seen":null}),
        "{seen}"
    );
    assert_eq!(seen["users"][1]["online"], true, "{seen}");
    let seen = alice
        .request(json!({"action":"presence","users":["bob"]}))
        .await;
    assert_eq!(seen["users"][0]["online"], true, "{seen}");

    // Bob's typing in their 1:1 is dropped; the next frame Alice gets is Carol's message.
    bob.send(json!({"action":"typing","conversation":"dm:alice:bob"}))
        .await;
    carol.send_to("alice", "k-1", "marker").await;
    let next = alice
        .recv_where(|v| v["type"] == "typing" || v["type"] == "message")
        .await;
    assert_eq!(next["body"], "marker", "{next}");

    // Bob cannot put Alice in a group: nothing is created or changed.
    let e = bob
        .request(json!({"action":"create_group","name":"Mine","members":["alice","carol"],"client_msg_id":"g-1"}))
        .await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    let mine = bob
        .request(json!({"action":"create_group","name":"Mine","members":["carol"]}))
        .await;
    assert_eq!(mine["type"], "group", "{mine}");
    let e = bob
        .request(
            json!({"action":"add_members","conversation":mine["conversation"],"users":["alice"]}),
        )
        .await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    let inbox = alice.request(json!({"action":"conversations"})).await;
    let convs: Vec<&str> = inbox["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation"].as_str().unwrap())
        .collect();
    assert!(
        !convs.contains(&mine["conversation"].as_str().unwrap()),
        "{inbox}"
    );

    // In the group they share, nothing changes: Bob's message reaches Alice.
    let sent = bob
        .request(
            json!({"action":"send","conversation":group,"client_msg_id":"g-m1","body":"hi all"}),
        )
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let m = alice
        .recv_where(|v| v["type"] == "message" && v["body"] == "hi all")
        .await;
    assert_eq!(m["from"], "bob");
}

#[tokio::test]
async fn a_report_keeps_the_message_as_it_was_reaches_the_moderators_once_and_nobody_else() {
    let (gw, stores) =
        TestGateway::start_with_store(messenger_local::GatewayConfig::default()).await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut mallory = gw.connect("mallory", "phone").await;
    assert_eq!(
        mallory.send_to("bob", "m-1", "buy cheap watches").await["type"],
        "sent"
    );
    assert_eq!(
        mallory.send_to("bob", "m-2", "really cheap").await["type"],
        "sent"
    );
    bob.recv_type("message").await;

    let frame = json!({"action":"report","conversation":"dm:bob:mallory","seq":1,
                       "reason":"spam","details":"a stranger selling things"});
    let r = bob.request(frame.clone()).await;
    assert_eq!(
        (
            &r["type"],
            &r["conversation"],
            &r["seq"],
            r.get("duplicate")
        ),
        (
            &json!("reported"),
            &json!("dm:bob:mallory"),
            &json!(1),
            None
        ),
        "{r}"
    );
    let id = r["report"].as_str().unwrap().to_owned();

    // Mallory changes the message afterwards: the report keeps it as it was.
    let edited = mallory
        .request(json!({"action":"edit","conversation":"dm:bob:mallory","seq":1,"body":"hello"}))
        .await;
    assert_eq!(edited["type"], "edited", "{edited}");
    let stored = stores
        .reports
        .report(&id.parse().unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (
            stored.reporter.as_str(),
            stored.message.body.as_deref(),
            stored.message.from.as_str()
        ),
        ("bob", Some("buy cheap watches"), "mallory")
    );
    assert_eq!(stored.details.as_deref(), Some("a stranger selling things"));

    // The moderation topic got it once; reporting again is answered with the first.
    let mut published = Value::Null;
    messenger_e2e::eventually("the report is published", async || {
        published = gw.recorded_pushes(None).await;
        !published["reports"].as_array().unwrap().is_empty()
    })
    .await;
    let again = bob.request(frame).await;
    assert_eq!(
        (&again["report"], &again["duplicate"]),
        (&json!(id), &json!(true)),
        "{again}"
    );
    let reports = gw.recorded_pushes(None).await["reports"].clone();
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    let topic = &reports[0];
    assert_eq!(topic["message"]["id"], json!(id));
    assert_eq!(topic["message"]["message"]["body"], "buy cheap watches");
    assert_eq!(topic["attributes"]["reason"], "spam");

    // What cannot be reported, with its typed error; nothing stored for any of them.
    let mut carol = gw.connect("carol", "phone").await;
    let cases = [
        (
            "carol",
            json!({"conversation":"dm:bob:mallory","seq":2,"reason":"spam"}),
            "forbidden",
        ),
        (
            "bob",
            json!({"conversation":"dm:bob:mallory","seq":0,"reason":"spam"}),
            "bad_request",
        ),
        (
            "bob",
            json!({"conversation":"dm:bob:mallory","seq":9,"reason":"spam"}),
            "not_found",
        ),
        (
            "bob",
            json!({"conversation":"dm:bob:mallory","seq":2,"reason":"boring"}),
            "bad_request",
        ),
        (
            "bob",
            json!({"conversation":"dm:bob:mallory","seq":2,"reason":"other",
                          "details":"x".repeat(1025)}),
            "too_large",
        ),
        (
            "bob",
            json!({"conversation":"dm:bob:mallory","seq":3,"reason":"spam"}),
            "bad_request",
        ),
        (
            "mallory",
            json!({"conversation":"dm:bob:mallory","seq":2,"reason":"spam"}),
            "bad_request",
        ),
    ];
    for (who, mut frame, expected) in cases {
        frame["action"] = json!("report");
        let client = match who {
            "carol" => &mut carol,
            "bob" => &mut bob,
            _ => &mut mallory,
        };
        let e = client.request(frame.clone()).await;
        assert_eq!(error_code(&e), expected, "{frame}: {e}");
    }
    assert_eq!(
        gw.recorded_pushes(None).await["reports"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let today = chrono::Utc::now().date_naive();
    assert_eq!(stores.reports.reports_of_day(today).await.unwrap().len(), 1);
    // Mallory heard nothing of it.
    assert!(!mallory.backlog().iter().any(|f| f["type"] == "reported"));
}
