//! Offline push end to end through the embedded gateway and its recording notifier.

use chrono::Utc;
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger_e2e::{TestGateway, pushed_data};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};

/// The seqs pushed to `user`, in order.
fn pushed_seqs(recorded: &Value, user: &str) -> Vec<u64> {
    let seqs = pushed_data(recorded, user, "seq");
    seqs.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test]
async fn an_offline_device_gets_one_push_per_burst_until_it_acks() {
    let gw = TestGateway::start().await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("tok-bob-phone", false).await;
    bob.close().await;

    let mut alice = gw.connect("alice", "phone").await;
    for i in 1..=5 {
        assert_eq!(
            alice.send_to("bob", &format!("c-{i}"), "psst").await["type"],
            "sent"
        );
    }
    let recorded = gw.published(6).await;
    assert_eq!(
        pushed_seqs(&recorded, "bob"),
        vec![2],
        "one push for the burst"
    );
    let push = &recorded["pushes"][0];
    assert_eq!(
        (push["device"].as_str(), push["platform"].as_str()),
        (Some("phone"), Some("fcm"))
    );
    let fcm: Value = serde_json::from_str(push["message"]["GCM"].as_str().unwrap()).unwrap();
    let note = &fcm["fcmV1Message"]["message"];
    assert_eq!(
        note["notification"],
        json!({"title":"alice","body":"New message"}),
        "content-free"
    );
    assert_eq!(note["data"]["conversation"], "dm:alice:bob");
    assert!(
        !recorded.to_string().contains("psst"),
        "no message text anywhere by default"
    );

    // The device comes back, catches up and acks: the next message pushes again.
    let mut bob = gw.connect("bob", "phone").await;
    bob.request(json!({"action":"ack","conversation":"dm:alice:bob","seq":6,"kind":"delivered"}))
        .await;
    bob.close().await;
    alice.send_to("bob", "c-6", "again").await;
    assert_eq!(pushed_seqs(&gw.published(7).await, "bob"), vec![2, 7]);
}

#[tokio::test]
async fn an_online_recipient_gets_no_push_and_every_message_reaches_the_topic() {
    let gw = TestGateway::start().await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("tok-bob", false).await;
    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    alice.send_to("bob", "c-2", "there").await;
    let recorded = gw.published(2).await;
    assert_eq!(pushed_seqs(&recorded, "bob"), Vec::<u64>::new());
    let event = &recorded["events"][1];
    assert_eq!(
        event["attributes"],
        json!({"user":"alice","conversation":"dm:alice:bob"})
    );
    assert_eq!(
        (
            event["message"]["seq"].as_u64(),
            event["message"]["offline"].as_array().map(Vec::len)
        ),
        (Some(2), Some(0))
    );
}

#[tokio::test]
async fn a_recipient_whose_only_connection_is_stale_gets_a_push() {
    let (gw, store) = TestGateway::start_with_store(GatewayConfig::default()).await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("tok-bob", false).await;
    bob.close().await;
    let now = Utc::now();
    let stale = Connection {
        id: ConnectionId::new("stale=").unwrap(),
        user: UserId::new("bob").unwrap(),
        device: DeviceId::new("phone").unwrap(),
        connected_at: now,
        expires_at: now + chrono::Duration::hours(2),
    };
    store.connections.put(&stale, 0).await.unwrap();

    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    assert_eq!(
        pushed_seqs(&gw.published(2).await, "bob"),
        vec![2],
        "410 counts as offline"
    );
}

#[tokio::test]
async fn a_rejected_token_unregisters_the_device_and_the_send_still_succeeds() {
    let (gw, store) = TestGateway::start_with_store(GatewayConfig::default()).await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("invalid-token", false).await;
    bob.close().await;
    let mut alice = gw.connect("alice", "phone").await;
    let sent = alice.send_to("bob", "c-1", "hi").await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(
        pushed_seqs(&gw.published(2).await, "bob"),
        Vec::<u64>::new()
    );
    let bob_id = UserId::new("bob").unwrap();
    let device = store
        .push_devices
        .get(&bob_id, &DeviceId::new("phone").unwrap())
        .await
        .unwrap();
    assert!(device.is_none(), "the dead token's device is forgotten");

    // A fresh token registers it again and pushes flow.
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("fresh-token", false).await;
    bob.close().await;
    alice.send_to("bob", "c-2", "hi again").await;
    assert_eq!(pushed_seqs(&gw.published(3).await, "bob"), vec![3]);
}

#[tokio::test]
async fn a_new_token_updates_the_same_endpoint_and_previews_are_opt_in() {
    let (gw, store) = TestGateway::start_with_store(GatewayConfig::default()).await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let (bob_id, phone) = (UserId::new("bob").unwrap(), DeviceId::new("phone").unwrap());
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("old-token", false).await;
    let first = store
        .push_devices
        .get(&bob_id, &phone)
        .await
        .unwrap()
        .unwrap();
    bob.register_fcm("new-token", true).await;
    let second = store
        .push_devices
        .get(&bob_id, &phone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.endpoint, second.endpoint);
    assert_eq!((second.token.as_str(), second.preview), ("new-token", true));
    bob.close().await;

    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "c-1", "see you at 8").await;
    let recorded = gw.published(2).await;
    assert!(
        recorded["pushes"][0]["message"]["GCM"]
            .as_str()
            .unwrap()
            .contains("see you at 8")
    );

    let r = alice
        .request(json!({"action":"register_push","platform":"pigeon","token":"x"}))
        .await;
    assert_eq!(r["code"], "bad_request");
    let mut bob = gw.connect("bob", "phone").await;
    let r = bob.request(json!({"action":"unregister_push"})).await;
    assert_eq!(r["type"], "push_unregistered");
    assert!(
        store
            .push_devices
            .get(&bob_id, &phone)
            .await
            .unwrap()
            .is_none()
    );
}

