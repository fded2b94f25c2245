//! DynamoDB requests and write units of the hot routes, through the real use cases on the
//! emulator. The numbers are the ones in docs/data-model.md (and bench/counts.json): a change
//! that adds a request to `send`, `ack` or `sync` fails here and must update them.

mod common;

use common::counting::{RecordingPoster, caller, exec, measure, request, requests, world};
use messenger::domain::UserId;
use messenger::request::Caller;
use messenger::{App, usecases};
use messenger_aws::{DynamoStore, Snapshot};
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn send_ack_and_sync_make_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;

    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let bob_phone = caller("bob", "phone", &t);
    let bob_laptop = caller("bob", "laptop", &t);
    for (c, first) in [(&alice, true), (&bob_phone, true), (&bob_laptop, false)] {
        let cost = measure(&store, async || {
            usecases::connect::connect(&app, c).await.unwrap()
        })
        .await;
        // One UpdateItem of the user's item; a user's very first connect finds no map of
        // connections (the condition fails) and creates it with a second one.
        let updates = if first { 2 } else { 1 };
        assert_eq!(requests(&cost), BTreeMap::from([("UpdateItem", updates)]));
        if !first {
            assert_eq!(cost.write_units(), 1.0);
        }
    }
    let send = |cmid: &str| {
        let req = request(
            &alice,
            json!({"action": "send", "to": bob_phone.user, "client_msg_id": cmid, "body": "hi"}),
        );
        let app = &app;
        async move { exec(app, &req).await }
    };

    // The first message of a conversation also creates both memberships, in its transaction.
    let first = measure(&store, async || send("c-1").await).await;
    println!("first send: {first:?}");
    assert_eq!(
        requests(&first),
        BTreeMap::from([
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1),
            ("UpdateItem", 2), // alice's send token; her read pointer (sending reads)
        ])
    );
    // 5 transactional items (head, message, key, 2 memberships) at 2 WCU, and the token at 1.
    // (AWS also bills the 2 memberships' index entries, 1 WCU each; MiniStack reports no index
    // writes for a transaction: 13 on AWS.)
    assert_eq!(first.write_units(), 12.0);
    poster.take();

    // It is a message request to bob: he accepts it. His membership (GetItem), his groups
    // token, the two memberships' standing in one transaction; the reply, and the same frame to
    // his other device (his connections: one BatchGetItem).
    let conv = messenger::domain::ConversationId::direct(&alice.user, &bob_phone.user);
    let accept = measure(&store, async || {
        let req = request(
            &bob_phone,
            json!({"action": "accept", "id": "a1", "conversation": conv}),
        );
        exec(&app, &req).await
    })
    .await;
    println!("accept: {accept:?}");
    assert_eq!(
        requests(&accept),
        BTreeMap::from([
            ("BatchGetItem", 1),
            ("GetItem", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1),
        ])
    );
    // Two small items in one transaction (2 WCU each) and the token.
    assert_eq!(accept.write_units(), 5.0);
    assert_eq!(
        poster.take(),
        vec![
            (
                bob_laptop.connection.to_string(),
                "request_state".to_owned()
            ),
            (bob_phone.connection.to_string(), "request_state".to_owned()),
        ]
    );

    // A 1:1 send to a user with two online devices.
    let steady = measure(&store, async || send("c-2").await).await;
    println!("send: {steady:?}");
    assert_eq!(
        requests(&steady),
        BTreeMap::from([
            // membership + head + idempotency key (consistent); then both members' items
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1), // head, message, idempotency key
            ("UpdateItem", 2),         // the send token; the sender's read pointer
        ])
    );
    // Three small items in one transaction: 2 WCU each; the token and the read pointer: 1 each.
    assert_eq!(steady.write_units(), 8.0);
    assert_eq!(
        poster.take(),
        vec![
            (alice.connection.to_string(), "sent".to_owned()),
            (bob_laptop.connection.to_string(), "message".to_owned()),
            (bob_phone.connection.to_string(), "message".to_owned()),
        ]
    );

    let ack = |kind: &'static str| {
        let req = request(
            &bob_phone,
            json!({"action": "ack", "conversation": conv, "seq": 2, "kind": kind}),
        );
        let app = &app;
        async move { exec(app, &req).await }
    };
    let delivered = measure(&store, async || ack("delivered").await).await;
    println!("ack: {delivered:?}");
    assert_eq!(
        requests(&delivered),
        BTreeMap::from([
            // bob's membership + the head (is seq in range?); then both members' items
            ("BatchGetItem", 2),
            ("UpdateItem", 1), // the conditional pointer move
        ])
    );
    assert_eq!(delivered.write_units(), 1.0);
    // No `id`: no `acked` reply. The receipt goes to alice and to bob's other device.
    assert_eq!(
        poster.take(),
        vec![
            (alice.connection.to_string(), "receipt".to_owned()),
            (bob_laptop.connection.to_string(), "receipt".to_owned()),
        ]
    );
    // `read` once `delivered` stands there: the delivered pointer is not written again.
    let read = measure(&store, async || ack("read").await).await;
    assert_eq!(
        requests(&read),
        BTreeMap::from([("BatchGetItem", 2), ("UpdateItem", 1)])
    );
    poster.take();

    let sync = measure(&store, async || {
        let req = request(&bob_laptop, json!({"action": "sync", "since": {}}));
        exec(&app, &req).await
    })
    .await;
    println!("sync: {sync:?}");
    assert_eq!(
        requests(&sync),
        BTreeMap::from([
            ("BatchGetItem", 1), // heads of bob's conversations
            ("Query", 2),        // bob's memberships; the one conversation's new messages
            ("UpdateItem", 1),   // the reads token
        ])
    );
    assert_eq!(sync.write_units(), 1.0);
    let posts = poster.0.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1["messages"].as_array().unwrap().len(), 2);

    poster.take();
    // A retry of c-2 is answered from its key: nothing stored, and the message fanned out again
    // (its first attempt may have died before its fan-out; docs/reliability.md).
    let retry = measure(&store, async || send("c-2").await).await;
    println!("retried send: {retry:?}");
    assert_eq!(
        requests(&retry),
        BTreeMap::from([
            // the first read (the key is there); the key again, in the append; both members'
            // connections
            ("BatchGetItem", 3),
            ("GetItem", 1), // the original message
            // the send token; the sender's read pointer, already there: its update and the
            // `read`-only one after it both find their condition false (nothing written)
            ("UpdateItem", 3),
        ])
    );
    assert_eq!(retry.write_units(), 1.0);
    assert_eq!(
        poster.take(),
        vec![
            (alice.connection.to_string(), "sent".to_owned()),
            (bob_laptop.connection.to_string(), "message".to_owned()),
            (bob_phone.connection.to_string(), "message".to_owned()),
        ]
    );
    // The same key for another body: a conflict, from the first read alone.
    let conflict = measure(&store, async || {
        let req = request(
            &alice,
            json!({"action": "send", "to": bob_phone.user, "client_msg_id": "c-2", "body": "else"}),
        );
        let action = messenger::routes::Action::Send;
        let e = usecases::execute(&app, &req, action).await.unwrap_err();
        assert_eq!(e.code(), messenger::protocol::ErrorCode::Conflict);
    })
    .await;
    assert_eq!(
        requests(&conflict),
        BTreeMap::from([("BatchGetItem", 1), ("UpdateItem", 1)])
    );

    assert!(
        !store.counters().0.contains_key("Scan"),
        "no Scan on any path"
    );
}

