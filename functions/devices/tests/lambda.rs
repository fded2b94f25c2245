//! The `fn-devices` binary handles a recorded API Gateway event against a registered device,
//! and refuses to start unconfigured.

use messenger::domain::{DeviceId, UserId};
use messenger::ports::{Notifier, PushDevices};
use messenger::push::{Platform, PushDevice};
use messenger_aws::testing::{
    assert_fails_fast_without, emulator_endpoint, emulator_env, fixture, invoke_once,
    platform_application,
};
use messenger_aws::{PlatformApps, SnsNotifier};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-devices");

#[tokio::test]
async fn handles_a_recorded_unregister_push_event_for_a_registered_device() {
    let (mut vars, store) = emulator_env().await;
    let sdk = messenger_aws::sdk::for_endpoint(&emulator_endpoint()).await;
    let app = platform_application(&sdk).await;
    // Alice's phone (the recorded event's caller) is registered, as `register_push` leaves it.
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
    let token = format!("token-{}", messenger::contract::tag());
    let endpoint = notifier
        .register(Platform::Fcm, &token, &alice, None)
        .await
        .unwrap();
    let device = PushDevice {
        user: alice.clone(),
        device: phone.clone(),
        platform: Platform::Fcm,
        token,
        endpoint: endpoint.clone(),
        preview: false,
        registered_at: chrono::Utc::now(),
    };
    store.put(&device).await.unwrap();

    vars.push(("MESSENGER_FCM_APP_ARN".into(), app));
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-devices-event.json"),
    )
    .await;
    assert_eq!(
        got.only_reply(),
        &serde_json::json!({"id":"r-10","type":"push_unregistered","device":"phone"})
    );
    assert_eq!(
        PushDevices::get(&store, &alice, &phone).await.unwrap(),
        None
    );
    let sns = aws_sdk_sns::Client::new(&sdk);
    let gone = sns
        .get_endpoint_attributes()
        .endpoint_arn(&endpoint)
        .send()
        .await;
    assert!(
        gone.as_ref().is_err_and(|e| e
            .as_service_error()
            .is_some_and(|e| e.is_not_found_exception())),
        "the SNS endpoint is deleted: {gone:?}"
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