/// The platform payload of a recorded push (the SNS message's `APNS`, `APNS_SANDBOX` or `GCM`).
fn payload(push: &Value, key: &str) -> Value {
    serde_json::from_str(push["message"][key].as_str().expect("a payload")).unwrap()
}

#[tokio::test]
async fn apns_and_the_apns_sandbox_get_apns_payloads() {
    let gw = TestGateway::start().await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    for (device, platform) in [("iphone", "apns"), ("testflight", "apns_sandbox")] {
        let mut bob = gw.connect("bob", device).await;
        let r = bob
            .request(json!({"action":"register_push","platform":platform,"token":format!("tok-{device}")}))
            .await;
        assert_eq!(
            (r["device"].as_str(), r["platform"].as_str()),
            (Some(device), Some(platform)),
            "{r}"
        );
        bob.close().await;
    }
    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    let recorded = gw.published(2).await;
    let mut pushes: Vec<&Value> = recorded["pushes"].as_array().unwrap().iter().collect();
    pushes.sort_by_key(|p| p["device"].as_str().unwrap().to_owned());
    let got: Vec<(&str, &str)> = pushes
        .iter()
        .map(|p| {
            (
                p["device"].as_str().unwrap(),
                p["platform"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("iphone", "apns"), ("testflight", "apns_sandbox")]);
    for (push, key) in pushes.into_iter().zip(["APNS", "APNS_SANDBOX"]) {
        let apns = payload(push, key);
        assert_eq!(
            apns["aps"]["alert"],
            json!({"title":"alice","body":"New message"}),
            "{key}"
        );
        assert_eq!(
            (apns["conversation"].as_str(), apns["seq"].as_u64()),
            (Some("dm:alice:bob"), Some(2))
        );
        assert!(push["message"].get("GCM").is_none(), "{key}: {push}");
    }
}

#[tokio::test]
async fn registering_another_platform_replaces_the_devices_registration() {
    let (gw, store) = TestGateway::start_with_store(GatewayConfig::default()).await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let (bob_id, phone) = (UserId::new("bob").unwrap(), DeviceId::new("phone").unwrap());
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("fcm-token", false).await;
    let before = store
        .push_devices
        .get(&bob_id, &phone)
        .await
        .unwrap()
        .unwrap();
    let r = bob
        .request(json!({"action":"register_push","platform":"apns","token":"apns-token"}))
        .await;
    assert_eq!(r["platform"], "apns", "{r}");
    let after = store
        .push_devices
        .get(&bob_id, &phone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.platform.sns_key(), after.token.as_str()),
        ("APNS", "apns-token")
    );
    assert_ne!(
        after.endpoint, before.endpoint,
        "a new endpoint, on the new platform"
    );
    bob.close().await;

    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "c-1", "hi").await;
    let recorded = gw.published(2).await;
    let platforms: Vec<&str> = recorded["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(
        platforms,
        ["apns"],
        "one push, to the new registration only"
    );
}

#[tokio::test]
async fn membership_events_are_published_but_never_pushed() {
    let gw = TestGateway::start().await;
    // Bob wrote to alice first and she took his request: his contact, whose messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("tok-bob", false).await;
    bob.close().await;
    let mut alice = gw.connect("alice", "phone").await;
    let created = alice
        .request(json!({"action":"create_group","name":"Quiet","members":["bob"]}))
        .await;
    let g = created["conversation"].as_str().unwrap().to_owned();
    alice
        .request(json!({"action":"rename_group","conversation":g,"name":"Still quiet"}))
        .await;
    alice
        .request(json!({"action":"add_members","conversation":g,"users":["carol"]}))
        .await;
    // The events reach the topic like every stored message, naming bob offline...
    let recorded = gw.published(4).await;
    let events: Vec<(u64, &Value)> = recorded["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"]["conversation"] == g)
        .map(|e| {
            (
                e["message"]["seq"].as_u64().unwrap(),
                &e["message"]["offline"],
            )
        })
        .collect();
    assert_eq!(events.len(), 3, "{recorded}");
    for (seq, offline) in &events {
        assert!(
            offline.as_array().unwrap().contains(&json!("bob")),
            "seq {seq}"
        );
    }
    // ...but none woke his phone. A message does (so the device is pushable).
    assert_eq!(pushed_seqs(&recorded, "bob"), Vec::<u64>::new());
    alice
        .request(json!({"action":"send","conversation":g,"client_msg_id":"m-1","body":"hi"}))
        .await;
    assert_eq!(pushed_seqs(&gw.published(5).await, "bob"), vec![4]);
}
