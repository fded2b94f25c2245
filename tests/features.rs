//! End-to-end: typing, edit, delete, reactions, replies, the inbox and mute, with real WebSocket
//! clients through the embedded gateway (over the in-memory store, and over DynamoDB when
//! `MESSENGER_E2E_STORE=dynamodb`).

use messenger::domain::ConversationId;
use messenger_e2e::{Client, TestGateway, eventually, pushed_data};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DM: &str = "dm:alice:bob";

async fn entry(client: &mut Client, seq: u64) -> Value {
    client
        .recv_where(|v| v["type"] == "message" && v["seq"] == seq)
        .await
}

/// What a client holds after applying `entries` in order (chat messages by seq, each replaced
/// by the newer state an amendment entry carries): the convergence rule of docs/protocol.md.
fn apply(state: &mut BTreeMap<u64, Value>, entries: &[Value]) {
    let rev = |m: &Value| m["rev"].as_u64().unwrap_or(m["seq"].as_u64().unwrap());
    for e in entries {
        let m = match (&e["target"], &e["event"]) {
            (Value::Object(_), _) => e["target"].clone(),
            (_, Value::Null) => e.clone(),
            _ => continue,
        };
        let seq = m["seq"].as_u64().unwrap();
        if state.get(&seq).is_none_or(|old| rev(old) <= rev(&m)) {
            let mut m = m;
            // A target comes without its quote; the client keeps the one it has.
            if let Some(quote) = state.get(&seq).and_then(|old| old.get("quote")).cloned() {
                m["quote"] = quote;
            }
            state.insert(seq, m);
        }
    }
}

/// The chat messages of a history page, by seq.
fn chat_messages(page: &Value) -> BTreeMap<u64, Value> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("event").is_none())
        .map(|m| (m["seq"].as_u64().unwrap(), m.clone()))
        .collect()
}