/// A group of `size` members (`alice` the creator and admin, then `m1`…), each with one live
/// connection, created through the real `create_group` use case. Returns the conversation and
/// every member's caller (the creator first).
async fn group_with_everyone_online(
    app: &App,
    store: &DynamoStore,
    poster: &RecordingPoster,
    size: usize,
    tag: &str,
) -> (messenger::domain::ConversationId, Vec<Caller>) {
    use messenger::domain::Connection;
    use messenger::ports::Connections;
    let members: Vec<Caller> = (0..size)
        .map(|i| {
            let name = if i == 0 {
                "alice".into()
            } else {
                format!("m{i}")
            };
            caller(&name, "phone", tag)
        })
        .collect();
    let now = chrono::Utc::now();
    for c in &members {
        store
            .put(
                &Connection {
                    id: c.connection.clone(),
                    user: c.user.clone(),
                    device: c.device.clone(),
                    connected_at: now,
                    expires_at: now + chrono::Duration::hours(2),
                },
                0,
            )
            .await
            .unwrap();
    }
    // At most 40 ids a frame: created with the first members, the rest added 40 at a time.
    let others: Vec<&UserId> = members[1..].iter().map(|c| &c.user).collect();
    let mut chunks = others.chunks(40);
    let req = request(
        &members[0],
        json!({"action": "create_group", "name": "bench", "members": chunks.next().unwrap_or_default(),
               "client_msg_id": format!("g{size}")}),
    );
    exec(app, &req).await;
    let posts = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    let conv = posts
        .iter()
        .find_map(|(_, v)| v["conversation"].as_str())
        .expect("create_group answers with the conversation")
        .to_owned();
    for chunk in chunks {
        let req = request(
            &members[0],
            json!({"action": "add_members", "conversation": conv, "users": chunk}),
        );
        exec(app, &req).await;
    }
    // Alice is nobody's contact: the group is a message request to each of them until they
    // accept it (as members of a group people use have).
    for m in &members[1..] {
        exec(
            app,
            &request(m, json!({"action": "accept", "conversation": conv})),
        )
        .await;
    }
    poster.0.lock().unwrap().clear();
    (
        messenger::domain::ConversationId::new(conv).unwrap(),
        members,
    )
}

