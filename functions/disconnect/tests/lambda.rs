//! The `fn-disconnect` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{
    FIXTURE_CONNECTION, assert_fails_fast_without, emulator_env, fixture, invoke_once,
};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-disconnect");

#[tokio::test]
async fn handles_a_recorded_disconnect_event() {
    use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
    use messenger::ports::Connections;
    let (vars, store) = emulator_env().await;
    let alice = UserId::new("alice").unwrap();
    let now = chrono::Utc::now();
    let conn = Connection {
        id: ConnectionId::new(FIXTURE_CONNECTION).unwrap(),
        user: alice.clone(),
        device: DeviceId::new("phone").unwrap(),
        connected_at: now,
        expires_at: now + chrono::Duration::hours(2),
    };
    store.put(&conn, 0).await.unwrap();
    let got = invoke_once(
        Path::new(BIN),
        &vars,
        fixture("websocket-disconnect-event.json"),
    )
    .await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    assert_eq!(store.of_users(&[alice], now).await.unwrap(), vec![]);
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_PRESENCE_TABLE").await;
}
