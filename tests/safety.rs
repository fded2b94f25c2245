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

/// What `conversations` lists in `folder` for `c`: the page.
async fn folder(c: &mut Client, folder: &str) -> Value {
    let page = c
        .request(json!({"action":"conversations","folder":folder}))
        .await;
    assert_eq!(page["type"], "conversations", "{page}");
    page
}

fn ids(page: &Value) -> Vec<&str> {
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["conversation"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_strangers_first_message_is_a_quiet_request_until_accepted() {
    const DM: &str = "dm:bob:mallory";
    let gw = TestGateway::start().await;
    // Bob's phone takes pushes while he is away.
    let mut phone = gw.connect("bob", "phone").await;
    phone.register_fcm("tok-bob", false).await;
    phone.close().await;

    // Mallory, whom bob never wrote to, writes: stored, published, never pushed.
    let mut mallory = gw.connect("mallory", "phone").await;
    let sent = mallory.send_to("bob", "m-1", "hi, want a deal?").await;
    assert_eq!((&sent["type"], &sent["seq"]), (&json!("sent"), &json!(1)));
    let recorded = gw.published(1).await;
    assert_eq!(recorded["events"][0]["message"]["offline"], json!(["bob"]));
    assert_eq!(
        recorded["pushes"].as_array().unwrap().len(),
        0,
        "{recorded}"
    );

    // Bob comes online: the message is delivered live, but it is in his requests, not his inbox.
    let mut bob = gw.connect("bob", "laptop").await;
    let sync = bob.request(json!({"action":"sync","since":{DM: 0}})).await;
    assert_eq!(sync["messages"][0]["body"], "hi, want a deal?", "{sync}");
    let inbox = folder(&mut bob, "inbox").await;
    assert_eq!(ids(&inbox), Vec::<&str>::new());
    assert_eq!(
        (&inbox["requests"], &inbox["unread_total"]),
        (&json!(1), &json!(0))
    );
    let requests = folder(&mut bob, "requests").await;
    assert_eq!(ids(&requests), [DM]);
    let row = &requests["conversations"][0];
    assert_eq!(
        (&row["request"], &row["unread"], &row["with"]),
        (&json!(true), &json!(1), &json!("mallory"))
    );
    // Mallory sees her own conversation, awaiting acceptance.
    let hers = folder(&mut mallory, "inbox").await;
    assert_eq!(ids(&hers), [DM]);
    assert_eq!(hers["conversations"][0]["awaiting"], true, "{hers}");

    // Nothing of bob's reaches mallory: not his presence (he is online)...
    let never = json!({"user":"bob","online":false,"last_seen":null});
    let p = mallory
        .request(json!({"action":"presence","users":["bob"]}))
        .await;
    assert_eq!(p["users"][0], never);
    // ...nor his read state: his ack moves his pointers (his own view), no receipt goes out,
    // and the pull shows nothing read.
    let acked = bob
        .request(json!({"action":"ack","conversation":DM,"seq":1,"kind":"read"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    let info = mallory
        .request(json!({"action":"receipts","conversation":DM}))
        .await;
    let of_bob: Vec<&Value> = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["user"] == "bob")
        .collect();
    assert_eq!(
        (&of_bob[0]["delivered"], &of_bob[0]["read"]),
        (&json!(0), &json!(0)),
        "{info}"
    );
    assert_eq!(
        (&info["delivered"], &info["read"]),
        (&json!(0), &json!(0)),
        "{info}"
    );
    // ...nor his typing.
    bob.send(json!({"action":"typing","conversation":DM})).await;

    // Bob accepts: his answer, and from then on a normal conversation.
    let r = bob
        .request(json!({"action":"accept","conversation":DM}))
        .await;
    assert_eq!(
        r,
        json!({"id": r["id"], "type":"request_state","conversation":DM,"state":"accepted"})
    );
    let inbox = folder(&mut bob, "inbox").await;
    assert_eq!(ids(&inbox), [DM]);
    assert_eq!(inbox["requests"], 0);
    assert!(
        inbox["conversations"][0].get("request").is_none(),
        "{inbox}"
    );
    let reply = bob.send_to("mallory", "b-1", "who is this?").await;
    assert_eq!(reply["seq"], 2);
    // Mallory's frames arrive in order: bob's reply, and nothing before it from his ack or
    // his typing while it was a request.
    let m = mallory
        .recv_where(|v| v["type"] == "message" && v["seq"] == 2)
        .await;
    assert_eq!(m["body"], "who is this?");
    // Mallory's frames before it: only the two receipts bob's accept sent (where his pointers
    // stood) — not the ones his ack made while it was a request, nor his typing.
    let before: Vec<(&Value, &Value)> = mallory
        .backlog()
        .iter()
        .filter(|v| v["type"] == "receipt" || v["type"] == "typing")
        .map(|v| (&v["kind"], &v["seq"]))
        .collect();
    assert_eq!(
        before,
        [
            (&json!("delivered"), &json!(1)),
            (&json!("read"), &json!(1))
        ],
        "{:?}",
        mallory.backlog()
    );
    let p = mallory
        .request(json!({"action":"presence","users":["bob"]}))
        .await;
    assert_eq!(p["users"][0]["online"], true, "{p}");
    let info = mallory
        .request(json!({"action":"receipts","conversation":DM}))
        .await;
    assert_eq!(
        info["read"], 2,
        "bob read his own reply and, before it, hers: {info}"
    );
    let hers = folder(&mut mallory, "inbox").await;
    assert!(hers["conversations"][0].get("awaiting").is_none(), "{hers}");

    // Offline again, bob is pushed for her next message.
    bob.close().await;
    mallory.send_to("bob", "m-2", "a friend of carol's").await;
    let recorded = gw.published(3).await;
    assert_eq!(
        messenger_e2e::pushed_data(&recorded, "bob", "seq"),
        ["3"],
        "{recorded}"
    );
}

#[tokio::test]
async fn a_declined_request_leaves_both_folders_and_refuses_its_sender_until_answered() {
    const DM: &str = "dm:carol:mallory";
    let gw = TestGateway::start().await;
    let mut carol = gw.connect("carol", "phone").await;
    let mut tablet = gw.connect("carol", "tablet").await;
    let mut mallory = gw.connect("mallory", "phone").await;
    assert_eq!(mallory.send_to("carol", "m-1", "hello?").await["seq"], 1);

    // Only a request can be declined; a stranger's conversation cannot be answered at all.
    let mut eve = gw.connect("eve", "phone").await;
    for action in ["accept", "decline"] {
        let e = eve
            .request(json!({"action":action,"conversation":DM}))
            .await;
        assert_eq!(error_code(&e), "forbidden", "{action}: {e}");
    }
    let e = mallory
        .request(json!({"action":"decline","conversation":DM}))
        .await;
    assert_eq!(
        error_code(&e),
        "bad_request",
        "the sender's side is no request: {e}"
    );
    let e = carol
        .request(json!({"action":"conversations","folder":"spam"}))
        .await;
    assert_eq!(error_code(&e), "bad_request", "{e}");
    let e = carol.request(json!({"action":"accept"})).await;
    assert_eq!(error_code(&e), "bad_request", "{e}");

    let r = carol
        .request(json!({"action":"decline","conversation":DM}))
        .await;
    assert_eq!(r["state"], "declined", "{r}");
    let elsewhere = tablet.recv_type("request_state").await;
    assert_eq!(
        (&elsewhere["conversation"], &elsewhere["state"]),
        (&json!(DM), &json!("declined"))
    );
    // Declining twice is answered the same.
    let again = carol
        .request(json!({"action":"decline","conversation":DM}))
        .await;
    assert_eq!(again["state"], "declined", "{again}");
    // In neither folder.
    for name in ["inbox", "requests"] {
        let page = folder(&mut carol, name).await;
        assert_eq!(ids(&page), Vec::<&str>::new(), "{name}");
        assert_eq!(page["requests"], 0);
    }

    // Mallory can write no more, with a block's words; nothing is stored or delivered.
    let e = mallory.send_to("carol", "m-2", "please?").await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    assert_eq!(e["message"], "you can't message this user");
    let e = mallory
        .request(json!({"action":"edit","conversation":DM,"seq":1,"body":"hi!"}))
        .await;
    assert_eq!(error_code(&e), "forbidden", "{e}");
    let messages = history(&mut carol, DM).await;
    assert_eq!(messages.len(), 1, "{messages:?}");

    // Carol writes to her after all: accepted, and mallory may answer.
    let sent = carol.send_to("mallory", "c-1", "what is it?").await;
    assert_eq!(sent["seq"], 2, "{sent}");
    mallory
        .recv_where(|v| v["type"] == "message" && v["seq"] == 2)
        .await;
    assert_eq!(
        mallory.send_to("carol", "m-3", "sorry, wrong carol").await["seq"],
        3
    );
    assert_eq!(ids(&folder(&mut carol, "inbox").await), [DM]);
    // Accepting what is no request changes nothing and says so.
    let r = carol
        .request(json!({"action":"accept","conversation":DM}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let e = carol
        .request(json!({"action":"decline","conversation":DM}))
        .await;
    assert_eq!(error_code(&e), "bad_request", "{e}");
}

#[tokio::test]
async fn a_group_from_a_stranger_is_a_request_and_one_from_a_contact_is_not() {
    let gw = TestGateway::start().await;
    // Alice wrote to bob before, and he took it: alice is bob's contact, not carol's.
    gw.contacts(&[("alice", "bob")]).await;
    for who in ["bob", "carol"] {
        let mut phone = gw.connect(who, "phone").await;
        phone.register_fcm(&format!("tok-{who}"), false).await;
        phone.close().await;
    }
    let mut alice = gw.connect("alice", "phone").await;
    let g = alice.create_group("Party", &["bob", "carol"]).await;
    alice.say(&g, "a-1", "saturday?").await;
    // The hello to bob, the group's creation and alice's message: only bob is pushed.
    let recorded = gw.published(3).await;
    assert_eq!(
        messenger_e2e::pushed_data(&recorded, "bob", "conversation"),
        [g.as_str()]
    );
    assert_eq!(
        messenger_e2e::pushed_data(&recorded, "carol", "conversation"),
        Vec::<String>::new()
    );

    let mut bob = gw.connect("bob", "laptop").await;
    let inbox = folder(&mut bob, "inbox").await;
    assert!(ids(&inbox).contains(&g.as_str()), "{inbox}");
    let mut carol = gw.connect("carol", "laptop").await;
    let requests = folder(&mut carol, "requests").await;
    assert_eq!(ids(&requests), [g.as_str()]);
    assert_eq!(requests["conversations"][0]["request"], true);
    assert_eq!(ids(&folder(&mut carol, "inbox").await), Vec::<&str>::new());
    // A group request is declined by leaving; `decline` says so.
    let e = carol
        .request(json!({"action":"decline","conversation":g}))
        .await;
    assert_eq!(error_code(&e), "bad_request", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("leave_group"),
        "{e}"
    );

    // Carol accepts: the group moves to her inbox and pushes her.
    let r = carol
        .request(json!({"action":"accept","conversation":g}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    assert_eq!(ids(&folder(&mut carol, "inbox").await), [g.as_str()]);
    carol.close().await;
    bob.close().await;
    alice.say(&g, "a-2", "7pm").await;
    let recorded = gw.published(4).await;
    assert_eq!(messenger_e2e::pushed_data(&recorded, "carol", "seq"), ["3"]);
}
