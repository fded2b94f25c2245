//! Offline push and topic events on SNS: MiniStack for the whole flow (its SNS accepts platform
//! endpoints and delivers topic messages to SQS), moto for the disabled-endpoint path (MiniStack
//! accepts publishes to disabled endpoints; AWS and moto refuse them). With faults injected
//! under the SNS client: throttled, failed and timed-out publishes are retried; one failing on
//! every attempt is an error (the stream-driven function then retries the record).

mod common;

use async_trait::async_trait;
use aws_config::SdkConfig;
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger::ports::{Notifier, NotifyError, PostError, Poster};
use messenger::push::{MessageEvent, Platform};
use messenger::request::{Caller, Request};
use messenger::{App, Limits, Stores, usecases};
use messenger_aws::{PlatformApps, SnsNotifier};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A gateway stand-in: every connection is live except those marked gone (410).
#[derive(Default)]
struct Gateway {
    gone: Mutex<HashSet<ConnectionId>>,
    frames: Mutex<Vec<(ConnectionId, Value)>>,
}

#[async_trait]
impl Poster for Gateway {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        if self.gone.lock().unwrap().contains(conn) {
            return Err(PostError::Gone);
        }
        let frame = serde_json::from_str(data).expect("frames are JSON");
        self.frames.lock().unwrap().push((conn.clone(), frame));
        Ok(())
    }

    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        self.gone.lock().unwrap().insert(conn.clone());
        Ok(())
    }
}

impl Gateway {
    fn last_reply(&self, conn: &ConnectionId) -> Value {
        let frames = self.frames.lock().unwrap();
        frames
            .iter()
            .rev()
            .find(|(c, _)| c == conn)
            .map(|(_, v)| v.clone())
            .expect("a reply")
    }
}

async fn sdk(endpoint: &str) -> SdkConfig {
    messenger_aws::sdk::for_endpoint(endpoint).await
}

fn caller(user: &str, tag: &str) -> Caller {
    Caller {
        user: UserId::new(format!("{user}-{tag}")).unwrap(),
        device: DeviceId::new("phone").unwrap(),
        connection: ConnectionId::new(format!("{user}-phone-{tag}")).unwrap(),
        connected_at: None,
    }
}

struct World {
    app: App,
    gateway: Arc<Gateway>,
    notifier: SnsNotifier,
    tag: String,
}

impl World {
    async fn new(sns: &SdkConfig) -> Self {
        let store = common::store().await;
        let apps = PlatformApps {
            fcm: Some(messenger_aws::testing::platform_application(sns).await),
            ..PlatformApps::default()
        };
        let notifier = SnsNotifier::new(sns, apps, None);
        let gateway = Arc::new(Gateway::default());
        let app = App::new(Stores::from_one(store), gateway.clone(), Limits::default())
            .with_notifier(Arc::new(notifier.clone()));
        Self {
            app,
            gateway,
            notifier,
            tag: messenger::contract::tag(),
        }
    }

    async fn run(&self, who: &Caller, body: Value) -> Value {
        let req = Request::new(who.clone(), None, "req-sns", body);
        let action = req.action().unwrap_or_default().to_owned();
        let app = &self.app;
        let result = match action.as_str() {
            "register_push" => {
                usecases::register_push::register_push(app, &req, req.frame().unwrap()).await
            }
            "unregister_push" => usecases::unregister_push::unregister_push(app, &req).await,
            "send" => usecases::send::send(app, &req, req.frame().unwrap()).await,
            "ack" => usecases::ack::ack(app, &req, req.frame().unwrap()).await,
            "accept" => usecases::accept::accept(app, &req, req.frame().unwrap()).await,
            other => panic!("no {other}"),
        };
        result.unwrap_or_else(|e| panic!("{action}: {e}"));
        self.gateway.last_reply(&who.connection)
    }

