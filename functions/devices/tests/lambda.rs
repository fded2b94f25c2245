//! The `fn-devices` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{emulator_env, fixture, invoke_once, run_unconfigured};
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
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    let (_, frame) = &got.posts[0];
    assert_eq!(
        frame,
        &serde_json::json!({"id":"r-10","type":"push_unregistered","device":"phone"})
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    let (code, stderr) = run_unconfigured(Path::new(BIN)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MESSENGER_CONNECTIONS_TABLE"), "{stderr}");
}
