//! The `fn-presence` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    emulator_env, fixture, invoke_once, run_unconfigured, seed_direct_conversation,
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
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    assert_eq!(got.posts.len(), 1, "{:?}", got.posts);
    let (conn, frame) = &got.posts[0];
    assert_eq!(conn, "ZLtyMcR7IAMCFZQ=");
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
    // The call was a heartbeat too: alice was seen just now.
    use messenger::ports::LastSeen;
    let alice = messenger::domain::UserId::new("alice").unwrap();
    assert!(
        store
            .get(std::slice::from_ref(&alice))
            .await
            .unwrap()
            .contains_key(&alice)
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    let (code, stderr) = run_unconfigured(Path::new(BIN)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MESSENGER_CONNECTIONS_TABLE"), "{stderr}");
}
