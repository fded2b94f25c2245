//! Offline push: registration, coalescing, disabled endpoints (GIVEN / WHEN / THEN).

use super::{send_to, types};
use crate::Limits;
use crate::usecases::notify::notify_stored;
use crate::usecases::testkit::World;
use crate::usecases::{ack::ack, register_push::register_push, unregister_push::unregister_push};
use serde_json::json;

async fn register(w: &World, caller: &crate::request::Caller, platform: &str, token: &str) {
    let r = w.request(caller, json!({"platform": platform, "token": token}));
    register_push(&w.app, &r, r.frame().unwrap()).await.unwrap();
}

async fn device_endpoint(w: &World, user: &crate::request::Caller) -> Option<String> {
    w.app
        .stores
        .push_devices
        .get(&user.user, &user.device)
        .await
        .unwrap()
        .map(|d| d.endpoint)
}

#[tokio::test]
async fn a_new_token_keeps_the_endpoint_and_another_platform_replaces_it() {
    // GIVEN bob's phone registered for FCM
    let w = World::new();
    let bob = w.connect("bob", "phone").await;
    register(&w, &bob, "fcm", "token-1").await;
    let first = device_endpoint(&w, &bob).await.expect("registered");
    assert_eq!(
        w.take(&bob)[0],
        json!({"type":"push_registered","device":"phone","platform":"fcm","preview":false})
    );
    // WHEN the app refreshes its token
    register(&w, &bob, "fcm", "token-2").await;
    // THEN the same endpoint carries it
    assert_eq!(device_endpoint(&w, &bob).await.as_ref(), Some(&first));
    assert!(w.notifier.unregistered.lock().unwrap().is_empty());
    // WHEN the device moves to APNs
    register(&w, &bob, "apns", "apns-token").await;
    // THEN a new endpoint replaces the old one, which is deleted
    let second = device_endpoint(&w, &bob).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(*w.notifier.unregistered.lock().unwrap(), [first]);
}

#[tokio::test]
async fn unregistering_forgets_the_device_and_its_endpoint() {
    // GIVEN bob's registered phone
    let w = World::new();
    let bob = w.connect("bob", "phone").await;
    register(&w, &bob, "fcm", "t").await;
    let endpoint = device_endpoint(&w, &bob).await.unwrap();
    // WHEN it unregisters
    let r = w.request(&bob, json!({}));
    unregister_push(&w.app, &r).await.unwrap();
    // THEN the device and the endpoint are gone, and the reply names the device
    assert_eq!(device_endpoint(&w, &bob).await, None);
    assert_eq!(*w.notifier.unregistered.lock().unwrap(), [endpoint]);
    assert_eq!(
        w.take(&bob).pop().unwrap(),
        json!({"type":"push_unregistered","device":"phone"})
    );
}

#[tokio::test]
async fn a_burst_pushes_once_until_the_user_acks_the_pushed_message() {
    // GIVEN bob registered a device, then went offline
    let w = World::new();
    w.contacts("alice", "bob");
    let alice = w.connect("alice", "p").await;
    let bob_phone = w.connect("bob", "phone").await;
    register(&w, &bob_phone, "fcm", "t").await;
    crate::usecases::disconnect::disconnect(&w.app, &bob_phone)
        .await
        .unwrap();
    // WHEN alice sends three messages
    for i in 1..=3 {
        send_to(&w, &alice, "bob", &format!("c-{i}"), "hi")
            .await
            .unwrap();
    }
    // THEN bob's phone got exactly one push, for the first
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 1)]);
    // WHEN bob (back on another device) acks the pushed message, and alice writes again
    let bob_laptop = w.connect("bob", "laptop").await;
    let r = w.request(
        &bob_laptop,
        json!({"conversation": "dm:alice:bob", "seq": 1, "kind": "delivered"}),
    );
    ack(&w.app, &r, r.frame().unwrap()).await.unwrap();
    crate::usecases::disconnect::disconnect(&w.app, &bob_laptop)
        .await
        .unwrap();
    send_to(&w, &alice, "bob", "c-4", "again").await.unwrap();
    // THEN the next message pushes again
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 4)]);
}

