//! The `fn-sync` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    assert_fails_fast_without, emulator_env, fixture, invoke_once, seed_direct_conversation,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-sync");

#[tokio::test]
async fn handles_a_recorded_sync_event() {
    let (vars, store) = emulator_env().await;
    seed_direct_conversation(&store).await;
    let got = invoke_once(Path::new(BIN), &vars, fixture("websocket-sync-event.json")).await;
    let frame = got.only_reply();
    assert_eq!(
        (&frame["type"], &frame["id"], &frame["more"]),
        (&"sync".into(), &"r-3".into(), &false.into())
    );
    let messages = frame["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (&messages[0]["seq"], &messages[0]["body"]),
        (&1.into(), &"hello".into())
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
