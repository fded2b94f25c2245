//! GIVEN an issuer publishing keys, WHEN a token arrives, THEN exactly the good ones verify.

use super::*;
use crate::auth::testing::{StaticJwks, TestKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

const OIDC: &str = "https://issuer.example.com/";
const POOL: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC";
const CLIENT: &str = "app-client-1";

fn verifier(issuer: &str, keys: &[&TestKey]) -> (IssuerVerifier, Arc<StaticJwks>) {
    let source = Arc::new(StaticJwks::new(keys));
    let config = IssuerConfig::new(issuer, vec![CLIENT.into()]);
    (IssuerVerifier::new(config, source.clone()), source)
}

fn claims(issuer: &str, now: DateTime<Utc>) -> Value {
    json!({
        "iss": issuer,
        "sub": "alice",
        "aud": CLIENT,
        "iat": now.timestamp(),
        "exp": (now + Duration::hours(1)).timestamp(),
    })
}

fn cognito_claims(token_use: &str, now: DateTime<Utc>) -> Value {
    let mut c = claims(POOL, now);
    c["token_use"] = token_use.into();
    if token_use == "access" {
        // Access tokens name the client in `client_id` and have no `aud`.
        c.as_object_mut().unwrap().remove("aud");
        c["client_id"] = CLIENT.into();
    }
    c
}

async fn refusal(v: &IssuerVerifier, token: &str, now: DateTime<Utc>) -> TokenError {
    match v.verify(token, now).await {
        Err(AuthError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn es256_and_rs256_tokens_of_the_issuer_verify() {
    let (es, rs) = (TestKey::es256_a("es"), TestKey::rs256("rs"));
    let (v, _) = verifier(OIDC, &[&es, &rs]);
    let now = Utc::now();
    for key in [&es, &rs] {
        let got = v.verify(&key.sign(&claims(OIDC, now)), now).await.unwrap();
        assert_eq!(
            got,
            Claimed {
                user: UserId::new("alice").unwrap(),
                device: None
            }
        );
    }
    // `aud` may be a list; a `device` claim names the device.
    let mut c = claims(OIDC, now);
    c["aud"] = json!(["other-api", CLIENT]);
    c["device"] = "phone".into();
    let got = v.verify(&es.sign(&c), now).await.unwrap();
    assert_eq!(got.device, Some(DeviceId::new("phone").unwrap()));
}

#[tokio::test]
async fn cognito_id_and_access_tokens_verify_and_other_uses_do_not() {
    let key = TestKey::rs256("pool-key");
    let (v, _) = verifier(POOL, &[&key]);
    let now = Utc::now();
    for token_use in ["id", "access"] {
        let got = v
            .verify(&key.sign(&cognito_claims(token_use, now)), now)
            .await;
        assert_eq!(got.unwrap().user.as_str(), "alice", "{token_use}");
    }
    let refresh = key.sign(&cognito_claims("refresh", now));
    assert_eq!(refusal(&v, &refresh, now).await, TokenError::WrongTokenUse);
    let mut untyped = cognito_claims("id", now);
    untyped.as_object_mut().unwrap().remove("token_use");
    assert_eq!(
        refusal(&v, &key.sign(&untyped), now).await,
        TokenError::WrongTokenUse
    );
    // The audience is read where each kind of token carries it, and only there.
    let mut access_with_aud = cognito_claims("access", now);
    access_with_aud["client_id"] = "another-client".into();
    access_with_aud["aud"] = CLIENT.into();
    assert_eq!(
        refusal(&v, &key.sign(&access_with_aud), now).await,
        TokenError::WrongAudience
    );
    let mut id_other_client = cognito_claims("id", now);
    id_other_client["aud"] = "another-client".into();
    assert_eq!(
        refusal(&v, &key.sign(&id_other_client), now).await,
        TokenError::WrongAudience
    );
}

#[tokio::test]
async fn expiry_and_not_before_allow_a_minute_of_clock_skew() {
    let key = TestKey::es256_a("k");
    let (v, _) = verifier(OIDC, &[&key]);
    let now = Utc::now();
    let mut c = claims(OIDC, now);
    c["exp"] = (now - Duration::seconds(30)).timestamp().into();
    assert!(
        v.verify(&key.sign(&c), now).await.is_ok(),
        "within the leeway"
    );
    c["exp"] = (now - Duration::seconds(61)).timestamp().into();
    assert_eq!(refusal(&v, &key.sign(&c), now).await, TokenError::Expired);
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::BadClaims(_)
    ));
    let mut c = claims(OIDC, now);
    c["nbf"] = (now + Duration::seconds(30)).timestamp().into();
    assert!(
        v.verify(&key.sign(&c), now).await.is_ok(),
        "within the leeway"
    );
    c["nbf"] = (now + Duration::seconds(90)).timestamp().into();
    assert_eq!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::NotYetValid
    );
}

#[tokio::test]
async fn another_issuer_or_audience_is_refused() {
    let key = TestKey::es256_a("k");
    let (v, _) = verifier(OIDC, &[&key]);
    let now = Utc::now();
    let mut c = claims("https://evil.example.com/", now);
    assert_eq!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::WrongIssuer
    );
    c = claims(OIDC, now);
    c["aud"] = json!(["someone-else"]);
    assert_eq!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::WrongAudience
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::WrongAudience
    );
}

