//! DynamoDB requests and write units of the hot routes, through the real use cases on the
//! emulator. The numbers are the ones in docs/data-model.md: a change that adds a request to
//! `send`, `ack` or `sync` fails here and must update both.

mod common;

use async_trait::async_trait;
use messenger::apigw::{Caller, Request};
use messenger::domain::{ConnectionId, DeviceId, UserId};
use messenger::ports::{PushError, Pusher};
use messenger::{App, Limits, Stores, usecases};
use messenger_aws::{DynamoStore, Snapshot};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Records every post, so the test can also check who was reached.
#[derive(Default)]
struct RecordingPusher(Mutex<Vec<(ConnectionId, Value)>>);

#[async_trait]
impl Pusher for RecordingPusher {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PushError> {
        let v = serde_json::from_str(data).expect("frames are JSON");
        self.0.lock().unwrap().push((conn.clone(), v));
        Ok(())
    }
}

impl RecordingPusher {
    fn take(&self) -> Vec<(String, String)> {
        let mut posts: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .drain(..)
            .map(|(c, v)| (c.to_string(), v["type"].as_str().unwrap_or("?").to_owned()))
            .collect();
        posts.sort();
        posts
    }
}

fn caller(user: &str, device: &str, tag: &str) -> Caller {
    Caller {
        user: UserId::new(format!("{user}-{tag}")).unwrap(),
        device: DeviceId::new(device).unwrap(),
        connection: ConnectionId::new(format!("{user}-{device}-{tag}")).unwrap(),
        connected_at: None,
    }
}

fn request(c: &Caller, body: Value) -> Request {
    Request::new(c.clone(), None, "req-count", body)
}

fn requests(s: &Snapshot) -> BTreeMap<&str, u64> {
    s.requests()
}

/// Runs `f` and returns what it cost.
async fn measure(store: &DynamoStore, f: impl AsyncFnOnce()) -> Snapshot {
    let before = store.counters();
    f().await;
    store.counters().since(&before)
}

#[tokio::test]
async fn send_ack_and_sync_make_exactly_the_documented_requests() {
    let store = common::store_with_bucket(messenger_aws::dynamo::DEFAULT_BUCKET).await;
    let pusher = Arc::new(RecordingPusher::default());
    let app = App::new(
        Stores::from_one(store.clone()),
        pusher.clone(),
        Limits::default(),
    );

    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let bob_phone = caller("bob", "phone", &t);
    let bob_laptop = caller("bob", "laptop", &t);
    for c in [&alice, &bob_phone, &bob_laptop] {
        let cost = measure(&store, async || {
            usecases::connect::connect(&app, c).await.unwrap()
        })
        .await;
        assert_eq!(
            requests(&cost),
            BTreeMap::from([("PutItem", 1), ("UpdateItem", 1)])
        );
    }
    let send = |cmid: &str| {
        let req = request(
            &alice,
            json!({"action": "send", "to": bob_phone.user, "client_msg_id": cmid, "body": "hi"}),
        );
        let app = &app;
        async move {
            usecases::send::send(app, &req, req.frame().unwrap())
                .await
                .unwrap()
        }
    };

    // The first message of a conversation also creates both memberships.
    let first = measure(&store, async || send("c-1").await).await;
    println!("first send: {first:?}");
    assert_eq!(
        requests(&first),
        BTreeMap::from([
            ("BatchGetItem", 1),
            ("GetItem", 1),
            ("PutItem", 2),
            ("Query", 2),
            ("TransactWriteItems", 1),
        ])
    );
    pusher.take();

    // A 1:1 send to a user with two online devices.
    let steady = measure(&store, async || send("c-2").await).await;
    println!("send: {steady:?}");
    assert_eq!(
        requests(&steady),
        BTreeMap::from([
            ("BatchGetItem", 1),       // head + idempotency key, strongly consistent
            ("GetItem", 1),            // the sender's membership
            ("Query", 2),              // connections of alice and of bob, in parallel
            ("TransactWriteItems", 1)  // head, message, idempotency key
        ])
    );
    // Three small items in one transaction: 2 WCU each.
    assert_eq!(steady.write_units(), 6.0);
    assert_eq!(
        pusher.take(),
        vec![
            (alice.connection.to_string(), "sent".to_owned()),
            (bob_laptop.connection.to_string(), "message".to_owned()),
            (bob_phone.connection.to_string(), "message".to_owned()),
        ]
    );

    let conv = messenger::domain::ConversationId::direct(&alice.user, &bob_phone.user);
    let ack = measure(&store, async || {
        let req = request(
            &bob_phone,
            json!({"action": "ack", "conversation": conv, "seq": 2, "kind": "delivered"}),
        );
        usecases::ack::ack(&app, &req, req.frame().unwrap())
            .await
            .unwrap()
    })
    .await;
    println!("ack: {ack:?}");
    assert_eq!(
        requests(&ack),
        BTreeMap::from([
            ("BatchGetItem", 1), // the conversation's head (is seq in range?)
            ("GetItem", 1),      // bob's membership
            ("Query", 2),        // connections of both members, for the receipt
            ("UpdateItem", 1),   // the conditional pointer move
        ])
    );
    assert_eq!(ack.write_units(), 1.0);
    pusher.take();

    let sync = measure(&store, async || {
        let req = request(&bob_laptop, json!({"action": "sync", "since": {}}));
        usecases::sync::sync(&app, &req, req.frame().unwrap())
            .await
            .unwrap()
    })
    .await;
    println!("sync: {sync:?}");
    assert_eq!(
        requests(&sync),
        BTreeMap::from([
            ("BatchGetItem", 1), // heads of bob's conversations
            ("Query", 2),        // bob's memberships; the one conversation's new messages
        ])
    );
    assert_eq!(sync.write_units(), 0.0);
    let posts = pusher.0.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1["messages"].as_array().unwrap().len(), 2);

    assert!(
        !store.counters().0.contains_key("Scan"),
        "no Scan on any path"
    );
}
