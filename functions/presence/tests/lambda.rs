//! The `fn-presence` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    assert_fails_fast_without, emulator_env, fixture, invoke_once, seed_direct_conversation,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-presence");

#[tokio::test]
async fn handles_a_recorded_presence_event() {
    let (vars, store) = emulator_env().await;
    seed_direct_conversation(&store).await;
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-presence-event.json"),
    )
    .await;
    let frame = got.only_reply();
    assert_eq!(
        (&frame["type"], &frame["id"]),
        (&"presence".into(), &"r-4".into())
    );
    let users: Vec<_> = frame["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].clone())
        .collect();
    assert_eq!(
        users,
        vec![serde_json::json!("alice"), serde_json::json!("bob")]
    );
    // A status pull writes nothing of anyone's status (heartbeats are the MOCK route): alice,
    // who never connected here, has no connection and no last-seen; her item holds only the
    // token the pull took from her rate limit.
    use messenger::ports::{Connections, UserPresence};
    let alice = messenger::domain::UserId::new("alice").unwrap();
    let records = store
        .presence(std::slice::from_ref(&alice), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        records.get(&alice),
        Some(&UserPresence::default()),
        "{records:?}"
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
