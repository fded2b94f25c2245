//! The IaC template deployed on MiniStack, driven through its API Gateway WebSocket with real
//! clients: the authorizer, routes, integrations, IAM wiring, environment and tables of
//! `infra/template.yaml`, with the real Lambda binaries behind them.
//!
//! Every test shares one stack (deployed on first use by `infra/deploy --target local`) and
//! uses its own users, so the tests run in parallel without seeing each other's messages.
//! `tests/run.sh` runs this target after building the binaries:
//! `cargo test -p messenger-e2e --test deployed` with `MESSENGER_DYNAMODB_ENDPOINT` set.

use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger::ports::Connections;
use messenger_e2e::deployed::{DeployedStack, mint, refused_status};
use messenger_e2e::{Client, eventually};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Every route of the template through the deployed stack, one scenario each.
#[path = "deployed/every_route.rs"]
mod every_route;

async fn message(client: &mut Client, seq: u64) -> Value {
    client
        .recv_where(|v| v["type"] == "message" && v["seq"] == seq)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_needs_a_valid_token() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let url = stack.url();
    // No identity source at all: API Gateway refuses before running the authorizer.
    assert_eq!(refused_status(url).await, 401);
    // The authorizer runs and denies: garbage, and a well-formed token signed with another
    // secret (messenger-local's development secret, which this stack was not given).
    assert_eq!(refused_status(&format!("{url}?token=not-a-jwt")).await, 403);
    let foreign = mint(messenger::auth::DEV_SECRET, "mallory", "phone");
    assert_eq!(refused_status(&format!("{url}?token={foreign}")).await, 403);

    // A valid token connects, and the authorizer's context names the caller: replies work.
    let mut ok = stack.connect("trudy", "phone").await;
    let reply = ok
        .request(json!({"action":"presence","users":["trudy"]}))
        .await;
    assert_eq!(reply["type"], "presence", "{reply}");
    assert_eq!(reply["users"][0]["user"], "trudy");
    assert_eq!(reply["users"][0]["online"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_reaches_both_devices_and_the_ack_comes_back_as_a_receipt() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let dm = "dm:alice:bob";
    let mut alice = stack.connect("alice", "phone").await;
    let mut bob_phone = stack.connect("bob", "phone").await;
    let mut bob_laptop = stack.connect("bob", "laptop").await;

    let sent = alice.send_to("bob", "c-1", "hi bob").await;
    assert_eq!(
        (&sent["type"], &sent["conversation"], &sent["seq"]),
        (&json!("sent"), &json!(dm), &json!(1)),
        "{sent}"
    );
    for device in [&mut bob_phone, &mut bob_laptop] {
        let m = message(device, 1).await;
        assert_eq!(
            (&m["from"], &m["body"], &m["client_msg_id"]),
            (&json!("alice"), &json!("hi bob"), &json!("c-1"))
        );
        assert_eq!(m["sent_at"], sent["sent_at"]);
    }

    // A first message is a message request (fn-groups answers `accept`); once bob takes it,
    // alice gets his receipts.
    let r = bob_phone
        .request(json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    assert_eq!(
        bob_laptop.recv_type("request_state").await["state"],
        "accepted"
    );

    let acked = bob_phone
        .request(json!({"action":"ack","conversation":dm,"seq":1,"kind":"delivered"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    let receipt = alice.recv_type("receipt").await;
    assert_eq!(
        receipt,
        json!({"type":"receipt","conversation":dm,"seq":1,"kind":"delivered","by":"bob"})
    );

    // $default answers an unknown action with an error frame echoing the request id.
    let unknown = alice.request(json!({"action":"dance"})).await;
    assert_eq!(
        (&unknown["type"], &unknown["code"]),
        (&json!("error"), &json!("unknown_action")),
        "{unknown}"
    );
    assert!(
        alice.backlog().iter().all(|v| v["type"] != "message"),
        "the sender's own connection gets no echo"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_recipient_gets_what_it_missed_by_sync_after_reconnecting() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let dm = "dm:carol:dave";
    let mut carol = stack.connect("carol", "phone").await;
    let mut dave = stack.connect("dave", "phone").await;
    carol.send_to("dave", "c-1", "one").await;
    message(&mut dave, 1).await;
    dave.close().await;

    // While dave is away (his $disconnect may still be running: a post to his closed
    // connection then gets 410, which counts him offline too), two more messages.
    for (i, body) in [(2, "two"), (3, "three")] {
        let sent = carol.send_to("dave", &format!("c-{i}"), body).await;
        assert_eq!(sent["seq"], i, "{sent}");
    }

    let mut dave = stack.connect("dave", "phone").await;
    let page = dave
        .request(json!({"action":"sync","since":{ dm: 1 }}))
        .await;
    assert_eq!(page["type"], "sync", "{page}");
    let got: Vec<(u64, &str)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["body"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(2, "two"), (3, "three")], "{page}");
    assert_eq!(page["more"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_connection_answering_410_is_deleted_by_the_send() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let store = stack.store().await;
    let erin = UserId::new("erin").unwrap();
    // A record whose socket does not exist (its $disconnect never ran): API Gateway answers
    // PostToConnection with 410 Gone. It sits in the deployed table like a real one.
    let now = chrono::Utc::now();
    let stale = Connection {
        id: ConnectionId::new("StaleConnId00=").unwrap(),
        user: erin.clone(),
        device: DeviceId::new("old-phone").unwrap(),
        connected_at: now - chrono::Duration::hours(1),
        expires_at: now + chrono::Duration::hours(2),
    };
    store.put(&stale, 0).await.unwrap();
    let before = store
        .of_users(std::slice::from_ref(&erin), now)
        .await
        .unwrap();
    assert_eq!(before.len(), 1, "the stale record is in place: {before:?}");

    let mut frank = stack.connect("frank", "phone").await;
    let sent = frank.send_to("erin", "c-1", "are you there?").await;
    assert_eq!(sent["type"], "sent", "{sent}");

    // The send's fan-out posts to the stale id, gets 410 and deletes exactly that record.
    eventually("the stale connection record is deleted", async || {
        store
            .of_users(std::slice::from_ref(&erin), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    // And the message waits in the log for erin's next sync.
    let mut erin_now = stack.connect("erin", "phone").await;
    let page = erin_now.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(page["messages"][0]["body"], "are you there?", "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_device_is_pushed_from_the_stream_and_the_topic_gets_the_event() {
    use messenger::ports::PushDevices;
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let sdk = messenger_aws::sdk::for_endpoint(&stack.endpoint).await;
    // An SQS subscriber of the stack's topic, as an analytics consumer would be.
    let queue =
        messenger_aws::testing::subscribed_queue(&sdk, stack.output("MessagesTopicArn")).await;

    let mut grace = stack.connect("grace", "phone").await;
    let r = grace
        .request(json!({"action":"register_push","platform":"fcm","token":"grace-fcm-token"}))
        .await;
    assert_eq!(r["type"], "push_registered", "{r}");
    // Grace wrote to heidi first: heidi's answer is no message request to her, so it pushes.
    assert_eq!(
        grace.send_to("heidi", "g-1", "free tonight?").await["seq"],
        1
    );
    grace.close().await;
    // fn-notify counts as online whoever has a connection record: wait for grace's
    // $disconnect (on the emulator it runs after the socket closes, not before).
    let store = stack.store().await;
    let grace_id = UserId::new("grace").unwrap();
    eventually(
        "grace's $disconnect has removed her connection",
        async || {
            let now = chrono::Utc::now();
            Connections::of_users(&store, std::slice::from_ref(&grace_id), now)
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;

    let mut heidi = stack.connect("heidi", "phone").await;
    assert_eq!(heidi.send_to("grace", "c-1", "dinner?").await["seq"], 2);

    // fn-notify, fed by the messages stream, publishes the event after deciding the pushes.
    let mut event = Value::Null;
    eventually(
        "the message event reaches the topic's subscriber",
        async || {
            let events = messenger_aws::testing::received_events(&sdk, &queue).await;
            match events
                .into_iter()
                .find(|(m, _)| m["conversation"] == "dm:grace:heidi" && m["seq"] == 2)
            {
                Some((m, _)) => {
                    event = m;
                    true
                }
                None => false,
            }
        },
    )
    .await;
    assert_eq!(
        (event["seq"].as_u64(), event["from"].as_str()),
        (Some(2), Some("heidi"))
    );
    assert_eq!(event["offline"], json!(["grace"]));

    // fn-notify pushed grace's phone and SNS accepted it: the push's coalescing claim for seq 2
    // stands (a failed push releases it). MiniStack keeps nothing of platform publishes to read
    // back (docs/infra.md); what SNS receives is read back on moto in fn-notify's own test.
    let now = chrono::Utc::now();
    let claim = messenger::push::PushClaim {
        user: UserId::new("grace").unwrap(),
        device: DeviceId::new("phone").unwrap(),
        conversation: messenger::domain::ConversationId::new("dm:grace:heidi").unwrap(),
        seq: 2,
        at: now,
        not_before: now - chrono::Duration::seconds(60),
        acked: 0,
    };
    assert!(
        !store.claim(&claim).await.unwrap(),
        "grace's phone was pushed for seq 2"
    );

    // The stream's on-failure queue exists, and nothing was given up on.
    let failures = stack.output("NotifyFailureQueueUrl");
    assert_eq!(
        messenger_aws::testing::queue_depth(&sdk, failures).await,
        0,
        "{failures}"
    );
}

/// A report through the deployed stack (fn-groups, with IAM enforced) reaches a subscriber of
/// the moderation topic with the reported message as it was when reported, and is stored where
/// the operators read it; later edits change neither.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_reaches_the_moderation_topics_subscriber_with_the_message_as_it_was() {
    use messenger::ports::Reports;
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let sdk = messenger_aws::sdk::for_endpoint(&stack.endpoint).await;
    let queue =
        messenger_aws::testing::subscribed_queue(&sdk, stack.output("ModerationTopicArn")).await;
    let mut rhea = stack.connect("report-rhea", "phone").await;
    let mut sly = stack.connect("report-sly", "phone").await;
    let dm = "dm:report-rhea:report-sly";
    assert_eq!(
        sly.send_to("report-rhea", "s-1", "send me your password")
            .await["seq"],
        1
    );
    message(&mut rhea, 1).await;

    let r = rhea
        .request(
            json!({"action":"report","conversation":dm,"seq":1,"reason":"harassment",
                        "details":"phishing"}),
        )
        .await;
    assert_eq!(r["type"], "reported", "{r}");
    let id = r["report"].as_str().unwrap().to_owned();
    let edit = json!({"action":"edit","conversation":dm,"seq":1,"body":"never mind"});
    assert_eq!(sly.request(edit).await["type"], "edited");

    let mut published = Value::Null;
    eventually(
        "the report reaches the moderation topic's subscriber",
        async || {
            let events = messenger_aws::testing::received_events(&sdk, &queue).await;
            match events.into_iter().find(|(m, _)| m["id"] == id.as_str()) {
                Some((m, attributes)) => {
                    published = json!({"message": m, "attributes": attributes});
                    true
                }
                None => false,
            }
        },
    )
    .await;
    let m = &published["message"];
    assert_eq!(
        (
            &m["reporter"],
            &m["reason"],
            &m["details"],
            &m["message"]["body"],
            &m["message"]["from"]
        ),
        (
            &json!("report-rhea"),
            &json!("harassment"),
            &json!("phishing"),
            &json!("send me your password"),
            &json!("report-sly")
        ),
        "{published}"
    );
    let store = stack.store().await;
    let stored = store
        .report(&id.parse().unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        stored.message.body.as_deref(),
        Some("send me your password")
    );
}

// ------------------------------------------------------------------ conversation features

/// The reply to `frame`, which must be of type `ty`.
async fn expect(client: &mut Client, frame: Value, ty: &str) -> Value {
    let r = client.request(frame.clone()).await;
    assert_eq!(r["type"], ty, "{frame} → {r}");
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_edit_delete_react_and_reply_in_a_1to1_and_a_group_and_an_offline_device_converges()
{
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let dm = "dm:liam:mia";
    let mut liam = stack.connect("liam", "phone").await;
    let mut mia = stack.connect("mia", "phone").await;
    let mut tablet = stack.connect("mia", "tablet").await;
    liam.send_to("mia", "c-1", "hello").await;
    liam.send_to("mia", "c-2", "see you at 8").await;
    message(&mut tablet, 2).await;
    tablet.close().await;
    // Mia takes liam's message request (until then her typing would not reach him).
    let r = mia
        .request(json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");

    // fn-presence forwards typing; fn-send edits, reacts, replies and deletes.
    mia.send(json!({"action": "typing", "conversation": dm}))
        .await;
    assert_eq!(liam.recv_type("typing").await["user"], "mia");
    let edit = json!({"action": "edit", "conversation": dm, "seq": 1, "body": "hello!"});
    assert_eq!(expect(&mut liam, edit, "edited").await["entry"]["seq"], 3);
    assert_eq!(message(&mut mia, 3).await["target"]["body"], "hello!");
    let react = json!({"action": "react", "conversation": dm, "seq": 1, "emoji": "👍"});
    expect(&mut mia, react, "reacted").await;
    assert_eq!(
        message(&mut liam, 4).await["event"]["type"],
        "reaction_added"
    );
    let reply = json!({"action": "send", "conversation": dm, "client_msg_id": "m-1",
                       "body": "ok", "reply_to": 2});
    assert_eq!(expect(&mut mia, reply, "sent").await["seq"], 5);
    assert_eq!(message(&mut liam, 5).await["quote"]["text"], "see you at 8");
    let delete = json!({"action": "delete", "conversation": dm, "seq": 2});
    expect(&mut liam, delete, "deleted").await;
    assert_eq!(message(&mut mia, 6).await["target"]["deleted"], true);
    let theirs = json!({"action": "edit", "conversation": dm, "seq": 1, "body": "mine"});
    assert_eq!(expect(&mut mia, theirs, "error").await["code"], "forbidden");
    let text = json!({"action": "react", "conversation": dm, "seq": 1, "emoji": "yes"});
    assert_eq!(expect(&mut mia, text, "error").await["code"], "bad_request");

    // The tablet was away for all of it: its sync brings the entries with the messages as
    // they now are.
    let mut tablet = stack.connect("mia", "tablet").await;
    let page = expect(
        &mut tablet,
        json!({"action": "sync", "since": {dm: 2}}),
        "sync",
    )
    .await;
    let got = page["messages"].as_array().unwrap();
    assert_eq!(got.len(), 4, "{page}");
    assert_eq!(got[0]["target"]["body"], "hello!");
    assert_eq!(got[1]["target"]["reactions"][0]["users"], json!(["mia"]));
    assert_eq!(got[2]["quote"], json!({"from": "liam", "deleted": true}));
    assert!(got[3]["target"].get("body").is_none(), "{page}");

    // The deleted body is gone from the deployed table.
    let store = stack.store().await;
    let conv = messenger::domain::ConversationId::new(dm).unwrap();
    let item = store
        .stored_message(&conv, 2)
        .await
        .unwrap()
        .expect("the item");
    assert!(
        item.get("body").is_none() && item["deleted"] == true,
        "{item}"
    );

    // A group: a reply, reactions, typing, and the admin deleting a member's message.
    let group = json!({"action": "create_group", "name": "Crew", "members": ["mia", "nora"]});
    let g = expect(&mut liam, group, "group").await["conversation"].clone();
    let mut nora = stack.connect("nora", "phone").await;
    let send =
        json!({"action": "send", "conversation": g, "client_msg_id": "n-1", "body": "hi all"});
    expect(&mut nora, send, "sent").await;
    let reply = json!({"action": "send", "conversation": g, "client_msg_id": "m-2", "body": "hey",
                       "reply_to": 2});
    expect(&mut mia, reply, "sent").await;
    let quoted = liam
        .recv_where(|v| v["type"] == "message" && v["conversation"] == g && v["seq"] == 3)
        .await;
    assert_eq!(quoted["quote"], json!({"from": "nora", "text": "hi all"}));
    let react = json!({"action": "react", "conversation": g, "seq": 3, "emoji": "🎉"});
    expect(&mut nora, react, "reacted").await;
    nora.send(json!({"action": "typing", "conversation": g}))
        .await;
    assert_eq!(
        mia.recv_where(|v| v["type"] == "typing" && v["conversation"] == g)
            .await["user"],
        "nora"
    );
    let delete = json!({"action": "delete", "conversation": g, "seq": 2});
    let deleted = expect(&mut liam, delete, "deleted").await;
    assert_eq!(
        deleted["message"]["from"], "nora",
        "an admin deletes a member's message"
    );
    let gone = nora
        .recv_where(|v| v["type"] == "message" && v["conversation"] == g && v["seq"] == 5)
        .await;
    assert_eq!(gone["event"], json!({"type": "message_deleted", "seq": 2}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_muted_conversation_is_not_pushed_and_the_inbox_follows_activity_and_reads_elsewhere() {
    use messenger::ports::PushDevices;
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let sdk = messenger_aws::sdk::for_endpoint(&stack.endpoint).await;
    let queue =
        messenger_aws::testing::subscribed_queue(&sdk, stack.output("MessagesTopicArn")).await;
    let (from_pia, from_quinn) = ("dm:oscar:pia", "dm:oscar:quinn");
    let mut phone = stack.connect("oscar", "phone").await;
    let r = json!({"action": "register_push", "platform": "fcm", "token": "oscar-fcm-token"});
    expect(&mut phone, r, "push_registered").await;
    let mut pia = stack.connect("pia", "phone").await;
    let mut quinn = stack.connect("quinn", "phone").await;
    pia.send_to("oscar", "p-1", "lunch?").await;
    quinn.send_to("oscar", "q-1", "call me").await;
    // Both are message requests to oscar: he takes them.
    for dm in [from_pia, from_quinn] {
        let r = json!({"action": "accept", "conversation": dm});
        assert_eq!(
            expect(&mut phone, r, "request_state").await["state"],
            "accepted"
        );
    }
    // Oscar mutes pia (fn-groups) and goes offline.
    let muted = expect(
        &mut phone,
        json!({"action": "mute", "conversation": from_pia}),
        "muted",
    )
    .await;
    assert_eq!(muted["muted"], true);
    phone.close().await;
    let store = stack.store().await;
    let oscar = UserId::new("oscar").unwrap();
    eventually("oscar's $disconnect has run", async || {
        Connections::of_users(&store, std::slice::from_ref(&oscar), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;

    // Both write again; fn-notify decides the pushes, then publishes each event.
    assert_eq!(pia.send_to("oscar", "p-2", "still?").await["seq"], 2);
    assert_eq!(quinn.send_to("oscar", "q-2", "please").await["seq"], 2);
    let mut seen = std::collections::BTreeSet::new();
    eventually("both second messages reach the topic", async || {
        for (m, _) in messenger_aws::testing::received_events(&sdk, &queue).await {
            if m["seq"] == 2 {
                seen.insert(m["conversation"].as_str().unwrap_or_default().to_owned());
            }
        }
        seen.contains(from_pia) && seen.contains(from_quinn)
    })
    .await;
    let claim = |conv: &str| {
        let now = chrono::Utc::now();
        messenger::push::PushClaim {
            user: oscar.clone(),
            device: DeviceId::new("phone").unwrap(),
            conversation: messenger::domain::ConversationId::new(conv).unwrap(),
            seq: 2,
            at: now,
            not_before: now - chrono::Duration::seconds(60),
            acked: 0,
        }
    };
    assert!(
        !store.claim(&claim(from_quinn)).await.unwrap(),
        "quinn's message was pushed"
    );
    assert!(
        store.claim(&claim(from_pia)).await.unwrap(),
        "pia's (muted) was not"
    );

    // The inbox: quinn wrote last; unread counts; the mute shows.
    let mut laptop = stack.connect("oscar", "laptop").await;
    let rows = |inbox: &Value| -> Vec<(String, u64, bool)> {
        inbox["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let c = r["conversation"].as_str().unwrap().to_owned();
                (
                    c,
                    r["unread"].as_u64().unwrap(),
                    r["muted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let inbox = expect(
        &mut laptop,
        json!({"action": "conversations"}),
        "conversations",
    )
    .await;
    assert_eq!(
        rows(&inbox),
        [(from_quinn.into(), 2, false), (from_pia.into(), 2, true)]
    );
    assert_eq!(inbox["unread_total"], 4);
    // Read on the phone; the laptop's inbox shows it.
    let mut phone = stack.connect("oscar", "phone").await;
    let ack = json!({"action": "ack", "conversation": from_pia, "seq": 2, "kind": "read"});
    expect(&mut phone, ack, "acked").await;
    let inbox = expect(
        &mut laptop,
        json!({"action": "conversations"}),
        "conversations",
    )
    .await;
    assert_eq!(
        rows(&inbox),
        [(from_quinn.into(), 2, false), (from_pia.into(), 0, true)]
    );
    pia.send_to("oscar", "p-3", "?").await;
    let inbox = expect(
        &mut laptop,
        json!({"action": "conversations"}),
        "conversations",
    )
    .await;
    assert_eq!(rows(&inbox)[0], (from_pia.into(), 1, true));
    assert_eq!(inbox["unread_total"], 3);
}

// ------------------------------------------------------------------ Identity=cognito

/// A connection attempt's outcome: the handshake's HTTP refusal, or 101.
async fn status_of(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cognito_users_chat_signed_in_with_an_id_token_and_an_access_token() {
    let stack = DeployedStack::cognito();
    let [alice, bob] = stack.pool_users(["alice@example.com", "bob@example.com"]);
    let mut alice_phone = stack.connect_with(&alice.id_token, "phone", "alice").await;
    let mut bob_laptop = stack.connect_with(&bob.access_token, "laptop", "bob").await;

    // User ids are the pool's `sub`s.
    let sent = alice_phone.send_to(&bob.sub, "c-1", "hi bob").await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let m = message(&mut bob_laptop, 1).await;
    assert_eq!(
        (&m["from"], &m["body"]),
        (&json!(alice.sub), &json!("hi bob"))
    );
    let r = bob_laptop
        .request(json!({"action":"accept","conversation":sent["conversation"]}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let acked = bob_laptop
        .request(json!({"action":"ack","conversation":sent["conversation"],"seq":1,"kind":"read"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    let read = alice_phone
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
        .await;
    assert_eq!(read["by"], json!(bob.sub));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cognito_stack_refuses_every_bad_token_with_403() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let stack = DeployedStack::cognito();
    let [carol] = stack.pool_users(["carol@example.com"]);
    let url = |token: &str| format!("{}?token={token}&device=phone", stack.url());

    // Forged tokens start from Carol's genuine ID token and change one thing.
    let genuine: jsonwebtoken::TokenData<Value> =
        jsonwebtoken::dangerous::insecure_decode(&carol.id_token).expect("a JWT");
    let pool_key = stack.pool_signing_key("id");
    let resign = |claims: &Value| encode(&genuine.header, claims, &pool_key).unwrap();
    // The control: re-signed unchanged, it is accepted, so each refusal below is its change's.
    assert_eq!(status_of(&url(&resign(&genuine.claims))).await, 101);

    let now = chrono::Utc::now().timestamp();
    let with = |claim: &str, value: Value| {
        let mut c = genuine.claims.clone();
        c[claim] = value;
        c
    };
    let expired = resign(&with("exp", json!(now - 3600)));
    let wrong_audience = resign(&with("aud", json!("another-app-client")));
    let pool = stack.output("UserPoolId");
    let other_pool = format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}x");
    let wrong_issuer = resign(&with("iss", json!(other_pool)));
    let refresh_use = resign(&with("token_use", json!("refresh")));
    // Tampered: Carol's signature over someone else's claims.
    let parts: Vec<&str> = carol.id_token.split('.').collect();
    let claims = serde_json::to_vec(&with("sub", json!("mallory"))).unwrap();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims),
        parts[2]
    );
    // A key the pool does not publish, under a kid it does not publish.
    let unknown_kid =
        messenger::auth::testing::TestKey::rs256("not-the-pools-key").sign(&genuine.claims);
    // HS256 keyed with the pool's public key, under the pool key's kid.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = genuine.header.kid.clone();
    let public_pem = stack.pool_public_key_pem("id");
    let hs256 = encode(
        &hs_header,
        &genuine.claims,
        &EncodingKey::from_secret(public_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    // messenger-local's development token: not accepted by a Cognito stack.
    let dev = mint(messenger::auth::DEV_SECRET, &carol.sub, "phone");
    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("wrong issuer", wrong_issuer),
        ("a refresh token", refresh_use),
        ("tampered", tampered),
        ("unknown kid", unknown_kid),
        ("HS256 with the public key", hs256),
        ("a development token", dev),
    ] {
        assert_eq!(refused_status(&url(&token)).await, 403, "{what}");
    }
    assert_eq!(refused_status(stack.url()).await, 401, "no token");
    assert_eq!(
        refused_status(&format!(
            "{}?token={}&device=a%20b",
            stack.url(),
            carol.id_token
        ))
        .await,
        403,
        "a bad device name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_only_client_stays_connected_and_invokes_nothing() {
    let stack = DeployedStack::get();
    // Alone on the stack, so that no other test's frames run functions meanwhile.
    // ($disconnect of earlier tests' sockets and the stream-fed fn-notify may still run; a
    // heartbeat frame could never reach either.)
    let _alone = stack.exclusive().await;
    let frame_routes = [
        "authorizer",
        "connect",
        "default",
        "send",
        "ack",
        "sync",
        "presence",
        "groups",
        "devices",
    ];
    let mut ivan = stack.connect("ivan", "phone").await;
    let before = stack.invocations(&frame_routes);
    // The count sees invocations at all: ivan's own handshake ran these two.
    assert!(
        before["authorizer"] > 0 && before["connect"] > 0,
        "{before:?}"
    );
    for _ in 0..5 {
        ivan.send(json!({"action":"heartbeat"})).await;
    }
    // MiniStack handles a socket's frames one after another: once this request is answered,
    // the heartbeats before it have been handled.
    let reply = ivan
        .request(json!({"action":"presence","users":["ivan"]}))
        .await;
    assert_eq!(reply["users"][0]["online"], true, "{reply}");
    assert!(
        ivan.backlog().is_empty(),
        "nothing answers a heartbeat: {:?}",
        ivan.backlog()
    );
    let mut after = BTreeMap::new();
    eventually("fn-presence's invocation is logged", async || {
        after = stack.invocations(&frame_routes);
        after["presence"] > before["presence"]
    })
    .await;
    let mut expected = before.clone();
    *expected.get_mut("presence").unwrap() += 1;
    assert_eq!(
        after, expected,
        "the only invocation is the presence request's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_receipt_reaches_the_author_and_the_read_state_is_pulled() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let mut judy = stack.connect("judy", "phone").await;
    let mut kim = stack.connect("kim", "phone").await;
    let mut leo = stack.connect("leo", "phone").await;
    let group = judy
        .request(json!({"action":"create_group","name":"Crew","members":["kim","leo"]}))
        .await;
    let g = group["conversation"].as_str().expect("a group").to_owned();
    // Judy is no contact of theirs: each takes the group's request.
    for c in [&mut kim, &mut leo] {
        let r = c.request(json!({"action":"accept","conversation":g})).await;
        assert_eq!(r["state"], "accepted", "{r}");
    }
    let sent = kim
        .request(json!({"action":"send","conversation":g,"client_msg_id":"k-1","body":"hey"}))
        .await;
    let seq = sent["seq"].as_u64().expect("a seq");
    message(&mut leo, seq).await;

    // An ack without an id: no reply; the receipt goes to kim, the message's author.
    leo.send(json!({"action":"ack","conversation":g,"seq":seq,"kind":"read"}))
        .await;
    let r = kim
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
        .await;
    assert_eq!((&r["seq"], &r["by"]), (&json!(seq), &json!("leo")));
    let state = judy
        .request(json!({"action":"receipts","conversation":g}))
        .await;
    assert_eq!(state["type"], "receipts", "{state}");
    let leo_state = state["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "leo")
        .cloned();
    assert_eq!(
        leo_state,
        Some(json!({"user":"leo","delivered":seq,"read":seq}))
    );
    assert!(
        leo.backlog().iter().all(|v| v["type"] != "acked"),
        "{:?}",
        leo.backlog()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_burst_past_the_users_rate_is_limited_and_what_was_acknowledged_is_stored() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let mut oscar = stack.connect("burster", "phone").await;
    let mut pat = stack.connect("burst-target", "phone").await;
    // 25 sends at once against a rate of 10 at once, then one a second.
    let ids: Vec<String> = (0..25).map(|i| format!("o-{i}")).collect();
    for id in &ids {
        oscar
            .send(json!({"action":"send","id":id,"to":"burst-target","client_msg_id":id,"body":"burst"}))
            .await;
    }
    let mut stored = Vec::new();
    for id in &ids {
        let reply = oscar.recv_where(|v| v["id"] == id.as_str()).await;
        if reply["type"] == "sent" {
            stored.push(reply["seq"].as_u64().unwrap());
        } else {
            assert_eq!(reply["code"], "rate_limited", "{reply}");
            assert!(reply["retry_after_ms"].as_u64().unwrap() >= 1, "{reply}");
        }
    }
    assert!(
        (10..25).contains(&stored.len()),
        "{} of 25 stored with a burst of 10",
        stored.len()
    );
    stored.sort_unstable();
    let n = stored.len() as u64;
    assert_eq!(stored, (1..=n).collect::<Vec<_>>());
    let page = pat.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(
        page["messages"].as_array().unwrap().len() as u64,
        n,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_past_the_per_user_cap_closes_the_oldest_through_the_deployed_api() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let mut first = stack.connect("capped", "phone").await;
    let mut later = Vec::new();
    for device in ["laptop", "tablet"]
        .iter()
        .take(messenger_e2e::deployed::MAX_CONNECTIONS)
    {
        later.push(stack.connect("capped", device).await);
    }
    // The connect function told the oldest why, then closed it with DeleteConnection (its role
    // may do both).
    first.closed().await;
    let told = first
        .backlog()
        .iter()
        .any(|f| f["type"] == "closed" && f["reason"] == "too_many_connections");
    assert!(told, "{:?}", first.backlog());
    let mut rita = stack.connect("rita", "phone").await;
    let sent = rita.send_to("capped", "r-1", "still there?").await;
    for device in &mut later {
        message(device, sent["seq"].as_u64().unwrap()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn group_changes_and_their_reused_keys_through_the_deployed_stack() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let mut sam = stack.connect("sam", "phone").await;
    let mut tess = stack.connect("tess", "phone").await;
    let created = sam
        .request(json!({"action":"create_group","name":"Band","members":["tess","uma"],"client_msg_id":"s-g"}))
        .await;
    let g = created["conversation"]
        .as_str()
        .expect("a group")
        .to_owned();
    // Each change is one transaction over the roster, the memberships and the group counts.
    let renamed = tess
        .request(json!({"action":"rename_group","conversation":g,"name":"The band"}))
        .await;
    assert_eq!(renamed["name"], "The band", "{renamed}");
    let added = sam
        .request(
            json!({"action":"add_members","conversation":g,"users":["vic"],"client_msg_id":"s-a"}),
        )
        .await;
    assert_eq!(added["members"].as_array().unwrap().len(), 4, "{added}");
    // The same key for another change: a conflict; the group is unchanged.
    let reused = sam
        .request(json!({"action":"remove_members","conversation":g,"users":["uma"],"client_msg_id":"s-a"}))
        .await;
    assert_eq!(reused["code"], "conflict", "{reused}");
    let removed = sam
        .request(json!({"action":"remove_members","conversation":g,"users":["uma"]}))
        .await;
    assert_eq!(removed["members"].as_array().unwrap().len(), 3, "{removed}");
    // The creator leaves: tess, the longest-standing member, becomes admin with the same write.
    let left = sam
        .request(json!({"action":"leave_group","conversation":g}))
        .await;
    assert_eq!(left["type"], "left", "{left}");
    let event = tess
        .recv_where(|v| v["type"] == "message" && v["event"]["type"] == "member_left")
        .await;
    assert_eq!(event["event"]["promoted"], json!(["tess"]));
    // A retry of sam's create: the same request, but he left: nobody is added back.
    let retry = sam
        .request(json!({"action":"create_group","name":"Band","members":["tess","uma"],"client_msg_id":"s-g"}))
        .await;
    assert_eq!(retry["code"], "forbidden", "{retry}");
}

#[test]
fn the_development_secret_is_refused_off_an_emulator() {
    // The template's Rules: hs256 with messenger-local's public secret and no EmulatorEndpoint
    // (what a stack on AWS has) is refused before anything is created.
    let name = format!("rules-{}", std::process::id());
    let (status, output) = DeployedStack::try_deploy(&[
        "--stack-name",
        &name,
        "--jwt-secret",
        messenger::auth::DEV_SECRET,
        "--param",
        "EmulatorEndpoint=",
    ]);
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("public development secret"),
        "refused by the template's rule: {output}"
    );
}
