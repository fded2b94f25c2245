//! DynamoDB requests and write units of replies, edits, deletions, reactions, typing, mute, the
//! inbox and the muted/badged push path, through the real use cases on the emulator. The
//! numbers are the ones in docs/data-model.md ("Conversation features").

mod common;

use common::counting::{caller, cost, requests, world};
use messenger::domain::ConversationId;
use messenger::ports::{Connections, Conversations, MessageLog, PushDevices};
use messenger::push::{Platform, PushDevice};
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn replies_amendments_typing_mute_and_sync_cost_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let bob = caller("bob", "phone", &t);
    let bob_laptop = caller("bob", "laptop", &t);
    for c in [&alice, &bob, &bob_laptop] {
        messenger::usecases::connect::connect(&app, c)
            .await
            .unwrap();
    }
    let dm = ConversationId::direct(&alice.user, &bob.user);
    for cmid in ["c-1", "c-2"] {
        let send = json!({"action": "send", "to": bob.user, "client_msg_id": cmid, "body": "hi"});
        cost(&store, &app, &alice, send).await;
    }
    // Bob takes alice's message request: what follows is between people who talk.
    cost(
        &store,
        &app,
        &bob,
        json!({"action": "accept", "conversation": dm}),
    )
    .await;
    poster.take();

    // A reply: the send, plus one read of the quoted message.
    let reply = json!({"action": "send", "conversation": dm, "client_msg_id": "r-1",
                       "body": "yes", "reply_to": 1});
    let reply = cost(&store, &app, &bob, reply).await;
    println!("reply: {reply:?}");
    assert_eq!(
        requests(&reply),
        BTreeMap::from([
            // membership + head + idempotency key + the answered message; both members' items
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1), // head, message, idempotency key
            ("UpdateItem", 2),         // the send token; the sender's read pointer
        ])
    );
    assert_eq!(reply.write_units(), 8.0);
    poster.take();

    // Edit, reaction and delete: the same shape each.
    let amendments = [
        (
            &alice,
            json!({"action": "edit", "conversation": dm, "seq": 1, "body": "hello"}),
        ),
        (
            &bob,
            json!({"action": "react", "conversation": dm, "seq": 1, "emoji": "👍"}),
        ),
        (
            &alice,
            json!({"action": "delete", "conversation": dm, "seq": 2}),
        ),
    ];
    for (who, body) in amendments {
        let action = body["action"].clone();
        let spent = cost(&store, &app, who, body).await;
        println!("{action}: {spent:?}");
        assert_eq!(
            requests(&spent),
            BTreeMap::from([
                // the caller's membership and the two block records of the 1:1 (one batch);
                // head + the message, strongly consistent; both members' items (connections)
                ("BatchGetItem", 3),
                ("TransactWriteItems", 1), // head, the new entry, the message rewritten
                ("UpdateItem", 1),         // the send token (rate limit)
            ]),
            "{action}"
        );
        // Three items under 1 KB in one transaction: 2 WCU each; the token 1.
        assert_eq!(spent.write_units(), 7.0, "{action}");
        // The reply to the caller, the entry to the 2 other connections.
        assert_eq!(poster.take().len(), 3, "{action}");
    }
    // A reaction that is already there: read, answered, nothing written but its token.
    let again = json!({"action": "react", "conversation": dm, "seq": 1, "emoji": "👍"});
    let again = cost(&store, &app, &bob, again).await;
    assert_eq!(
        requests(&again),
        BTreeMap::from([("BatchGetItem", 2), ("UpdateItem", 1)])
    );
    assert_eq!(again.write_units(), 1.0);
    assert_eq!(
        poster.take(),
        [(bob.connection.to_string(), "reacted".to_owned())]
    );

    // Typing: the typer's membership with the 1:1's two block records (one batch), and the
    // other member's connections; no write, no reply.
    let typing = json!({"action": "typing", "conversation": dm});
    let typed = cost(&store, &app, &alice, typing.clone()).await;
    println!("typing: {typed:?}");
    assert_eq!(requests(&typed), BTreeMap::from([("BatchGetItem", 2)]));
    assert_eq!(typed.write_units(), 0.0);
    let to_bob = vec![
        (bob_laptop.connection.to_string(), "typing".to_owned()),
        (bob.connection.to_string(), "typing".to_owned()),
    ];
    assert_eq!(poster.take(), to_bob);
    // Within the interval: dropped before any request.
    let throttled = cost(&store, &app, &alice, typing).await;
    assert!(requests(&throttled).is_empty(), "{throttled:?}");
    assert!(poster.take().is_empty());

    // Mute: the groups token, one conditional write, and the caller's other devices are told.
    let mute = json!({"action": "mute", "conversation": dm});
    let muted = cost(&store, &app, &bob, mute).await;
    assert_eq!(
        requests(&muted),
        BTreeMap::from([("BatchGetItem", 1), ("UpdateItem", 2)])
    );
    assert_eq!(muted.write_units(), 2.0);
    assert_eq!(poster.take().len(), 2, "the reply and the laptop");

    // A read ack below the head reads the chat count at that seq with the membership.
    let ack = json!({"action": "ack", "conversation": dm, "seq": 3, "kind": "read"});
    let acked = cost(&store, &app, &alice, ack).await;
    println!("ack read below the head: {acked:?}");
    assert_eq!(
        requests(&acked),
        BTreeMap::from([
            // membership + head + message 3 (its chat count); both members' items
            ("BatchGetItem", 2),
            ("UpdateItem", 2), // delivered, then read (with its chat count)
        ])
    );
    assert_eq!(acked.write_units(), 2.0);
    poster.take();

    // Bob's laptop syncs from seq 2: the reply, the edit, the reaction and the deletion, which
    // refer to messages 1 and 2 before the cursor: one more batched read brings them.
    let sync = json!({"action": "sync", "since": {dm.as_str(): 2}});
    let synced = cost(&store, &app, &bob_laptop, sync).await;
    println!("sync with amendments: {synced:?}");
    assert_eq!(
        requests(&synced),
        BTreeMap::from([
            ("BatchGetItem", 2), // heads; the referenced messages 1 and 2
            ("Query", 2),        // the caller's memberships; the new entries
            ("UpdateItem", 1),   // the reads token (rate limit)
        ])
    );
    let page = poster.0.lock().unwrap().pop().unwrap().1;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5, 6]);
    assert_eq!(page["messages"][3]["target"]["deleted"], true);
}

