//! Real sign-in through the embedded gateway (`serve --issuer`): an identity provider's ES256
//! tokens, its keys served by a local JWKS server, two users chatting; and the tokens and
//! devices it refuses.

use chrono::{Duration, Utc};
use messenger::auth::testing::TestKey;
use messenger::auth::{IssuerConfig, IssuerVerifier};
use messenger_e2e::{Client, TestGateway};
use messenger_lambda::jwks::{FetchTimeouts, HttpJwks, JwksLocation};
use messenger_lambda::testing::{JwksServer, Reply};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_tungstenite::tungstenite;

/// A Cognito-style issuer: `iss` is the pool's URL, the keys come from elsewhere (here).
const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Local";
const CLIENT: &str = "web-client";
const ALICE: &str = "0b5e7d7c-alice";
const BOB: &str = "5a1f2e3d-bob";

async fn gateway(server: &JwksServer, jwks_path: &str) -> TestGateway {
    let source = HttpJwks::new(
        JwksLocation::Url(server.url(jwks_path)),
        FetchTimeouts::default(),
    )
    .unwrap();
    let issuer = IssuerConfig::new(ISSUER, vec![CLIENT.into()]);
    let config = GatewayConfig {
        issuer: Some(Arc::new(IssuerVerifier::new(issuer, Arc::new(source)))),
        ..GatewayConfig::default()
    };
    TestGateway::start_with(config).await
}

/// A Cognito ID token (`aud`) or access token (`client_id`) for `sub`.
fn token(key: &TestKey, token_use: &str, sub: &str) -> String {
    let now = Utc::now();
    let mut claims = json!({
        "iss": ISSUER,
        "sub": sub,
        "token_use": token_use,
        "iat": now.timestamp(),
        "exp": (now + Duration::hours(1)).timestamp(),
    });
    let audience = if token_use == "id" {
        "aud"
    } else {
        "client_id"
    };
    claims[audience] = CLIENT.into();
    key.sign(&claims)
}

fn url(gw: &TestGateway, token: &str, device: &str) -> String {
    format!("{}?token={token}&device={device}", gw.url())
}

async fn refused(url: &str) -> u16 {
    match Client::connect(url, "anon").await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the connection was accepted"),
    }
}

#[tokio::test]
async fn users_signed_in_with_an_identity_provider_chat_and_bad_tokens_are_refused() {
    let server = JwksServer::start().await;
    let key = TestKey::es256_a("pool-key-1");
    server.publish("/pool/jwks.json", &[&key]);
    let gw = gateway(&server, "/pool/jwks.json").await;

    // Alice with an access token on her phone, Bob with an ID token on two devices.
    let mut alice = Client::connect(&url(&gw, &token(&key, "access", ALICE), "phone"), ALICE)
        .await
        .expect("alice signs in");
    let bob_token = token(&key, "id", BOB);
    let mut bob_phone = Client::connect(&url(&gw, &bob_token, "phone"), BOB)
        .await
        .unwrap();
    let mut bob_laptop = Client::connect(&url(&gw, &bob_token, "laptop"), BOB)
        .await
        .unwrap();

    let sent = alice.send_to(BOB, "c-1", "hi bob").await;
    assert_eq!(sent["type"], "sent", "{sent}");
    for device in [&mut bob_phone, &mut bob_laptop] {
        let m = device.recv_type("message").await;
        assert_eq!((&m["from"], &m["body"]), (&json!(ALICE), &json!("hi bob")));
    }
    // Bob takes Alice's message request; then a read on his phone reaches Alice and his other
    // device as a receipt.
    let conversation = sent["conversation"].clone();
    let r = bob_phone
        .request(json!({"action":"accept","conversation":conversation}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let acked = bob_phone
        .request(json!({"action":"ack","conversation":conversation,"seq":1,"kind":"read"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    for other in [&mut alice, &mut bob_laptop] {
        let read = other
            .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
            .await;
        assert_eq!(read["by"], BOB, "{read}");
    }
    assert_eq!(
        server.hits("/pool/jwks.json"),
        1,
        "one fetch, then the cache"
    );

    // Refused at the handshake: a development token, another client's token, a forged key, a
    // bad device name.
    let dev = gw.token(ALICE, "phone");
    assert_eq!(refused(&url(&gw, &dev, "phone")).await, 403);
    let mut other_client: Value = json!({
        "iss": ISSUER, "sub": ALICE, "token_use": "id", "aud": "another-client",
        "exp": (Utc::now() + Duration::hours(1)).timestamp(),
    });
    assert_eq!(
        refused(&url(&gw, &key.sign(&other_client), "phone")).await,
        403
    );
    other_client["aud"] = CLIENT.into();
    let forged = TestKey::es256_b("pool-key-1").sign(&other_client);
    assert_eq!(refused(&url(&gw, &forged, "phone")).await, 403);
    assert_eq!(
        refused(&url(&gw, &token(&key, "id", BOB), "a%20b")).await,
        403
    );
}

#[tokio::test]
async fn when_the_issuers_keys_cannot_be_fetched_the_handshake_fails_with_500() {
    let server = JwksServer::start().await;
    server.serve("/down", Reply::Status(503));
    let gw = gateway(&server, "/down").await;
    let key = TestKey::es256_a("pool-key-1");
    assert_eq!(
        refused(&url(&gw, &token(&key, "id", BOB), "phone")).await,
        500
    );
}