#[tokio::test]
async fn tampered_foreign_and_unsigned_tokens_are_refused() {
    let (published, foreign) = (TestKey::es256_a("k"), TestKey::es256_b("k"));
    let rsa = TestKey::rs256("r");
    let (v, source) = verifier(OIDC, &[&published, &rsa]);
    let now = Utc::now();
    let good = published.sign(&claims(OIDC, now));

    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims(OIDC, now);
    forged["sub"] = "mallory".into();
    let forged = B64.encode(forged.to_string());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(refusal(&v, &tampered, now).await, TokenError::BadSignature);
    // The right kid, the wrong key.
    assert_eq!(
        refusal(&v, &foreign.sign(&claims(OIDC, now)), now).await,
        TokenError::BadSignature
    );
    // A kid the issuer does not publish.
    let unknown = TestKey::es256_b("not-published").sign(&claims(OIDC, now));
    assert_eq!(refusal(&v, &unknown, now).await, TokenError::UnknownKey);
    let none = format!("{}.{forged}.", B64.encode(br#"{"alg":"none","kid":"k"}"#));
    assert_eq!(refusal(&v, &none, now).await, TokenError::WrongAlgorithm);
    // HS256 with the RSA key's public half as the HMAC secret, under its kid.
    let public_n = match &rsa.jwk().algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(p) => p.n.clone(),
        other => panic!("{other:?}"),
    };
    let mut header = jwt::Header::new(Algorithm::HS256);
    header.kid = Some("r".into());
    let hs = jwt::encode(
        &header,
        &claims(OIDC, now),
        &jwt::EncodingKey::from_secret(public_n.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(refusal(&v, &hs, now).await, TokenError::WrongAlgorithm);
    // A key published for ES256 verifies no RS256 token (and the other way round).
    let mut header = jwt::Header::new(Algorithm::RS256);
    header.kid = Some("k".into());
    let confused = format!(
        "{}.{}.{}",
        B64.encode(serde_json::to_string(&header).unwrap()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        refusal(&v, &confused, now).await,
        TokenError::WrongAlgorithm
    );
    let mut kidless = claims(OIDC, now);
    kidless["sub"] = "x".into();
    let no_kid = jwt::encode(
        &jwt::Header::new(Algorithm::ES256),
        &kidless,
        &jwt::EncodingKey::from_ec_der(include_bytes!("../testdata/es256-1.der")),
    )
    .unwrap();
    assert_eq!(refusal(&v, &no_kid, now).await, TokenError::UnknownKey);
    assert_eq!(refusal(&v, "garbage", now).await, TokenError::Malformed);
    // One fetch filled the cache; the unknown kid, within the refresh interval of it, fetched
    // nothing more, and the refusals that need no key never reach the issuer.
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn the_user_id_claim_is_configurable_and_must_be_a_valid_id() {
    let key = TestKey::rs256("pool-key");
    let source = Arc::new(StaticJwks::new(&[&key]));
    let mut config = IssuerConfig::new(POOL, vec![CLIENT.into()]);
    config.user_claim = "cognito:username".into();
    let v = IssuerVerifier::new(config, source);
    let now = Utc::now();
    let mut c = cognito_claims("id", now);
    c["cognito:username"] = "alice.smith".into();
    assert_eq!(
        v.verify(&key.sign(&c), now).await.unwrap().user.as_str(),
        "alice.smith"
    );
    c["cognito:username"] = "alice smith".into();
    assert!(matches!(
        refusal(&v, &key.sign(&c), now).await,
        TokenError::BadClaims(_)
    ));
    // Access tokens have no cognito:username: refused, not let in as someone else.
    assert!(matches!(
        refusal(&v, &key.sign(&cognito_claims("access", now)), now).await,
        TokenError::BadClaims(_)
    ));
}

#[tokio::test]
async fn when_the_keys_cannot_be_fetched_nothing_verifies() {
    let key = TestKey::es256_a("k");
    let (v, source) = verifier(OIDC, &[&key]);
    source.fail(true);
    let now = Utc::now();
    let got = v.verify(&key.sign(&claims(OIDC, now)), now).await;
    assert!(matches!(got, Err(AuthError::Unavailable(_))), "{got:?}");
}

#[test]
fn cognito_issuers_are_recognised_by_their_url() {
    let cognito = |url: &str| IssuerConfig::new(url, vec![CLIENT.into()]).is_cognito();
    assert!(cognito(POOL));
    assert!(cognito(
        "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_X"
    ));
    assert!(!cognito(OIDC));
    assert!(!cognito("https://cognito-idp.evil.com/amazonaws.com"));
    assert!(!cognito("http://cognito-idp.eu-west-1.amazonaws.com/p"));
}

#[test]
fn a_configuration_without_audience_is_refused() {
    assert!(IssuerConfig::new(OIDC, vec![]).validate().is_err());
    assert!(
        IssuerConfig::new(OIDC, vec![String::new()])
            .validate()
            .is_err()
    );
    assert!(
        IssuerConfig::new("issuer", vec![CLIENT.into()])
            .validate()
            .is_err()
    );
    assert!(
        IssuerConfig::new(OIDC, vec![CLIENT.into()])
            .validate()
            .is_ok()
    );
}