#[tokio::test]
async fn an_inbox_page_costs_one_query_and_one_batched_read_per_100_conversations() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let bob = caller("bob", "phone", &t);
    let now = chrono::Utc::now();
    // 150 conversations, and one group with a message (so it comes first).
    for i in 0..150 {
        let other = messenger::domain::UserId::new(format!("u{i:03}-{t}")).unwrap();
        let dm = ConversationId::direct(&bob.user, &other);
        // A 1:1 conversation's first message makes its members.
        let body = format!("hi {i}");
        let first = messenger::domain::NewMessage {
            conversation: dm.clone(),
            from: other.clone(),
            client_msg_id: messenger::domain::ClientMsgId::new(format!("c-{i}")).unwrap(),
            digest: messenger::domain::RequestDigest::of("send", &dm, &[&body]),
            body,
            event: None,
            sent_at: now,
            expires_at: None,
            reply_to: None,
            attachments: Vec::new(),
        };
        let effects = messenger::ports::Effects {
            direct: vec![
                (bob.user.clone(), messenger::domain::RequestState::Accepted),
                (other.clone(), messenger::domain::RequestState::Accepted),
            ],
            ..Default::default()
        };
        let stored = store.append_with(first, &effects, None).await.unwrap();
        assert!(matches!(stored, messenger::ports::Append::Stored(_)));
    }
    let alice = caller("alice", "phone", &t);
    let create = json!({"action": "create_group", "name": "g", "members": [bob.user]});
    cost(&store, &app, &alice, create).await;
    // Alice is no contact of bob's: he takes the group's request, so it is in his inbox.
    let g = store.of_user(&bob.user).await.unwrap();
    let g = g.iter().find(|m| m.conversation.is_group()).unwrap();
    let accepted = messenger::domain::RequestState::Accepted;
    assert!(
        store
            .set_request(&g.conversation, &bob.user, accepted, None)
            .await
            .unwrap()
    );
    poster.take();

    let first = cost(&store, &app, &bob, json!({"action": "conversations"})).await;
    println!("inbox page 1 of 151 conversations: {first:?}");
    assert_eq!(
        requests(&first),
        BTreeMap::from([
            ("BatchGetItem", 3), // 151 heads (100 + 51); the page's one group name
            ("Query", 1),        // all of bob's memberships (one page up to 1 MB)
            ("UpdateItem", 1),   // the reads token (rate limit)
        ])
    );
    let page = poster.0.lock().unwrap().pop().unwrap().1;
    assert_eq!(page["conversations"].as_array().unwrap().len(), 100);
    assert_eq!(page["conversations"][0]["name"], "g");
    assert_eq!(
        page["unread_total"], 150,
        "each 1:1 has its first message unread"
    );
    let next = json!({"action": "conversations", "cursor": page["cursor"]});
    let second = cost(&store, &app, &bob, next).await;
    assert_eq!(
        requests(&second),
        BTreeMap::from([("BatchGetItem", 2), ("Query", 1), ("UpdateItem", 1)]),
        "no group on page 2"
    );
    let page = poster.0.lock().unwrap().pop().unwrap().1;
    assert_eq!(
        (
            page["conversations"].as_array().unwrap().len(),
            &page["more"]
        ),
        (51, &json!(false))
    );
    // The reads tokens only.
    assert_eq!(first.write_units() + second.write_units(), 2.0);
}

