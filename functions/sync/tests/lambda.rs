//! The `fn-sync` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    emulator_env, fixture, invoke_once, run_unconfigured, seed_direct_conversation,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-sync");

#[tokio::test]
async fn handles_a_recorded_sync_event() {
    let (vars, store) = emulator_env().await;
    seed_direct_conversation(&store).await;
    let got = invoke_once(Path::new(BIN), &vars, fixture("websocket-sync-event.json")).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    assert_eq!(got.posts.len(), 1, "{:?}", got.posts);
    let (conn, frame) = &got.posts[0];
    assert_eq!(conn, "ZLtyMcR7IAMCFZQ=");
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
    let (code, stderr) = run_unconfigured(Path::new(BIN)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MESSENGER_CONNECTIONS_TABLE"), "{stderr}");
}
