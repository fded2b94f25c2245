//! The `fn-groups` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{assert_fails_fast_without, emulator_env, fixture, invoke_once};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-groups");

#[tokio::test]
async fn handles_a_recorded_create_group_event() {
    let (vars, store) = emulator_env().await;
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-groups-event.json"),
    )
    .await;
    let frame = got.only_reply();
    assert_eq!(
        (&frame["type"], &frame["id"], &frame["seq"]),
        (&"group".into(), &"r-9".into(), &1.into())
    );
    let conv =
        messenger::domain::ConversationId::new(frame["conversation"].as_str().unwrap()).unwrap();
    use messenger::ports::Conversations;
    let members = store.members(&conv).await.unwrap();
    let roles: Vec<_> = members
        .iter()
        .map(|m| (m.user.to_string(), m.role))
        .collect();
    use messenger::domain::Role;
    assert_eq!(
        roles,
        [
            ("alice".to_string(), Role::Admin),
            ("bob".to_string(), Role::Member)
        ]
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