#[tokio::test]
async fn two_users_edit_delete_react_reply_and_type_and_an_offline_device_converges_by_sync() {
    let (gw, stores, raw) = TestGateway::start_with_raw_store(GatewayConfig::default()).await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut tablet = gw.connect("bob", "tablet").await;
    alice.send_to("bob", "c-1", "hello").await;
    alice.send_to("bob", "c-2", "see you at 8").await;
    let mut held = BTreeMap::new();
    let first = vec![entry(&mut tablet, 1).await, entry(&mut tablet, 2).await];
    apply(&mut held, &first);
    tablet.close().await;
    // Alice's first message was a message request to bob: he takes it (until then his typing
    // would not reach her).
    let r = bob
        .request(json!({"action": "accept", "conversation": DM}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");

    // Typing reaches alice, and is not answered.
    bob.send(json!({"action": "typing", "id": "t-1", "conversation": DM}))
        .await;
    let typing = alice.recv_type("typing").await;
    assert_eq!(
        typing,
        json!({"type": "typing", "conversation": DM, "user": "bob"})
    );
    let pong = bob
        .request(json!({"action": "presence", "users": []}))
        .await;
    assert_eq!(pong["type"], "presence");
    assert!(
        bob.backlog().iter().all(|f| f["id"] != "t-1"),
        "{:?}",
        bob.backlog()
    );

    // Alice edits message 1; bob reacts to it and replies to message 2; alice deletes 2.
    let edited = alice
        .request(json!({"action": "edit", "conversation": DM, "seq": 1, "body": "hello, edited"}))
        .await;
    assert_eq!(
        (&edited["type"], &edited["entry"]["seq"]),
        (&json!("edited"), &json!(3)),
        "{edited}"
    );
    let e = entry(&mut bob, 3).await;
    assert_eq!(e["event"], json!({"type": "message_edited", "seq": 1}));
    assert_eq!(e["target"]["body"], "hello, edited");
    let reacted = bob
        .request(json!({"action": "react", "conversation": DM, "seq": 1, "emoji": "👍"}))
        .await;
    assert_eq!(
        reacted["message"]["reactions"],
        json!([{"emoji": "👍", "users": ["bob"]}])
    );
    assert_eq!(
        entry(&mut alice, 4).await["event"]["type"],
        "reaction_added"
    );
    let reply = bob
        .request(
            json!({"action": "send", "conversation": DM, "client_msg_id": "b-1",
                        "body": "ok!", "reply_to": 2}),
        )
        .await;
    assert_eq!(reply["seq"], 5, "{reply}");
    let got = entry(&mut alice, 5).await;
    assert_eq!(
        (&got["reply_to"], &got["quote"]),
        (&json!(2), &json!({"from": "alice", "text": "see you at 8"}))
    );
    let deleted = alice
        .request(json!({"action": "delete", "conversation": DM, "seq": 2}))
        .await;
    assert_eq!(
        (&deleted["type"], &deleted["message"]["deleted"]),
        (&json!("deleted"), &json!(true))
    );
    let d = entry(&mut bob, 6).await;
    assert_eq!(
        d["target"],
        json!({"conversation": DM, "seq": 2, "from": "alice", "deleted": true,
        "sent_at": d["target"]["sent_at"], "client_msg_id": "c-2", "rev": 6})
    );

    // Bad input gets the typed errors; a stranger gets forbidden.
    let refused = [
        (
            json!({"action": "edit", "conversation": DM, "seq": 1, "body": "mine"}),
            "forbidden",
        ),
        (
            json!({"action": "edit", "conversation": DM, "seq": 99, "body": "x"}),
            "bad_request",
        ),
        (
            json!({"action": "react", "conversation": DM, "seq": 1, "emoji": "nice"}),
            "bad_request",
        ),
        (
            json!({"action": "react", "conversation": DM, "seq": 2, "emoji": "👍"}),
            "not_found",
        ),
        (
            json!({"action": "delete", "conversation": DM, "seq": 3}),
            "bad_request",
        ),
    ];
    for (frame, code) in refused {
        let r = bob.request(frame.clone()).await;
        assert_eq!(
            (&r["type"], &r["code"]),
            (&json!("error"), &json!(code)),
            "{frame} → {r}"
        );
    }
    let mut carol = gw.connect("carol", "phone").await;
    let r = carol
        .request(json!({"action": "react", "conversation": DM, "seq": 1, "emoji": "👍"}))
        .await;
    assert_eq!(r["code"], "forbidden");

    // The tablet comes back and syncs from its cursor: it converges on what history shows.
    let mut tablet = gw.connect("bob", "tablet").await;
    let page = tablet
        .request(json!({"action": "sync", "since": {DM: 2}}))
        .await;
    let entries = page["messages"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 4, "{page}");
    assert_eq!(
        entries[2]["quote"],
        json!({"from": "alice", "deleted": true})
    );
    apply(&mut held, &entries);
    let history = tablet
        .request(json!({"action": "history", "conversation": DM}))
        .await;
    let mut now = chat_messages(&history);
    for m in now.values_mut() {
        m.as_object_mut().unwrap().remove("quote");
    }
    for m in held.values_mut() {
        m.as_object_mut().unwrap().remove("quote");
    }
    assert_eq!(held, now);
    assert_eq!(held[&1]["body"], "hello, edited");
    assert_eq!(held[&1]["reactions"][0]["users"], json!(["bob"]));
    assert!(held[&2].get("body").is_none() && held[&2]["deleted"] == true);

    // The deleted body is gone from storage, not hidden.
    let conv = ConversationId::new(DM).unwrap();
    match raw {
        Some(dynamo) => {
            let item = dynamo
                .stored_message(&conv, 2)
                .await
                .unwrap()
                .expect("the item");
            assert!(item.get("body").is_none(), "{item}");
            assert_eq!(item["deleted"], true);
            assert!(!item.to_string().contains("see you at 8"), "{item}");
        }
        None => {
            let m = stores
                .messages
                .by_seqs(&conv, &[2], chrono::Utc::now())
                .await
                .unwrap();
            assert!(m[0].deleted && m[0].body.is_empty());
        }
    }
}

#[tokio::test]
async fn a_group_replies_reacts_types_and_its_admin_deletes_while_a_late_joiner_sees_nothing_older()
{
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let group = alice
        .request(json!({"action": "create_group", "name": "Trip", "members": ["bob", "carol"]}))
        .await;
    let g = group["conversation"].as_str().unwrap().to_owned();
    let sent = bob
        .request(json!({"action": "send", "conversation": g, "client_msg_id": "b-1", "body": "tickets?"}))
        .await;
    assert_eq!(sent["seq"], 2);
    let reply = carol
        .request(
            json!({"action": "send", "conversation": g, "client_msg_id": "c-1",
                        "body": "bought", "reply_to": 2}),
        )
        .await;
    assert_eq!(reply["seq"], 3);
    for c in [&mut alice, &mut bob] {
        assert_eq!(
            entry(c, 3).await["quote"],
            json!({"from": "bob", "text": "tickets?"})
        );
    }
    for (c, emoji) in [(&mut alice, "🎉"), (&mut bob, "🎉")] {
        let r = c
            .request(json!({"action": "react", "conversation": g, "seq": 3, "emoji": emoji}))
            .await;
        assert_eq!(r["type"], "reacted", "{r}");
    }
    let e = entry(&mut carol, 5).await;
    assert_eq!(
        e["target"]["reactions"],
        json!([{"emoji": "🎉", "users": ["alice", "bob"]}])
    );

    carol
        .send(json!({"action": "typing", "conversation": g}))
        .await;
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.recv_type("typing").await["user"], "carol");
    }

    // Carol may not delete bob's message; alice, the admin, may.
    let r = carol
        .request(json!({"action": "delete", "conversation": g, "seq": 2}))
        .await;
    assert_eq!(r["code"], "forbidden");
    let r = alice
        .request(json!({"action": "delete", "conversation": g, "seq": 2}))
        .await;
    assert_eq!(r["message"]["deleted"], true, "{r}");
    for c in [&mut bob, &mut carol] {
        let d = entry(c, 6).await;
        assert_eq!(
            (&d["from"], &d["event"]["type"]),
            (&json!("alice"), &json!("message_deleted"))
        );
    }

    // Dave joins; an edit of carol's older reply reaches him without its target.
    let added = alice
        .request(json!({"action": "add_members", "conversation": g, "users": ["dave"]}))
        .await;
    assert_eq!(added["seq"], 7);
    let mut dave = gw.connect("dave", "phone").await;
    let r = carol
        .request(json!({"action": "edit", "conversation": g, "seq": 3, "body": "bought two"}))
        .await;
    assert_eq!(r["entry"]["seq"], 8, "{r}");
    let seen = entry(&mut dave, 8).await;
    assert_eq!(seen["event"], json!({"type": "message_edited", "seq": 3}));
    assert!(seen.get("target").is_none(), "{seen}");
    let page = dave.request(json!({"action": "sync", "since": {}})).await;
    assert!(!page.to_string().contains("bought"), "{page}");
    let r = dave
        .request(json!({"action": "react", "conversation": g, "seq": 3, "emoji": "👍"}))
        .await;
    assert_eq!(r["code"], "not_found");
}

