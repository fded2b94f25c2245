//! DynamoDB requests and write units of blocking (block, unblock, the blocked list) and of what
//! a block changes elsewhere (a refused send, presence of a blocker, a group naming one), and of
//! message requests (decline, a declined sender's send, a reply that accepts, the requests
//! folder), through the real use cases on the emulator. The numbers are the ones in
//! docs/data-model.md ("Blocking", "Message requests").

mod common;

use common::counting::{caller, cost, measure, request, requests, world};
use messenger::ports::Conversations;
use messenger::routes::Action;
use messenger::usecases;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn blocking_and_its_checks_cost_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let alice_laptop = caller("alice", "laptop", &t);
    let bob = caller("bob", "phone", &t);
    for c in [&alice, &alice_laptop, &bob] {
        usecases::connect::connect(&app, c).await.unwrap();
    }
    // They talk first, so each may see the other's presence.
    let hi = json!({"action": "send", "to": alice.user, "client_msg_id": "c-1", "body": "hi"});
    cost(&store, &app, &bob, hi).await;
    let dm = messenger::domain::ConversationId::direct(&alice.user, &bob.user);
    cost(
        &store,
        &app,
        &alice,
        json!({"action": "accept", "conversation": dm}),
    )
    .await;
    poster.take();

    // Block: the groups token, one conditional put, and the caller's connections (the other
    // device is told).
    let block = json!({"action": "block", "user": bob.user});
    let blocked = cost(&store, &app, &alice, block.clone()).await;
    println!("block: {blocked:?}");
    assert_eq!(
        requests(&blocked),
        BTreeMap::from([("BatchGetItem", 1), ("PutItem", 1), ("UpdateItem", 1)])
    );
    // The record (1) and its copy in the memberships index (1); the token (1).
    assert_eq!(blocked.write_units(), 3.0);
    assert_eq!(
        poster.take(),
        [
            (
                alice_laptop.connection.to_string(),
                "block_state".to_owned()
            ),
            (alice.connection.to_string(), "block_state".to_owned()),
        ]
    );
    // Again: the put's condition fails, nothing is written but the token.
    let again = cost(&store, &app, &alice, block).await;
    assert_eq!(again.write_units(), 1.0);
    poster.take();

    // Bob's send to Alice: refused after the same requests as any 1:1 send's first read (the
    // block records come in its batch), nothing stored or delivered.
    let send = json!({"action": "send", "to": alice.user, "client_msg_id": "c-2", "body": "?"});
    let req = request(&bob, send);
    let refused = measure(&store, async || {
        let e = usecases::execute(&app, &req, Action::Send)
            .await
            .unwrap_err();
        assert_eq!(e.code(), messenger::protocol::ErrorCode::Forbidden);
    })
    .await;
    println!("blocked send: {refused:?}");
    assert_eq!(
        requests(&refused),
        BTreeMap::from([("BatchGetItem", 1), ("UpdateItem", 1)]),
        "the send token and the first read"
    );
    assert_eq!(refused.write_units(), 1.0);
    assert!(poster.take().is_empty());

    // Bob's presence pull of Alice: his memberships, who of the asked blocked him, no items.
    let presence = json!({"action": "presence", "users": [alice.user]});
    let pulled = cost(&store, &app, &bob, presence).await;
    println!("presence of a blocker: {pulled:?}");
    assert_eq!(
        requests(&pulled),
        BTreeMap::from([("BatchGetItem", 1), ("Query", 1), ("UpdateItem", 1)])
    );
    let posts = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(posts[0].1["users"][0]["last_seen"], json!(null));
    assert_eq!(posts[0].1["users"][0]["online"], false);

    // Bob's group naming Alice: the group's usual first read (the block record in it), refused.
    let group = json!({"action": "create_group", "name": "G", "members": [alice.user],
                       "client_msg_id": "g-1"});
    let req = request(&bob, group);
    let refused = measure(&store, async || {
        let e = usecases::execute(&app, &req, Action::CreateGroup)
            .await
            .unwrap_err();
        assert_eq!(e.code(), messenger::protocol::ErrorCode::Forbidden);
    })
    .await;
    println!("group naming a blocker: {refused:?}");
    assert_eq!(
        requests(&refused),
        BTreeMap::from([("BatchGetItem", 1), ("UpdateItem", 1)])
    );

    // The list: the reads token and one query.
    let list = cost(&store, &app, &alice, json!({"action": "blocked"})).await;
    println!("blocked: {list:?}");
    assert_eq!(
        requests(&list),
        BTreeMap::from([("Query", 1), ("UpdateItem", 1)])
    );
    let posts = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(posts[0].1["users"][0]["user"], json!(bob.user));

    // Unblock: the groups token, one conditional delete (record and index copy), and the
    // caller's connections (the other devices are told).
    let unblock = json!({"action": "unblock", "user": bob.user});
    let unblocked = cost(&store, &app, &alice, unblock).await;
    println!("unblock: {unblocked:?}");
    assert_eq!(
        requests(&unblocked),
        BTreeMap::from([("BatchGetItem", 1), ("DeleteItem", 1), ("UpdateItem", 1)])
    );
    assert_eq!(unblocked.write_units(), 3.0);
}

