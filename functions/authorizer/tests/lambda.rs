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
async fn verifies_an_issuer_token_against_its_jwks_and_fails_the_invocation_without_keys() {
    use messenger::auth::testing::TestKey;
    use messenger_lambda::testing::{JwksServer, Reply};
    let server = JwksServer::start().await;
    let key = TestKey::es256_a("k1");
    server.publish("/keys", &[&key]);
    let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool";
    let vars = |jwks: &str| {
        [
            ("MESSENGER_JWT_ISSUER", issuer),
            ("MESSENGER_JWT_AUDIENCE", "app-client"),
            ("MESSENGER_JWKS_URL", jwks),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    };
    let now = chrono::Utc::now().timestamp();
    let token = key.sign(&serde_json::json!({
        "iss": issuer, "token_use": "access", "client_id": "app-client",
        "sub": "5e1c-alice", "exp": now + 600,
    }));
    let mut event = fixture("websocket-authorizer-event.json");
    event["queryStringParameters"]["token"] = token.clone().into();
    event["queryStringParameters"]["device"] = "tablet".into();
    let got = invoke_once(Path::new(BIN), &vars(&server.url("/keys")), event.clone()).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(
        got.response["context"],
        serde_json::json!({"userId": "5e1c-alice", "device": "tablet"}),
        "{:?}",
        got.response
    );

    // The issuer's keys cannot be had: the invocation fails (API Gateway answers 500).
    server.serve("/down", Reply::Status(503));
    let got = invoke_once(Path::new(BIN), &vars(&server.url("/down")), event).await;
    assert!(got.is_error, "{got:?}");
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    // Either kind of token would do: the message names both.
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_JWT_SECRET").await;
    assert_fails_fast_without(Path::new(BIN), "MESSENGER_JWT_ISSUER").await;
}
