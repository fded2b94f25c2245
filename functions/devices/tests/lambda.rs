//! The `fn-devices` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{assert_fails_fast_without, emulator_env, fixture, invoke_once};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-devices");

#[tokio::test]
async fn handles_a_recorded_unregister_push_event() {
    let (vars, _store) = emulator_env().await;
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-devices-event.json"),
    )
    .await;
    let frame = got.only_reply();
    assert_eq!(
        frame,
        &serde_json::json!({"id":"r-10","type":"push_unregistered","device":"phone"})
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