/// Requests, capacity units and PostToConnection calls of one group `send` where every member
/// has one live connection; then the cost of a member's ack of that message (and its posts).
async fn group_send_cost(size: usize) -> (Snapshot, Vec<(String, String)>, Snapshot, usize) {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let (conv, members) = group_with_everyone_online(&app, &store, &poster, size, &t).await;
    let alice = &members[0];
    // The members Query alone, to split the read units (MiniStack reports them per Query).
    let gsi = measure(&store, async || {
        messenger::ports::Conversations::members(&*store, &conv)
            .await
            .unwrap();
    })
    .await;
    println!("members query (GSI), {size} members: {gsi:?}");
    let started = std::time::Instant::now();
    let cost = measure(&store, async || {
        let req = request(
            alice,
            json!({"action": "send", "conversation": conv, "client_msg_id": "c-1", "body": "hi all"}),
        );
        exec(&app, &req).await
    })
    .await;
    println!(
        "group send, {size} members, {:?} on the emulator: {cost:?}",
        started.elapsed()
    );
    let posts = poster.take();
    let ack = |seq: u64| {
        let req = request(
            &members[1],
            json!({"action": "ack", "conversation": conv, "seq": seq, "kind": "delivered"}),
        );
        let app = &app;
        async move { exec(app, &req).await }
    };
    ack(1).await;
    poster.take();
    let ack_cost = measure(&store, async || ack(2).await).await;
    println!("group ack, {size} members: {ack_cost:?}");
    (cost, posts, ack_cost, poster.take().len())
}

/// The posts of one fan-out: the reply to the requester, then `kind` to every other member.
fn fan_out(reply: &str, kind: &str, posts: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut by_type = BTreeMap::new();
    for (_, ty) in posts {
        *by_type.entry(ty.clone()).or_default() += 1;
    }
    assert!(
        by_type.contains_key(reply) && by_type.contains_key(kind),
        "{posts:?}"
    );
    by_type
}

#[tokio::test]
async fn a_group_send_reads_connections_100_members_at_a_time() {
    for size in [10, 256] {
        let (cost, posts, ack, ack_posts) = group_send_cost(size).await;
        let members = size as u64;
        assert_eq!(
            requests(&cost),
            BTreeMap::from([
                // membership + head + idempotency key; then the members' items, 100 a request
                ("BatchGetItem", 1 + members.div_ceil(100)),
                ("GetItem", 1),            // the member list (the roster, consistent)
                ("TransactWriteItems", 1), // head, message, idempotency key
                ("UpdateItem", 2),         // the send token; the sender's read pointer
            ]),
            "{size} members"
        );
        // The same three-item transaction as a 1:1 send, the token and the read pointer: the
        // write cost does not grow with the group.
        assert_eq!(cost.write_units(), 8.0, "{size} members");
        // `sent` to the sender, `message` to every other member's one connection.
        assert_eq!(
            fan_out("sent", "message", &posts),
            BTreeMap::from([("message".into(), size - 1), ("sent".into(), 1)]),
        );
        // A member's ack of it costs the same whatever the size: one receipt, to the author.
        assert_eq!(
            requests(&ack),
            BTreeMap::from([("BatchGetItem", 2), ("UpdateItem", 1)]),
            "{size} members"
        );
        assert_eq!((ack.write_units(), ack_posts), (1.0, 1), "{size} members");
    }
}