    /// Registers `who`'s phone for FCM pushes; with `online` its connection is live too.
    async fn device(&self, user: &str, online: bool) -> Caller {
        let who = caller(user, &self.tag);
        self.run(&who, json!({"action":"register_push","platform":"fcm","token":format!("token-{user}-{}", self.tag)})).await;
        if online {
            let now = chrono::Utc::now();
            let conn = Connection {
                id: who.connection.clone(),
                user: who.user.clone(),
                device: who.device.clone(),
                // Past the grace a connection still in $connect gets (a 410 deletes it).
                connected_at: now - chrono::Duration::minutes(1),
                expires_at: now + chrono::Duration::hours(2),
            };
            self.app.stores.connections.put(&conn, 0).await.unwrap();
        }
        who
    }

    async fn send(&self, from: &Caller, to: &Caller, n: usize) -> Value {
        let to = to.user.to_string();
        let mut last = Value::Null;
        for i in 0..n {
            let cmid = format!("{}-{i}-{}", from.user, messenger::contract::tag());
            last = self
                .run(
                    from,
                    json!({"action":"send","to":to,"client_msg_id":cmid,"body":"hi"}),
                )
                .await;
            assert_eq!(last["type"], "sent", "{last}");
        }
        last
    }

    /// Makes `a` and `b` contacts: `b` writes to `a` (a message request, never pushed), `a`
    /// accepts. Their 1:1 then holds that message as seq 1.
    async fn contacts(&self, a: &Caller, b: &Caller) {
        // `b` may be offline: its `sent` goes nowhere; `a`'s accept shows the message stored.
        let cmid = format!("hello-{}", self.tag);
        self.run(
            b,
            json!({"action":"send","to":a.user,"client_msg_id":cmid,"body":"hello"}),
        )
        .await;
        let conv = messenger::domain::ConversationId::direct(&a.user, &b.user);
        let r = self
            .run(a, json!({"action":"accept","conversation":conv}))
            .await;
        assert_eq!(r["state"], "accepted", "{r}");
    }

    fn pushes(&self) -> u64 {
        self.notifier.counters().snapshot().0
    }

    /// The notifications moto's SNS received for `who`'s registered device (its platform
    /// payload for FCM: `{"fcmV1Message": …}`).
    async fn received(&self, who: &Caller) -> Vec<Value> {
        let device = self
            .app
            .stores
            .push_devices
            .get(&who.user, &who.device)
            .await;
        let endpoint = device.unwrap().expect("a registered device").endpoint;
        messenger_aws::testing::moto_platform_publishes(&moto(), &endpoint)
            .await
            .iter()
            .map(|m| serde_json::from_str(m["GCM"].as_str().expect("an FCM payload")).unwrap())
            .collect()
    }
}

