//! The security review's findings (issue 11), each reproduced with real WebSocket clients
//! through the embedded gateway, on the in-memory store and on DynamoDB: idempotency keys bound
//! to their request, per-user rate limits and caps, push token ownership, and group changes
//! that cannot lose their admin or their log entry.

use messenger_e2e::{Client, TestGateway, error_code};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The log of `conv` as `client` syncs it: (seq, from, body or event type).
async fn log_of(client: &mut Client, conv: &str) -> Vec<(u64, String, String)> {
    let page = client.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(page["type"], "sync", "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["conversation"] == conv)
        .map(|m| {
            let what = m["event"]["type"]
                .as_str()
                .unwrap_or_else(|| m["body"].as_str().unwrap());
            (
                m["seq"].as_u64().unwrap(),
                m["from"].as_str().unwrap().to_owned(),
                what.to_owned(),
            )
        })
        .collect()
}

fn entry(seq: u64, from: &str, what: &str) -> (u64, String, String) {
    (seq, from.to_owned(), what.to_owned())
}

/// The members of `conv` as a member's rename of it answers: (user, role).
async fn members_seen_by(client: &mut Client, conv: &str) -> Vec<(String, String)> {
    let g = client
        .request(json!({"action":"rename_group","conversation":conv,"name":"Checked"}))
        .await;
    assert_eq!(g["type"], "group", "{g}");
    g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_creator_who_left_cannot_come_back_with_a_retried_create_group() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut mallory = gw.connect("mallory", "phone").await;
    let create = |members: &[&str]| json!({"action":"create_group","name":"Club","members":members,"client_msg_id":"g-1"});
    let created = alice.request(create(&["bob"])).await;
    let g = created["conversation"].as_str().unwrap().to_owned();
    let left = alice
        .request(json!({"action":"leave_group","conversation":g}))
        .await;
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(bob.say(&g, "b-1", "after alice left").await["seq"], 3);

    // The same key with other members: another request, refused; nothing changes.
    let other = alice.request(create(&["mallory"])).await;
    assert_eq!(error_code(&other), "conflict", "{other}");
    // The very same request again: a retry, checked against alice's rights now: she left.
    let retry = alice.request(create(&["bob"])).await;
    assert_eq!(error_code(&retry), "forbidden", "{retry}");

    for outsider in [&mut alice, &mut mallory] {
        let h = outsider
            .request(json!({"action":"history","conversation":g}))
            .await;
        assert_eq!(error_code(&h), "forbidden", "{}: {h}", outsider.user);
    }
    // Nobody was added, no event was logged: the log is the creation, the leave, bob's message.
    assert_eq!(
        log_of(&mut bob, &g).await,
        vec![
            entry(1, "alice", "group_created"),
            entry(2, "alice", "member_left"),
            entry(3, "bob", "after alice left"),
        ]
    );
    assert_eq!(
        members_seen_by(&mut bob, &g).await,
        vec![("bob".to_owned(), "admin".to_owned())]
    );
}

#[tokio::test]
async fn a_key_reused_for_a_stranger_neither_reaches_them_nor_shows_their_presence() {
    let gw = TestGateway::start().await;
    let mut mallory = gw.connect("mallory", "phone").await;
    let mut victim = gw.connect("victim", "phone").await;
    let note = mallory.send_to("mallory", "x", "note to self").await;
    assert_eq!(note["conversation"], "dm:mallory:mallory", "{note}");

    let reused = mallory.send_to("victim", "x", "hello").await;
    assert_eq!(error_code(&reused), "conflict", "{reused}");

    // No 1:1 membership was written: the victim is still a stranger, online or not.
    let p = mallory
        .request(json!({"action":"presence","users":["victim"]}))
        .await;
    assert_eq!(
        p["users"],
        json!([{"user":"victim","online":false,"last_seen":null}])
    );
    let inbox = mallory.request(json!({"action":"conversations"})).await;
    let convs: Vec<&str> = inbox["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation"].as_str().unwrap())
        .collect();
    assert_eq!(convs, ["dm:mallory:mallory"]);
    let page = victim.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(page["messages"], json!([]));
    assert!(
        victim.backlog().iter().all(|f| f["type"] != "message"),
        "the victim received nothing: {:?}",
        victim.backlog()
    );
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_a_conflict_and_stores_nothing() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    assert_eq!(alice.send_to("bob", "c-1", "first").await["seq"], 1);
    let second = alice.send_to("bob", "c-1", "second").await;
    assert_eq!(error_code(&second), "conflict", "{second}");
    assert_eq!(second["client_msg_id"], "c-1");
    // The same request again is still the original.
    let retry = alice.send_to("bob", "c-1", "first").await;
    assert_eq!(
        (retry["seq"].as_u64(), retry["duplicate"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        log_of(&mut bob, "dm:alice:bob").await,
        vec![entry(1, "alice", "first")]
    );
    // Bob got the original, and again with its retry (a retried send fans out again: its first
    // attempt may have died before delivering it); the conflicting body never.
    let received: Vec<&Value> = bob
        .backlog()
        .iter()
        .filter(|f| f["type"] == "message")
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    for m in received {
        assert_eq!((m["seq"].as_u64(), &m["body"]), (Some(1), &json!("first")));
    }
}

#[tokio::test]
async fn a_group_change_with_a_key_a_message_used_changes_nothing() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut dave = gw.connect("dave", "phone").await;
    let g = alice.create_group("Team", &["bob", "carol"]).await;
    assert_eq!(alice.say(&g, "k", "hello team").await["seq"], 2);

    let removal = alice
        .request(
            json!({"action":"remove_members","conversation":g,"users":["bob"],"client_msg_id":"k"}),
        )
        .await;
    assert_eq!(error_code(&removal), "conflict", "{removal}");
    let addition = alice
        .request(
            json!({"action":"add_members","conversation":g,"users":["dave"],"client_msg_id":"k"}),
        )
        .await;
    assert_eq!(error_code(&addition), "conflict", "{addition}");

    // bob is still a member, dave is not, and the log has no membership event for either.
    assert_eq!(bob.say(&g, "b-1", "still here").await["seq"], 3);
    let h = dave
        .request(json!({"action":"history","conversation":g}))
        .await;
    assert_eq!(error_code(&h), "forbidden");
    assert_eq!(
        log_of(&mut bob, &g).await,
        vec![
            entry(1, "alice", "group_created"),
            entry(2, "alice", "hello team"),
            entry(3, "bob", "still here"),
        ]
    );
}

#[tokio::test]
async fn a_burst_of_1000_sends_is_limited_while_every_acknowledged_message_is_stored_gaplessly() {
    // Default limits: a burst of 60 sends, then 5 a second.
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let dave = gw.connect("dave", "phone").await;

    // Dave sends at the same time, within his own bucket.
    let daves = tokio::spawn(async move {
        let mut dave = dave;
        let ids: Vec<String> = (0..20).map(|i| format!("d-{i}")).collect();
        for id in &ids {
            dave.send(json!({"action":"send","id":id,"to":"carol","client_msg_id":id,"body":"hi"}))
                .await;
        }
        let mut replies = Vec::new();
        for id in &ids {
            replies.push(dave.recv_where(|v| v["id"] == id.as_str()).await);
        }
        replies
    });
    let ids: Vec<String> = (0..1000).map(|i| format!("a-{i}")).collect();
    for id in &ids {
        alice
            .send(json!({"action":"send","id":id,"to":"bob","client_msg_id":id,"body":"burst"}))
            .await;
    }
    let (mut stored, mut limited) = (Vec::new(), 0);
    for id in &ids {
        let reply = alice.recv_where(|v| v["id"] == id.as_str()).await;
        match reply["type"].as_str() {
            Some("sent") => stored.push(reply["seq"].as_u64().unwrap()),
            _ => {
                assert_eq!(error_code(&reply), "rate_limited", "{reply}");
                assert!(reply["retry_after_ms"].as_u64().unwrap() >= 1, "{reply}");
                assert_eq!(reply["client_msg_id"], id.as_str());
                limited += 1;
            }
        }
    }
    assert!(
        stored.len() >= 60 && limited > 0,
        "{} stored, {limited} limited",
        stored.len()
    );
    assert_eq!(stored.len() + limited, 1000);
    stored.sort_unstable();
    let n = stored.len() as u64;
    assert_eq!(stored, (1..=n).collect::<Vec<_>>(), "gapless");
    // Exactly the acknowledged messages are stored.
    let logged = log_of(&mut bob, "dm:alice:bob").await;
    assert_eq!(
        logged.iter().map(|m| m.0).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    // Dave was not held back by alice's burst.
    for reply in daves.await.unwrap() {
        assert_eq!(reply["type"], "sent", "{reply}");
    }
    assert_eq!(log_of(&mut carol, "dm:carol:dave").await.len(), 20);

    // Once the bucket refills (as long as the server says), alice sends again.
    let mut again = alice.send_to("bob", "after", "after the burst").await;
    if again["type"] == "error" {
        assert_eq!(error_code(&again), "rate_limited", "{again}");
        let wait = again["retry_after_ms"].as_u64().unwrap();
        tokio::time::sleep(Duration::from_millis(wait)).await;
        again = alice.send_to("bob", "after", "after the burst").await;
    }
    assert_eq!(again["seq"], n + 1, "{again}");
}

#[tokio::test]
async fn frames_past_the_per_frame_caps_are_too_large_and_change_nothing() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let g = alice.create_group("Big", &["bob"]).await;
    let many: Vec<String> = (0..41).map(|i| format!("u{i}")).collect();
    for frame in [
        json!({"action":"create_group","name":"Bigger","members":many}),
        json!({"action":"add_members","conversation":g,"users":many}),
        json!({"action":"remove_members","conversation":g,"users":many}),
    ] {
        let r = alice.request(frame.clone()).await;
        assert_eq!(error_code(&r), "too_large", "{frame}: {r}");
    }
    let cursors: BTreeMap<String, u64> = (0..1001).map(|i| (format!("dm:a:u{i}"), 0)).collect();
    let r = alice
        .request(json!({"action":"sync","since":cursors}))
        .await;
    assert_eq!(error_code(&r), "too_large", "{r}");
    assert_eq!(
        log_of(&mut alice, &g).await,
        vec![entry(1, "alice", "group_created")]
    );
}

#[tokio::test]
async fn a_user_in_the_most_groups_cannot_be_added_to_another() {
    let mut config = GatewayConfig::default();
    config.limits.max_groups_per_user = 2;
    let gw = TestGateway::start_with(config).await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut erin = gw.connect("erin", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let mut dave = gw.connect("dave", "phone").await;
    alice.create_group("One", &["dave"]).await;
    let two = erin.create_group("Two", &[]).await;
    let added = erin
        .request(json!({"action":"add_members","conversation":two,"users":["dave"]}))
        .await;
    assert_eq!(added["type"], "group", "{added}");
    let third = carol
        .request(json!({"action":"create_group","name":"Three","members":["dave"]}))
        .await;
    assert_eq!(error_code(&third), "too_large", "{third}");
    assert!(
        third["message"].as_str().unwrap().contains("dave"),
        "{third}"
    );
    let four = carol.create_group("Four", &[]).await;
    let refused = carol
        .request(json!({"action":"add_members","conversation":four,"users":["dave"]}))
        .await;
    assert_eq!(error_code(&refused), "too_large", "{refused}");
    // Both groups are message requests to dave (their creators are no contacts of his).
    let inbox = dave
        .request(json!({"action":"conversations","folder":"requests"}))
        .await;
    assert_eq!(
        inbox["conversations"].as_array().unwrap().len(),
        2,
        "{inbox}"
    );
    // Leaving one makes room again.
    let left = dave
        .request(json!({"action":"leave_group","conversation":two}))
        .await;
    assert_eq!(left["type"], "left");
    let added = carol
        .request(json!({"action":"add_members","conversation":four,"users":["dave"]}))
        .await;
    assert_eq!(added["type"], "group", "{added}");
}

#[tokio::test]
async fn a_connection_past_the_per_user_cap_closes_the_oldest() {
    let mut config = GatewayConfig::default();
    config.limits.max_connections_per_user = 2;
    let gw = TestGateway::start_with(config).await;
    let mut phone = gw.connect("alice", "phone").await;
    let mut laptop = gw.connect("alice", "laptop").await;
    let mut tablet = gw.connect("alice", "tablet").await;
    assert_eq!(phone.closed().await, messenger_e2e::Closed::Code(1000));
    // Told why first, so a client does not reconnect (and close another of alice's).
    let told = phone
        .backlog()
        .iter()
        .any(|f| f["type"] == "closed" && f["reason"] == "too_many_connections");
    assert!(told, "{:?}", phone.backlog());
    let mut bob = gw.connect("bob", "phone").await;
    let sent = bob.send_to("alice", "b-1", "hi").await;
    for device in [&mut laptop, &mut tablet] {
        let m = device.recv_type("message").await;
        assert_eq!(
            (m["seq"].as_u64(), m["body"].as_str()),
            (sent["seq"].as_u64(), Some("hi"))
        );
    }
}

/// The devices of `user` that pushes were recorded for, in order.
async fn pushed_devices(gw: &TestGateway, user: &str) -> Vec<String> {
    gw.recorded_pushes(Some(user)).await["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["device"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_device_past_the_per_user_cap_replaces_the_least_recently_registered() {
    let mut config = GatewayConfig::default();
    config.limits.max_devices_per_user = 2;
    let gw = TestGateway::start_with(config).await;
    // Alice wrote to bob before and he took her request: his messages push.
    gw.contacts(&[("alice", "bob")]).await;
    for device in ["d1", "d2", "d3"] {
        let mut c = gw.connect("alice", device).await;
        c.register_fcm(&format!("token-{device}"), false).await;
        c.close().await;
    }
    let mut bob = gw.connect("bob", "phone").await;
    bob.send_to("alice", "b-1", "are you there?").await;
    gw.published(2).await;
    let mut devices = pushed_devices(&gw, "alice").await;
    devices.sort();
    assert_eq!(devices, ["d2", "d3"]);
}

#[tokio::test]
async fn a_push_token_another_user_registers_is_taken_from_its_old_holder() {
    let gw = TestGateway::start().await;
    // Bob wrote to alice before and she took his request: her messages push.
    gw.contacts(&[("bob", "alice")]).await;
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("shared-token", false).await;
    bob.close().await;
    // Mallory registers bob's token (a phone that changed hands, or someone who learnt it).
    let mut mallory = gw.connect("mallory", "phone").await;
    mallory.register_fcm("shared-token", false).await;
    let mut alice = gw.connect("alice", "phone").await;
    alice.send_to("bob", "a-1", "for bob").await;
    // Mallory moves the endpoint to her own phone's token, then unregisters it.
    mallory.register_fcm("mallory-token", false).await;
    alice.send_to("bob", "a-2", "for bob again").await;
    gw.published(3).await;
    assert_eq!(
        pushed_devices(&gw, "bob").await,
        Vec::<String>::new(),
        "nothing of bob's goes to a token he no longer holds"
    );
    let r = mallory.request(json!({"action":"unregister_push"})).await;
    assert_eq!(r["type"], "push_unregistered");

    // Bob registers his token again: his pushes come back.
    let mut bob = gw.connect("bob", "phone").await;
    bob.register_fcm("shared-token", false).await;
    bob.close().await;
    alice.send_to("bob", "a-3", "welcome back").await;
    gw.published(4).await;
    assert_eq!(pushed_devices(&gw, "bob").await, ["phone"]);
}

#[tokio::test]
async fn the_last_admin_and_the_heir_leaving_at_once_leave_an_admin() {
    let gw = TestGateway::start().await;
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    // Several groups, so the two leaves interleave in more than one way.
    for round in 0..5 {
        let g = alice
            .create_group(&format!("Round {round}"), &["bob", "carol"])
            .await;
        let (a, b) = (format!("a-{round}"), format!("b-{round}"));
        alice
            .send(json!({"action":"leave_group","id":a,"conversation":g}))
            .await;
        bob.send(json!({"action":"leave_group","id":b,"conversation":g}))
            .await;
        assert_eq!(
            alice.recv_where(|v| v["id"] == a.as_str()).await["type"],
            "left"
        );
        assert_eq!(
            bob.recv_where(|v| v["id"] == b.as_str()).await["type"],
            "left"
        );
        assert_eq!(
            members_seen_by(&mut carol, &g).await,
            vec![("carol".to_owned(), "admin".to_owned())],
            "round {round}"
        );
    }
}
