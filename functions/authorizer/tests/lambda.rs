//! The `fn-authorizer` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{assert_fails_fast_without, fixture, invoke_once};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-authorizer");

#[tokio::test]
async fn handles_a_recorded_authorizer_event() {
    use messenger::domain::{DeviceId, UserId};
    let now = chrono::Utc::now();
    let alice = UserId::new("alice").unwrap();
    let phone = DeviceId::new("phone").unwrap();
    let token = messenger::auth::mint(
        b"s3cret",
        &alice,
        Some(&phone),
        now,
        now + chrono::Duration::hours(1),
    );
    let vars = vec![("MESSENGER_JWT_SECRET".to_owned(), "s3cret".to_owned())];
    let mut event = fixture("websocket-authorizer-event.json");
    event["queryStringParameters"]["token"] = token.clone().into();
    event["multiValueQueryStringParameters"]["token"] = serde_json::json!([token]);
    let got = invoke_once(Path::new(BIN), &vars, event.clone()).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(
        got.response["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{:?}",
        got.response
    );
    assert_eq!(
        got.response["context"],
        serde_json::json!({"userId": "alice", "device": "phone"})
    );

    event["queryStringParameters"]["token"] = "forged.token.here".into();
    let got = invoke_once(Path::new(BIN), &vars, event).await;
    assert_eq!(
        got.response["policyDocument"]["Statement"][0]["Effect"], "Deny",
        "{:?}",
        got.response
    );
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_JWT_SECRET").await;
}