#[tokio::test]
async fn a_group_ack_and_a_sync_page_cost() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let (conv, members) = group_with_everyone_online(&app, &store, &poster, 10, &t).await;
    for i in 1..=2 {
        let req = request(
            &members[0],
            json!({"action": "send", "conversation": conv, "client_msg_id": format!("c-{i}"), "body": "hi"}),
        );
        exec(&app, &req).await;
    }
    poster.take();

    // A member acks the first message (the created event, by alice): the receipt goes to its
    // author only, not to the group.
    let m1 = &members[1];
    let group_ack = |seq: u64| {
        let req = request(
            m1,
            json!({"action": "ack", "conversation": conv, "seq": seq, "kind": "delivered"}),
        );
        let app = &app;
        async move { exec(app, &req).await }
    };
    let ack = measure(&store, async || group_ack(1).await).await;
    println!("group ack, 10 members: {ack:?}");
    assert_eq!(
        requests(&ack),
        BTreeMap::from([
            // membership + head + the acked message; then the author's (and m1's) items
            ("BatchGetItem", 2),
            ("UpdateItem", 1), // the conditional pointer move
        ])
    );
    assert_eq!(ack.write_units(), 1.0);
    assert_eq!(
        poster.take(),
        vec![(members[0].connection.to_string(), "receipt".to_owned())]
    );
    // An ack that covers two messages (seqs 2 and 3) also reads the earlier one's author.
    let ack = measure(&store, async || group_ack(3).await).await;
    println!("group ack of two messages: {ack:?}");
    assert_eq!(
        requests(&ack),
        BTreeMap::from([("BatchGetItem", 2), ("Query", 1), ("UpdateItem", 1)])
    );
    assert_eq!(
        poster.take(),
        vec![(members[0].connection.to_string(), "receipt".to_owned())]
    );

    // Anyone pulls everyone's pointers.
    let pull = measure(&store, async || {
        let req = request(
            &members[2],
            json!({"action": "receipts", "conversation": conv, "id": 1}),
        );
        exec(&app, &req).await
    })
    .await;
    println!("receipts pull, 10 members: {pull:?}");
    assert_eq!(
        requests(&pull),
        BTreeMap::from([
            ("BatchGetItem", 1), // every member's item
            ("GetItem", 2),      // the caller's membership; the member list (the roster)
            ("UpdateItem", 1),   // the reads token
        ])
    );
    let posts = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1["members"].as_array().unwrap().len(), 10);

    // Another member's device syncs from nothing: one page with the group's 3 entries.
    let m2 = &members[2];
    let sync = measure(&store, async || {
        let req = request(m2, json!({"action": "sync", "since": {}}));
        exec(&app, &req).await
    })
    .await;
    println!("group sync page: {sync:?}");
    assert_eq!(
        requests(&sync),
        BTreeMap::from([
            ("BatchGetItem", 1), // heads of the caller's conversations
            ("Query", 2),        // the caller's memberships; the group's new messages
            ("UpdateItem", 1),   // the reads token
        ])
    );
    assert_eq!(sync.write_units(), 1.0);
    let posts = poster.0.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1["messages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_connect_a_presence_pull_and_a_disconnect_cost() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let alice_laptop = caller("alice", "laptop", &t);
    let first = measure(&store, async || {
        usecases::connect::connect(&app, &alice).await.unwrap()
    })
    .await;
    println!("first connect: {first:?}");
    assert_eq!(requests(&first), BTreeMap::from([("UpdateItem", 2)]));
    let connect = measure(&store, async || {
        usecases::connect::connect(&app, &alice_laptop)
            .await
            .unwrap()
    })
    .await;
    println!("connect: {connect:?}");
    assert_eq!(requests(&connect), BTreeMap::from([("UpdateItem", 1)]));
    assert_eq!(connect.write_units(), 1.0);

    // The heartbeat is a MOCK route: no function, so no request at all.
    assert_eq!(
        messenger::routes::Route::select(Some(r#"{"action":"heartbeat"}"#)).function(),
        None
    );

    // Presence of oneself: the caller's memberships (who may they see?), then the items.
    let presence = measure(&store, async || {
        let req = request(&alice, json!({"action": "presence", "users": [alice.user]}));
        exec(&app, &req).await
    })
    .await;
    println!("presence: {presence:?}");
    assert_eq!(
        requests(&presence),
        BTreeMap::from([("BatchGetItem", 1), ("Query", 1), ("UpdateItem", 1)])
    );
    assert_eq!(presence.write_units(), 1.0, "the presence token");
    let posts = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(posts[0].1["users"][0]["online"], true);

    let disconnect = measure(&store, async || {
        usecases::disconnect::disconnect(&app, &alice)
            .await
            .unwrap()
    })
    .await;
    println!("disconnect: {disconnect:?}");
    assert_eq!(requests(&disconnect), BTreeMap::from([("UpdateItem", 1)]));
    assert_eq!(disconnect.write_units(), 1.0);
}
