//! The `fn-default` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{assert_fails_fast_without, emulator_env, fixture, invoke_once};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-default");

#[tokio::test]
async fn handles_a_recorded_default_event() {
    let (vars, _store) = emulator_env().await;
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-default-event.json"),
    )
    .await;
    let frame = got.only_reply();
    assert_eq!(
        (&frame["type"], &frame["code"], &frame["id"]),
        (&"error".into(), &"unknown_action".into(), &"r-5".into())
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