#[tokio::test]
async fn the_coalescing_window_lapses() {
    // GIVEN a window of zero: every claim has lapsed by the next message
    let w = World::with_limits(Limits {
        push_window: chrono::Duration::zero(),
        ..Limits::default()
    });
    w.contacts("alice", "bob");
    let alice = w.connect("alice", "p").await;
    let bob = w.caller("bob", "phone");
    register(&w, &bob, "fcm", "t").await;
    // WHEN alice sends two messages to offline bob
    send_to(&w, &alice, "bob", "c-1", "a").await.unwrap();
    send_to(&w, &alice, "bob", "c-2", "b").await.unwrap();
    // THEN both were pushed
    let seqs: Vec<u64> = w.pushes().into_iter().map(|p| p.2).collect();
    assert_eq!(seqs, [1, 2]);
}

#[tokio::test]
async fn online_members_are_not_pushed() {
    // GIVEN bob is online with a registered device
    let w = World::new();
    let alice = w.connect("alice", "p").await;
    let bob = w.connect("bob", "phone").await;
    register(&w, &bob, "fcm", "t").await;
    // WHEN alice writes to him
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN he got the message live and no push, and the message went to the topic
    assert!(w.take(&bob).iter().any(|f| f["type"] == "message"));
    assert!(w.pushes().is_empty());
    let events = w.notifier.events.lock().unwrap();
    assert_eq!((events.len(), events[0].offline.len()), (1, 0));
}

#[tokio::test]
async fn a_member_whose_only_connection_cannot_be_posted_to_is_pushed() {
    // GIVEN bob online on one device with a registered phone, and posts to that connection
    // failing (throttled or 5xx after the poster's retries, but not gone)
    let w = World::new();
    w.contacts("alice", "bob");
    let alice = w.connect("alice", "p").await;
    let bob = w.connect("bob", "phone").await;
    register(&w, &bob, "fcm", "t").await;
    w.take(&bob);
    w.break_posts_to(&bob);
    // WHEN alice writes to him
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN the send succeeded, bob did not get the frame, and he is pushed like an offline
    // member (his connection stays: it is not gone)
    assert_eq!(types(&w.take(&alice)), ["sent"]);
    assert!(w.take(&bob).is_empty());
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 1)]);
    let offline = w.notifier.events.lock().unwrap()[0].offline.clone();
    assert_eq!(offline, std::slice::from_ref(&bob.user));
    let live = w
        .app
        .stores
        .connections
        .of_users(std::slice::from_ref(&bob.user), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
}

#[tokio::test]
async fn a_push_failing_for_a_passing_reason_fails_the_record_and_its_retry_pushes_once() {
    // GIVEN offline bob with a registered phone, a message to him stored, and SNS failing
    let w = World::with_limits(Limits {
        push_inline: false,
        ..Limits::default()
    });
    w.contacts("alice", "bob");
    let alice = w.connect("alice", "p").await;
    let bob = w.caller("bob", "phone");
    register(&w, &bob, "fcm", "t").await;
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let dm = crate::domain::ConversationId::new("dm:alice:bob").unwrap();
    w.notifier
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // WHEN the stream-driven path handles the message
    let first = notify_stored(&w.app, &dm, 1).await;
    // THEN it fails (so the stream retries the record), having pushed nothing
    assert!(first.is_err());
    assert!(w.pushes().is_empty());
    // WHEN SNS recovers and the record is retried, twice (a retried batch)
    w.notifier
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    notify_stored(&w.app, &dm, 1).await.unwrap();
    notify_stored(&w.app, &dm, 1).await.unwrap();
    // THEN bob's phone got exactly one push: the failure released the claim, the success
    // kept it
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 1)]);
}

#[tokio::test]
async fn a_membership_event_from_the_stream_is_published_but_not_pushed() {
    // GIVEN a deployment whose pushes come off the stream (nothing in-line), and offline bob
    // with a registered device, added to a group by alice
    let w = World::with_limits(Limits {
        push_inline: false,
        ..Limits::default()
    });
    let alice = w.connect("alice", "p").await;
    let bob = w.caller("bob", "phone");
    register(&w, &bob, "fcm", "t").await;
    let r = w.request(&alice, json!({"name": "G", "members": ["bob"]}));
    crate::usecases::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    assert!(w.notifier.events.lock().unwrap().is_empty(), "not in-line");
    let group = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = crate::domain::ConversationId::new(group).unwrap();
    // WHEN the stream-driven path handles the group's creation event (seq 1)
    notify_stored(&w.app, &group, 1).await.unwrap();
    // THEN it was published, naming bob offline, and nobody was pushed
    assert!(w.pushes().is_empty());
    let events = w.notifier.events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].offline, std::slice::from_ref(&bob.user));
}