#[tokio::test]
async fn a_report_costs_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let bob = caller("bob", "phone", &t);
    let mallory = caller("mallory", "phone", &t);
    for c in [&bob, &mallory] {
        usecases::connect::connect(&app, c).await.unwrap();
    }
    let spam = json!({"action": "send", "to": bob.user, "client_msg_id": "m-1", "body": "buy"});
    cost(&store, &app, &mallory, spam).await;
    poster.take();
    let dm = messenger::domain::ConversationId::direct(&bob.user, &mallory.user);
    let report = json!({"action": "report", "conversation": dm, "seq": 1, "reason": "spam"});
    let reported = cost(&store, &app, &bob, report.clone()).await;
    println!("report: {reported:?}");
    assert_eq!(
        requests(&reported),
        BTreeMap::from([
            ("BatchGetItem", 1), // the reported message (consistent)
            ("GetItem", 1),      // the reporter's membership
            ("PutItem", 1),      // the report, once
            ("UpdateItem", 1),   // the groups token
        ])
    );
    // The report item (the message's copy in it: ~0.5 KB here, 1 WCU per KB) and the token.
    assert_eq!(reported.write_units(), 2.0);
    assert_eq!(
        poster.take(),
        [(bob.connection.to_string(), "reported".to_owned())]
    );
    // Again the same day: the put's condition fails, nothing is stored or published.
    let again = cost(&store, &app, &bob, report).await;
    assert_eq!(requests(&again), requests(&reported));
    assert_eq!(again.write_units(), 1.0);
}

#[tokio::test]
async fn message_requests_cost_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;
    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let carol = caller("carol", "phone", &t);
    let carol_laptop = caller("carol", "laptop", &t);
    for c in [&alice, &carol, &carol_laptop] {
        usecases::connect::connect(&app, c).await.unwrap();
    }
    let dm = messenger::domain::ConversationId::direct(&alice.user, &carol.user);
    // Alice's first message is a request to carol: the same requests as any first message (the
    // two memberships get their standing in the same transaction).
    let hi = json!({"action": "send", "to": carol.user, "client_msg_id": "c-1", "body": "hi"});
    let first = cost(&store, &app, &alice, hi).await;
    assert_eq!(
        requests(&first),
        BTreeMap::from([
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1),
            ("UpdateItem", 2)
        ])
    );
    assert_eq!(first.write_units(), 12.0);
    poster.take();

    // Carol's requests folder: her memberships (one Query), the heads of the requests and of
    // the inbox (for the badge) in one batch each when both have rows; here only the request.
    let folder = json!({"action": "conversations", "folder": "requests"});
    let listed = cost(&store, &app, &carol, folder).await;
    println!("requests folder: {listed:?}");
    assert_eq!(
        requests(&listed),
        BTreeMap::from([("BatchGetItem", 1), ("Query", 1), ("UpdateItem", 1)])
    );
    let page = poster.0.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(page[0].1["requests"], 1);
    assert_eq!(page[0].1["conversations"][0]["request"], true);

    // Decline: her membership, the groups token, both standings in one transaction; the
    // reply, and her other device told (her connections).
    let decline = json!({"action": "decline", "conversation": dm});
    let declined = cost(&store, &app, &carol, decline).await;
    println!("decline: {declined:?}");
    assert_eq!(
        requests(&declined),
        BTreeMap::from([
            ("BatchGetItem", 1),
            ("GetItem", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1)
        ])
    );
    assert_eq!(declined.write_units(), 5.0);
    assert_eq!(poster.take().len(), 2);

    // Alice's next send is refused after its first read, like a blocked one's.
    let again = json!({"action": "send", "to": carol.user, "client_msg_id": "c-2", "body": "?"});
    let req = request(&alice, again);
    let refused = measure(&store, async || {
        let e = usecases::execute(&app, &req, Action::Send)
            .await
            .unwrap_err();
        assert_eq!(e.code(), messenger::protocol::ErrorCode::Forbidden);
    })
    .await;
    assert_eq!(
        requests(&refused),
        BTreeMap::from([("BatchGetItem", 1), ("UpdateItem", 1)])
    );
    assert_eq!(refused.write_units(), 1.0);
    assert!(poster.take().is_empty());

    // Carol writes back: a steady send whose transaction also accepts both standings (two more
    // items at 2 WCU each), once.
    let reply = json!({"action": "send", "conversation": dm, "client_msg_id": "k-1", "body": "ok"});
    let replied = cost(&store, &app, &carol, reply).await;
    println!("reply that accepts: {replied:?}");
    assert_eq!(
        requests(&replied),
        BTreeMap::from([
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1),
            ("UpdateItem", 2)
        ])
    );
    assert_eq!(replied.write_units(), 12.0);
    let mine = store.of_user(&alice.user).await.unwrap();
    assert_eq!(mine[0].request, messenger::domain::RequestState::Accepted);
}