#[tokio::test]
async fn a_push_to_an_iphone_carries_the_badge_and_a_muted_conversation_is_not_pushed() {
    let (store, app, _poster) = world().await;
    let t = messenger::contract::tag();
    let (alice, bob, carol) = (
        caller("alice", "phone", &t),
        caller("bob", "phone", &t),
        caller("carol", "phone", &t),
    );
    messenger::usecases::connect::connect(&app, &alice)
        .await
        .unwrap();
    // Bob and carol are offline, each with an iPhone registered (the app's notifier accepts
    // every push without a platform).
    for who in [&bob, &carol] {
        let device = PushDevice {
            user: who.user.clone(),
            device: who.device.clone(),
            platform: Platform::Apns,
            token: "t".into(),
            endpoint: "e".into(),
            preview: false,
            registered_at: chrono::Utc::now(),
        };
        PushDevices::put(&*store, &device).await.unwrap();
    }
    let create = json!({"action": "create_group", "name": "g", "members": [bob.user, carol.user]});
    cost(&store, &app, &alice, create).await;
    let g = store.of_user(&bob.user).await.unwrap()[0]
        .conversation
        .clone();
    // Alice is no contact of theirs: both take the group's request (through the store).
    for who in [&bob, &carol] {
        let accepted = messenger::domain::RequestState::Accepted;
        assert!(
            store
                .set_request(&g, &who.user, accepted, None)
                .await
                .unwrap()
        );
    }
    // Carol mutes the group (through the store: she is offline).
    store
        .set_muted(&g, &carol.user, Some(messenger::domain::muted_forever()))
        .await
        .unwrap();
    assert!(
        Connections::of_users(&*store, std::slice::from_ref(&bob.user), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );

    let send = json!({"action": "send", "conversation": g, "client_msg_id": "c-1", "body": "hi"});
    let spent = cost(&store, &app, &alice, send).await;
    println!("group send with one iPhone pushed and one muted: {spent:?}");
    assert_eq!(
        requests(&spent),
        BTreeMap::from([
            // membership + head + idempotency key; the 3 members' items; bob's badge: the
            // heads of his conversations
            ("BatchGetItem", 3),
            // the members (the group's roster, consistent)
            ("GetItem", 1),
            // the offline members' devices (2), bob's and carol's memberships (they have
            // iPhones: all their memberships, for the badge)
            ("Query", 2 + 2),
            ("PutItem", 1),            // bob's push claim (carol muted: none)
            ("TransactWriteItems", 1), // head, message, idempotency key
            ("UpdateItem", 2),         // the send token; the sender's read pointer
        ])
    );
    let heads = store.heads(std::slice::from_ref(&g)).await.unwrap();
    assert_eq!(heads[&g].chats, 1);
}