/// The seqs of FCM notifications, sorted.
fn seqs(notifications: &[Value]) -> Vec<u64> {
    let mut seqs: Vec<u64> = notifications
        .iter()
        .map(|n| {
            n["fcmV1Message"]["message"]["data"]["seq"]
                .as_str()
                .expect("a seq")
                .parse()
                .unwrap()
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

fn moto() -> String {
    messenger_aws::testing::moto_endpoint()
}

#[tokio::test]
async fn registering_creates_an_endpoint_and_a_new_token_updates_it() {
    let sns = sdk(&common::endpoint()).await;
    let app = messenger_aws::testing::platform_application(&sns).await;
    let notifier = SnsNotifier::new(
        &sns,
        PlatformApps {
            fcm: Some(app),
            ..Default::default()
        },
        None,
    );
    let bob = UserId::new("bob").unwrap();
    let client = aws_sdk_sns::Client::new(&sns);
    let (old, fresh) = (
        format!("old-{}", messenger::contract::tag()),
        format!("fresh-{}", messenger::contract::tag()),
    );
    let first = notifier
        .register(Platform::Fcm, &old, &bob, None)
        .await
        .unwrap();
    let attrs = client
        .get_endpoint_attributes()
        .endpoint_arn(&first)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes.unwrap();
    assert_eq!(
        (attrs["Token"].as_str(), attrs["Enabled"].as_str()),
        (old.as_str(), "true")
    );

    let second = notifier
        .register(Platform::Fcm, &fresh, &bob, Some(&first))
        .await
        .unwrap();
    assert_eq!(second, first, "a new token updates the same endpoint");
    let attrs = client
        .get_endpoint_attributes()
        .endpoint_arn(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(attrs.attributes.unwrap()["Token"], fresh);

    notifier.unregister(&first).await.unwrap();
    assert!(
        client
            .get_endpoint_attributes()
            .endpoint_arn(&first)
            .send()
            .await
            .is_err(),
        "deleted"
    );
    let apns = notifier
        .register(Platform::Apns, "t", &bob, None)
        .await
        .unwrap_err();
    assert!(matches!(apns, NotifyError::Unsupported(_)), "{apns}");
}

#[tokio::test]
async fn offline_members_get_one_coalesced_push_online_ones_none_stale_ones_one() {
    // On moto, which records what each platform endpoint received (MiniStack's SNS accepts
    // platform publishes and keeps nothing of them).
    let sns = sdk(&moto()).await;
    let w = World::new(&sns).await;
    let alice = w.device("alice", true).await;
    let bob = w.device("bob", false).await;
    w.contacts(&alice, &bob).await;

    // A burst to an offline recipient: one push, content-free, for the first message.
    w.send(&alice, &bob, 3).await;
    let got = w.received(&bob).await;
    assert_eq!(seqs(&got), [2]);
    let note = &got[0]["fcmV1Message"]["message"];
    assert_eq!(
        note["notification"],
        json!({"title": alice.user.as_str(), "body": "New message"})
    );
    assert_eq!(note["data"]["from"], alice.user.as_str());
    // Bob reads up to the pushed message on another device: the next one pushes again.
    let conv = format!("dm:{}:{}", alice.user, bob.user);
    w.run(
        &bob,
        json!({"action":"ack","conversation":conv,"seq":4,"kind":"read"}),
    )
    .await;
    w.send(&alice, &bob, 1).await;
    assert_eq!(seqs(&w.received(&bob).await), [2, 5]);

    // Online: no push.
    let carol = w.device("carol", true).await;
    w.contacts(&alice, &carol).await;
    w.send(&alice, &carol, 2).await;
    assert_eq!(seqs(&w.received(&carol).await), Vec::<u64>::new());

    // Connected on paper, gone in fact (410): pushed once, and the connection is forgotten.
    let dave = w.device("dave", true).await;
    w.gateway
        .gone
        .lock()
        .unwrap()
        .insert(dave.connection.clone());
    w.contacts(&alice, &dave).await;
    w.send(&alice, &dave, 1).await;
    assert_eq!(seqs(&w.received(&dave).await), [2]);
    let conns = w
        .app
        .stores
        .connections
        .of_users(std::slice::from_ref(&dave.user), chrono::Utc::now())
        .await
        .unwrap();
    assert!(conns.is_empty());
    let (sent, _, failed) = w.notifier.counters().snapshot();
    assert_eq!((sent, failed), (3, 0), "the notifier's own count agrees");
}

#[tokio::test]
async fn a_disabled_endpoint_unregisters_the_device_and_the_send_still_succeeds() {
    // moto, because MiniStack accepts publishes to disabled endpoints.
    let sns = sdk(&moto()).await;
    let w = World::new(&sns).await;
    let alice = w.device("alice", true).await;
    let bob = w.device("bob", false).await;
    w.contacts(&alice, &bob).await;
    let endpoint = w
        .app
        .stores
        .push_devices
        .get(&bob.user, &bob.device)
        .await
        .unwrap()
        .unwrap()
        .endpoint;
    // The platform reported the token dead, so SNS disabled the endpoint.
    let client = aws_sdk_sns::Client::new(&sns);
    client
        .set_endpoint_attributes()
        .endpoint_arn(&endpoint)
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();

    let sent = w.send(&alice, &bob, 1).await;
    assert_eq!(sent["seq"], 2, "the send succeeded");
    assert_eq!(w.pushes(), 0);
    assert_eq!(w.notifier.counters().snapshot().2, 1, "one refused publish");
    assert_eq!(
        w.app
            .stores
            .push_devices
            .get(&bob.user, &bob.device)
            .await
            .unwrap(),
        None
    );
    assert!(
        client
            .get_endpoint_attributes()
            .endpoint_arn(&endpoint)
            .send()
            .await
            .is_err(),
        "endpoint deleted"
    );

    // A fresh token brings the device back. (Unique per run: moto finds an endpoint by its
    // token in any platform application, unlike SNS, so an earlier run's would come back.)
    let fresh = format!("fresh-{}", w.tag);
    w.run(
        &bob,
        json!({"action":"register_push","platform":"fcm","token":fresh}),
    )
    .await;
    w.send(&alice, &bob, 1).await;
    assert_eq!(seqs(&w.received(&bob).await), [3]);
    assert_eq!(w.pushes(), 1);
}

#[tokio::test]
async fn every_message_event_reaches_an_sqs_subscriber_with_filterable_attributes() {
    let sdk = sdk(&common::endpoint()).await;
    let (topic, queue) = messenger_aws::testing::topic_with_queue(&sdk).await;

    let notifier = SnsNotifier::new(&sdk, PlatformApps::default(), Some(topic));
    let event = MessageEvent {
        conversation: messenger::domain::ConversationId::new("dm:alice:bob").unwrap(),
        seq: 7,
        from: UserId::new("alice").unwrap(),
        sent_at: "2026-11-29T05:58:01.472Z".into(),
        offline: vec![UserId::new("bob").unwrap()],
    };
    notifier.publish(&event).await.unwrap();

    let events = messenger_aws::testing::received_events(&sdk, &queue).await;
    let (body, attributes) = events.first().expect("the event reached the queue");
    assert_eq!(
        body,
        &json!({"conversation":"dm:alice:bob","seq":7,"from":"alice","sent_at":"2026-11-29T05:58:01.472Z","offline":["bob"]})
    );
    assert_eq!(attributes["user"]["Value"], "alice");
    assert_eq!(attributes["conversation"]["Value"], "dm:alice:bob");
}

#[tokio::test]
async fn throttled_failed_and_timed_out_publishes_are_retried_and_arrive_once() {
    use messenger_aws::faults::{Fault, FaultPlan, FaultyHttpClient};
    let sdk = sdk(&common::endpoint()).await;
    let (topic, queue) = messenger_aws::testing::topic_with_queue(&sdk).await;
    // GIVEN SNS throttling, failing or timing out the first two of every Publish's three
    // attempts
    let plan = Arc::new(
        FaultPlan::new(messenger_aws::faults::seed_from_env(), 1.0)
            .only(&[Fault::Throttle, Fault::ServerError, Fault::Timeout])
            .on_operations(&["Publish"])
            .sparing_last_attempt(),
    );
    let faulty = FaultyHttpClient::wrap(&sdk, plan.clone());
    let notifier = SnsNotifier::new(&faulty, PlatformApps::default(), Some(topic));
    let event = MessageEvent {
        conversation: messenger::domain::ConversationId::new("dm:alice:bob").unwrap(),
        seq: 8,
        from: UserId::new("alice").unwrap(),
        sent_at: "2026-11-29T05:58:01.472Z".into(),
        offline: vec![],
    };
    // WHEN a message event is published
    notifier.publish(&event).await.unwrap();
    // THEN the third attempt got it through, and the subscriber received it once
    assert_eq!(plan.total_injected(), 2, "{}", plan.summary());
    let events = messenger_aws::testing::received_events(&sdk, &queue).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0["seq"], 8);

    // WHEN every attempt fails
    let always = Arc::new(
        FaultPlan::new(1, 1.0)
            .only(&[Fault::Throttle])
            .on_operations(&["Publish"]),
    );
    let notifier = SnsNotifier::new(
        &FaultyHttpClient::wrap(&sdk, always.clone()),
        PlatformApps::default(),
        Some(messenger_aws::testing::topic_with_queue(&sdk).await.0),
    );
    // THEN the publish is an error after three attempts
    let r = notifier.publish(&event).await;
    assert!(matches!(r, Err(NotifyError::Failed(_))), "{r:?}");
    assert_eq!(always.total_injected(), 3);
}

/// A token another user registers is taken from its holder (their registration goes, so nothing
/// of theirs is pushed to it any more); the new holder's token update and unregistration then
/// touch only their own pushes; the old holder registering it again gets them back.
async fn a_token_registered_by_another_user_is_taken_from_its_holder(sns: &SdkConfig) {
    let w = World::new(sns).await;
    let alice = w.device("alice", true).await;
    let (bob, mallory) = (caller("bob", &w.tag), caller("mallory", &w.tag));
    w.contacts(&alice, &bob).await;
    let shared = format!("shared-{}", w.tag);
    let register = |token: &str| json!({"action":"register_push","platform":"fcm","token":token});
    w.run(&bob, register(&shared)).await;
    let devices = &w.app.stores.push_devices;
    let bobs = devices.get(&bob.user, &bob.device).await.unwrap().unwrap();

    assert_eq!(
        w.run(&mallory, register(&shared)).await["type"],
        "push_registered"
    );
    assert_eq!(devices.get(&bob.user, &bob.device).await.unwrap(), None);
    let mallorys = devices
        .get(&mallory.user, &mallory.device)
        .await
        .unwrap()
        .unwrap();
    let client = aws_sdk_sns::Client::new(sns);
    let attrs = client
        .get_endpoint_attributes()
        .endpoint_arn(&mallorys.endpoint)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attrs["Token"], shared);
    assert_eq!(attrs["CustomUserData"], mallory.user.as_str());
    println!(
        "the token kept its endpoint: {}",
        mallorys.endpoint == bobs.endpoint
    );
    if mallorys.endpoint != bobs.endpoint {
        // The platform gave the token a new endpoint: bob's old one is deleted.
        assert!(
            client
                .get_endpoint_attributes()
                .endpoint_arn(&bobs.endpoint)
                .send()
                .await
                .is_err()
        );
    }
    w.send(&alice, &bob, 1).await;
    assert_eq!(w.pushes(), 0, "bob holds no token any more");

    // Mallory points the endpoint at another token, then unregisters: bob is not affected.
    w.run(&mallory, register(&format!("mallory-{}", w.tag)))
        .await;
    w.send(&alice, &bob, 1).await;
    assert_eq!(w.pushes(), 0);
    w.run(&mallory, json!({"action":"unregister_push"})).await;

    w.run(&bob, register(&shared)).await;
    w.send(&alice, &bob, 1).await;
    assert_eq!(w.pushes(), 1, "bob's token is his again");
}

#[tokio::test]
async fn a_token_registered_by_another_user_is_taken_from_its_holder_on_ministack() {
    let sns = sdk(&common::endpoint()).await;
    a_token_registered_by_another_user_is_taken_from_its_holder(&sns).await;
}

#[tokio::test]
async fn a_token_registered_by_another_user_is_taken_from_its_holder_on_moto() {
    let moto = std::env::var("MESSENGER_MOTO_ENDPOINT")
        .expect("MESSENGER_MOTO_ENDPOINT is not set: run the README's test command (tests/run.sh)");
    a_token_registered_by_another_user_is_taken_from_its_holder(&sdk(&moto).await).await;
}
