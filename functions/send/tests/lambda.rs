//! The `fn-send` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{assert_fails_fast_without, emulator_env, fixture, invoke_once};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-send");

#[tokio::test]
async fn handles_a_recorded_send_event() {
    let (vars, store) = emulator_env().await;
    let got = invoke_once(Path::new(BIN), &vars, fixture("websocket-send-event.json")).await;
    let frame = got.only_reply();
    assert_eq!(frame["type"], "sent");
    assert_eq!(
        (&frame["id"], &frame["seq"]),
        (&serde_json::json!("r-1"), &serde_json::json!(1))
    );
    use messenger::ports::MessageLog;
    let conv = messenger::domain::ConversationId::new("dm:alice:bob").unwrap();
    let stored = store.after(&conv, 0, 10, chrono::Utc::now()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].from.as_str(), stored[0].body.as_str()),
        ("alice", "hi")
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