#[tokio::test]
async fn a_disabled_token_unregisters_the_device_and_the_send_still_succeeds() {
    // GIVEN bob's offline phone whose token the platform has disabled
    let w = World::new();
    w.contacts("alice", "bob");
    let alice = w.connect("alice", "p").await;
    let bob = w.caller("bob", "phone");
    register(&w, &bob, "fcm", "dead-token").await;
    let endpoint = device_endpoint(&w, &bob).await.unwrap();
    // WHEN alice writes to him
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN alice got `sent`, nothing was pushed, and the device and endpoint are forgotten
    assert_eq!(w.take(&alice)[0]["type"], "sent");
    assert!(w.pushes().is_empty());
    assert_eq!(device_endpoint(&w, &bob).await, None);
    assert_eq!(*w.notifier.unregistered.lock().unwrap(), [endpoint]);
    // WHEN bob registers a fresh token
    register(&w, &bob, "fcm", "fresh").await;
    send_to(&w, &alice, "bob", "c-2", "again").await.unwrap();
    // THEN pushes reach him again (the failed push released its claim)
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 2)]);
}

#[tokio::test]
async fn a_lagging_stream_pushes_neither_members_added_after_the_message_nor_the_removed() {
    // GIVEN a group of alice, bob and carol; bob and carol, and dave, offline with devices
    let w = World::new();
    w.contacts("alice", "bob");
    w.contacts("alice", "carol");
    w.contacts("alice", "dave");
    let alice = w.connect("alice", "p").await;
    let (bob, carol, dave) = (
        w.caller("bob", "phone"),
        w.caller("carol", "phone"),
        w.caller("dave", "phone"),
    );
    for (who, token) in [(&bob, "tb"), (&carol, "tc"), (&dave, "td")] {
        register(&w, who, "fcm", token).await;
    }
    let r = w.request(&alice, json!({"name": "G", "members": ["bob", "carol"]}));
    crate::usecases::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    let g = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let deployed = Limits {
        push_inline: false,
        ..Limits::default()
    };
    let w = World {
        app: crate::App {
            limits: deployed,
            ..w.app.clone()
        },
        ..w
    };
    // WHEN alice writes (seq 2), then removes carol (seq 3) and adds dave (seq 4), all before
    // the stream function gets to seq 2
    let r = w.request(
        &alice,
        json!({"conversation": g, "client_msg_id": "a-1", "body": "secret plans"}),
    );
    crate::usecases::send::send(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    for (action, users) in [("remove", "carol"), ("add", "dave")] {
        let r = w.request(&alice, json!({"conversation": g, "users": [users]}));
        let f = r.frame().unwrap();
        match action {
            "remove" => crate::usecases::remove_members::remove_members(&w.app, &r, f).await,
            _ => crate::usecases::add_members::add_members(&w.app, &r, f).await,
        }
        .unwrap();
    }
    assert!(w.pushes().is_empty(), "no inline pushes");
    notify_stored(&w.app, &crate::domain::ConversationId::new(g).unwrap(), 2)
        .await
        .unwrap();
    // THEN only bob is pushed: carol was removed before it was read, dave joined after it
    assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 2)]);
}

#[tokio::test]
async fn a_token_registered_on_another_account_is_taken_from_it() {
    // GIVEN bob's phone registered with token T
    let w = World::new();
    let (alice, bob, mallory) = (
        w.connect("alice", "p").await,
        w.caller("bob", "phone"),
        w.connect("mallory", "phone").await,
    );
    register(&w, &bob, "fcm", "T").await;
    // WHEN mallory registers T on her phone
    register(&w, &mallory, "fcm", "T").await;
    // THEN bob's registration is gone, and nothing of bob's is pushed any more
    assert_eq!(device_endpoint(&w, &bob).await, None);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    assert!(w.pushes().is_empty());
}
