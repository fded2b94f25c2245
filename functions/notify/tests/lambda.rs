//! The `fn-notify` binary handles a recorded DynamoDB Streams batch on the emulators (DynamoDB on
//! MiniStack; SNS and SQS on moto, which records what each platform endpoint received): the
//! offline recipient's device gets a push, the topic gets the event (SQS subscriber), records
//! that are not inserted messages are skipped; and it refuses to start unconfigured.

use messenger::domain::{ConversationId, DeviceId, UserId};
use messenger::ports::{Notifier, PushDevices};
use messenger::push::{Platform, PushClaim, PushDevice};
use messenger_aws::testing::{
    assert_fails_fast_without, emulator_env, events_before_marker, fixture, invoke_once,
    moto_endpoint, moto_platform_publishes, platform_application, seed_direct_conversation,
    topic_with_queue,
};
use messenger_aws::{PlatformApps, SnsNotifier};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-notify");

#[tokio::test]
async fn pushes_the_offline_recipient_and_publishes_the_topic_event() {
    let (mut vars, store) = emulator_env().await;
    seed_direct_conversation(&store).await; // bob wrote seq 1 to alice, who is offline
    // SNS (and the topic's SQS subscriber) on moto, which records what each platform endpoint
    // received; DynamoDB on MiniStack. The binary reaches each through its own endpoint.
    let moto = moto_endpoint();
    vars.push(("AWS_ENDPOINT_URL_SNS".into(), moto.clone()));
    let sdk = messenger_aws::sdk::for_endpoint(&moto).await;
    let tag = messenger::contract::tag();
    let app = platform_application(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk).await;

    // Alice's phone is registered for push (as `register_push` would do it).
    let (alice, phone) = (
        UserId::new("alice").unwrap(),
        DeviceId::new("phone").unwrap(),
    );
    let notifier = SnsNotifier::new(
        &sdk,
        PlatformApps {
            fcm: Some(app.clone()),
            ..Default::default()
        },
        None,
    );
    let endpoint = notifier
        .register(Platform::Fcm, &format!("token-{tag}"), &alice, None)
        .await
        .unwrap();
    let device = PushDevice {
        user: alice.clone(),
        device: phone.clone(),
        platform: Platform::Fcm,
        token: format!("token-{tag}"),
        endpoint: endpoint.clone(),
        preview: false,
        registered_at: chrono::Utc::now(),
    };
    store.put(&device).await.unwrap();

    vars.push(("MESSENGER_FCM_APP_ARN".into(), app));
    vars.push(("MESSENGER_TOPIC_ARN".into(), topic.clone()));
    let got = invoke_once(Path::new(BIN), &vars, fixture("dynamodb-stream-event.json")).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response, serde_json::json!({"batchItemFailures": []}));
    assert!(got.posts.is_empty(), "notify posts to no connection");

    // SNS received one push for alice's phone, content-free, for seq 1 from bob...
    let received = moto_platform_publishes(&moto, &endpoint).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let fcm: serde_json::Value =
        serde_json::from_str(received[0]["GCM"].as_str().expect("an FCM payload")).unwrap();
    let note = &fcm["fcmV1Message"]["message"];
    assert_eq!(
        note["notification"],
        serde_json::json!({"title":"bob","body":"New message"})
    );
    assert_eq!(
        (
            note["data"]["conversation"].as_str(),
            note["data"]["seq"].as_str()
        ),
        (Some("dm:alice:bob"), Some("1"))
    );
    // ...and its claim for seq 1 stands, so another push for it is coalesced.
    let conv = ConversationId::new("dm:alice:bob").unwrap();
    let now = chrono::Utc::now();
    let again = PushClaim {
        user: alice,
        device: phone,
        conversation: conv,
        seq: 1,
        at: now,
        not_before: now - chrono::Duration::seconds(60),
        acked: 0,
    };
    assert!(
        !store.claim(&again).await.unwrap(),
        "the push for seq 1 was claimed and sent"
    );

    // One topic event, for the inserted message only (the head's MODIFY is skipped): all the
    // function published had reached the queue when it answered.
    let events = events_before_marker(&sdk, &topic, &queue).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (event, _) = &events[0];
    assert_eq!(
        (event["seq"].as_u64(), event["from"].as_str()),
        (Some(1), Some("bob"))
    );
    assert_eq!(event["offline"], serde_json::json!(["alice"]));
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
