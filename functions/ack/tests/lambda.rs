//! The `fn-ack` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    FIXTURE_CONNECTION, assert_fails_fast_without, emulator_env, fixture, invoke_once,
    seed_direct_conversation,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-ack");

#[tokio::test]
async fn handles_a_recorded_ack_event() {
    let (vars, store) = emulator_env().await;
    seed_direct_conversation(&store).await;
    let got = invoke_once(Path::new(BIN), &vars, fixture("websocket-ack-event.json")).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    let acked: Vec<_> = got
        .posts
        .iter()
        .filter(|(c, _)| c == FIXTURE_CONNECTION)
        .collect();
    assert_eq!(acked.len(), 1, "{:?}", got.posts);
    assert_eq!(acked[0].1["type"], "acked");
    assert_eq!(acked[0].1["id"], "r-2");
    use messenger::ports::Conversations;
    let m = store
        .membership(
            &messenger::domain::ConversationId::new("dm:alice:bob").unwrap(),
            &messenger::domain::UserId::new("alice").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.delivered, m.read), (1, 1));
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
