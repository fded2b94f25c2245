//! The authorizer against a local JWKS server over HTTP: ES256 tokens, key rotation, OIDC
//! discovery, and issuers that fail (errors, garbage, no answer), through the real HTTP adapter.

use chrono::{DateTime, Duration, Utc};
use messenger::auth::testing::TestKey;
use messenger::auth::{Authenticator, IssuerConfig, IssuerVerifier};
use messenger_lambda::authorizer::{self, allows};
use messenger_lambda::jwks::{FetchTimeouts, HttpJwks, JwksLocation};
use messenger_lambda::testing::{JwksServer, Reply};
use messenger_lambda::{AuthorizerEvent, AuthorizerResponse};
use serde_json::json;
use std::sync::Arc;

const AUDIENCE: &str = "chat-app";

fn authenticator(issuer: &str, location: JwksLocation, timeouts: FetchTimeouts) -> Authenticator {
    let source = HttpJwks::new(location, timeouts).expect("a valid JWKS location");
    let config = IssuerConfig::new(issuer, vec![AUDIENCE.into()]);
    Authenticator::Issuer(Arc::new(IssuerVerifier::new(config, Arc::new(source))))
}

fn token(key: &TestKey, issuer: &str, user: &str, now: DateTime<Utc>) -> String {
    key.sign(&json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": user,
        "exp": (now + Duration::hours(1)).timestamp(),
    }))
}

fn event(token: &str) -> AuthorizerEvent {
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect",
        "queryStringParameters": {"token": token, "device": "phone"},
        "requestContext": {"stage": "prod"}
    }))
    .unwrap()
}

async fn decide(
    auth: &Authenticator,
    token: &str,
    now: DateTime<Utc>,
) -> Result<AuthorizerResponse, messenger::auth::JwksError> {
    authorizer::handle(auth, &event(token), now).await
}

#[tokio::test]
async fn an_es256_token_verifies_against_the_issuers_jwks_url() {
    let server = JwksServer::start().await;
    let key = TestKey::es256_a("es-1");
    server.publish("/keys", &[&key]);
    let issuer = "https://id.example.com/";
    let auth = authenticator(
        issuer,
        JwksLocation::Url(server.url("/keys")),
        FetchTimeouts::default(),
    );
    let now = Utc::now();
    let r = decide(&auth, &token(&key, issuer, "alice", now), now)
        .await
        .unwrap();
    assert!(allows(&r));
    assert_eq!(r.context, json!({"userId": "alice", "device": "phone"}));
    let r = decide(&auth, &token(&key, issuer, "bob", now), now)
        .await
        .unwrap();
    assert!(allows(&r));
    assert_eq!(
        server.hits("/keys"),
        1,
        "the keys are fetched once, then cached"
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_one_rate_limited_refresh() {
    let server = JwksServer::start().await;
    let (old, new) = (TestKey::es256_a("2024"), TestKey::es256_b("2025"));
    server.publish("/keys", &[&old]);
    let issuer = "https://id.example.com/";
    let auth = authenticator(
        issuer,
        JwksLocation::Url(server.url("/keys")),
        FetchTimeouts::default(),
    );
    let t0 = Utc::now();
    assert!(allows(
        &decide(&auth, &token(&old, issuer, "alice", t0), t0)
            .await
            .unwrap()
    ));

    // The issuer rotates: it now publishes the new key beside the old one.
    server.publish("/keys", &[&old, &new]);
    // Within the refresh interval of the first fetch the new kid is not fetched for.
    let t1 = t0 + Duration::seconds(5);
    assert!(!allows(
        &decide(&auth, &token(&new, issuer, "bob", t1), t1)
            .await
            .unwrap()
    ));
    assert_eq!(server.hits("/keys"), 1);
    // After it, one refresh finds the new key; old tokens still verify.
    let t2 = t0 + Duration::seconds(31);
    assert!(allows(
        &decide(&auth, &token(&new, issuer, "bob", t2), t2)
            .await
            .unwrap()
    ));
    assert!(allows(
        &decide(&auth, &token(&old, issuer, "alice", t2), t2)
            .await
            .unwrap()
    ));
    assert_eq!(server.hits("/keys"), 2);
    // A kid nobody publishes, right after: refused, and no fetch.
    let forged = TestKey::es256_b("made-up");
    let t3 = t2 + Duration::seconds(1);
    assert!(!allows(
        &decide(&auth, &token(&forged, issuer, "eve", t3), t3)
            .await
            .unwrap()
    ));
    assert_eq!(server.hits("/keys"), 2);
}

#[tokio::test]
async fn discovery_finds_the_jwks_uri_and_checks_the_issuer_it_names() {
    let server = JwksServer::start().await;
    let key = TestKey::rs256("rs-1");
    server.publish("/tenant/keys", &[&key]);
    let issuer = server.url("/tenant");
    server.discovery(&issuer, "/tenant/keys");
    let auth = authenticator(
        &issuer,
        JwksLocation::Discovery {
            issuer: issuer.clone(),
        },
        FetchTimeouts::default(),
    );
    let now = Utc::now();
    assert!(allows(
        &decide(&auth, &token(&key, &issuer, "alice", now), now)
            .await
            .unwrap()
    ));
    assert_eq!(server.hits("/tenant/.well-known/openid-configuration"), 1);

    // A discovery document for another issuer is not followed.
    let doc = json!({"issuer": "https://evil.example.com", "jwks_uri": server.url("/tenant/keys")});
    server.serve(
        "/other/.well-known/openid-configuration",
        Reply::Json(doc.to_string()),
    );
    let other = server.url("/other");
    let auth = authenticator(
        &other,
        JwksLocation::Discovery {
            issuer: other.clone(),
        },
        FetchTimeouts::default(),
    );
    assert!(
        decide(&auth, &token(&key, &other, "alice", now), now)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_issuer_that_fails_or_hangs_lets_nobody_in() {
    let server = JwksServer::start().await;
    let key = TestKey::es256_a("k");
    server.serve("/error", Reply::Status(500));
    server.serve("/html", Reply::Json("<html>sign in</html>".into()));
    server.serve("/hang", Reply::Hang);
    let issuer = "https://id.example.com/";
    let now = Utc::now();
    let quick = FetchTimeouts {
        connect: std::time::Duration::from_secs(2),
        total: std::time::Duration::from_millis(300),
    };
    for path in ["/error", "/html", "/hang", "/missing"] {
        let auth = authenticator(issuer, JwksLocation::Url(server.url(path)), quick);
        let got = decide(&auth, &token(&key, issuer, "alice", now), now).await;
        assert!(got.is_err(), "{path}: {got:?}");
        assert_eq!(server.hits(path), 1, "{path}");
    }
}

#[test]
fn keys_are_not_fetched_over_plain_http_from_elsewhere() {
    let plain = JwksLocation::Url("http://id.example.com/keys".into());
    assert!(HttpJwks::new(plain, FetchTimeouts::default()).is_err());
}