#[tokio::test]
async fn a_muted_conversation_pushes_nothing_and_the_inbox_follows_activity_and_reads_elsewhere() {
    let (gw, stores, _) = TestGateway::start_with_raw_store(GatewayConfig::default()).await;
    // Bob wrote to alice and carol before (seq 1 of each 1:1: his own, so never unread), and
    // they took his requests: they are his contacts, and their messages push.
    gw.contacts(&[("bob", "alice"), ("bob", "carol")]).await;
    // Bob's phone takes pushes while it is away; his laptop mutes alice.
    let mut phone = gw.connect("bob", "phone").await;
    phone.register_fcm("tok-bob", false).await;
    phone.close().await;
    let mut laptop = gw.connect("bob", "laptop").await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    alice.send_to("bob", "a-1", "hi bob").await;
    let muted = laptop
        .request(json!({"action": "mute", "conversation": DM, "until": null}))
        .await;
    assert_eq!(
        muted,
        json!({"id": muted["id"], "type": "muted", "conversation": DM, "muted": true})
    );
    laptop.close().await;
    let bob = messenger::domain::UserId::new("bob").unwrap();
    eventually("bob has no live connection", async || {
        stores
            .connections
            .of_users(std::slice::from_ref(&bob), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;

    // Alice (muted) and carol (not) write while bob is away: only carol's pushes.
    alice.send_to("bob", "a-2", "are you there?").await;
    carol.send_to("bob", "c-1", "lunch?").await;
    let recorded = gw.published(5).await;
    assert_eq!(
        pushed_data(&recorded, "bob", "conversation"),
        ["dm:bob:carol"],
        "{recorded}"
    );

    // The inbox: carol's conversation first (latest), with the unread counts.
    let mut laptop = gw.connect("bob", "laptop").await;
    let inbox = laptop.request(json!({"action": "conversations"})).await;
    let rows = inbox["conversations"].as_array().unwrap();
    let summary = |rows: &[Value]| -> Vec<(String, u64, bool)> {
        rows.iter()
            .map(|r| {
                let conv = r["conversation"].as_str().unwrap().to_owned();
                (
                    conv,
                    r["unread"].as_u64().unwrap(),
                    r["muted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        summary(rows),
        [("dm:bob:carol".into(), 1, false), (DM.into(), 2, true)]
    );
    assert_eq!(inbox["unread_total"], 3);
    assert_eq!(rows[0]["last"]["text"], "lunch?");

    // Bob reads alice's messages on his phone; his laptop's inbox shows it.
    let mut phone = gw.connect("bob", "phone").await;
    let r = phone
        .request(json!({"action": "ack", "conversation": DM, "seq": 3, "kind": "read"}))
        .await;
    assert_eq!(r["type"], "acked");
    let inbox = laptop.request(json!({"action": "conversations"})).await;
    assert_eq!(
        summary(inbox["conversations"].as_array().unwrap()),
        [("dm:bob:carol".into(), 1, false), (DM.into(), 0, true)]
    );
    assert_eq!(inbox["unread_total"], 1);

    // Alice writes again: her conversation moves to the top; unmuted, she pushes again.
    phone.close().await;
    let r = laptop
        .request(json!({"action": "unmute", "conversation": DM}))
        .await;
    assert_eq!(r["muted"], false);
    alice.send_to("bob", "a-3", "ping").await;
    let inbox = laptop.request(json!({"action": "conversations"})).await;
    assert_eq!(
        summary(inbox["conversations"].as_array().unwrap()),
        [(DM.into(), 1, false), ("dm:bob:carol".into(), 1, false)]
    );
    laptop.close().await;
    eventually("bob has no live connection", async || {
        stores
            .connections
            .of_users(std::slice::from_ref(&bob), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    alice.send_to("bob", "a-4", "pong").await;
    let recorded = gw.published(7).await;
    assert_eq!(
        pushed_data(&recorded, "bob", "conversation"),
        ["dm:bob:carol", DM],
        "{recorded}"
    );
}
