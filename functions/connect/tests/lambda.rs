//! The `fn-connect` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    FIXTURE_CONNECTION, assert_fails_fast_without, emulator_env, fixture, invoke_once,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-connect");

#[tokio::test]
async fn handles_a_recorded_connect_event() {
    let (vars, store) = emulator_env().await;
    // The recorded event, replayed now: its record lives 2 h 5 min from `connectedAt`.
    let mut event = fixture("websocket-connect-event.json");
    event["requestContext"]["connectedAt"] = chrono::Utc::now().timestamp_millis().into();
    let got = invoke_once(Path::new(BIN), &vars, event).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    assert!(got.posts.is_empty(), "no PostToConnection during $connect");
    use messenger::ports::Connections;
    let alice = messenger::domain::UserId::new("alice").unwrap();
    let conns = store.of_users(&[alice], chrono::Utc::now()).await.unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        (conns[0].id.as_str(), conns[0].device.as_str()),
        (FIXTURE_CONNECTION, "phone")
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
