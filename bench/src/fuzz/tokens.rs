//! Fuzzing layer: the `$connect` authorizer's token parsers — development HS256 tokens, and an
//! identity provider's RS256 tokens verified against its JWKS. Mutations of a valid token
//! (bytes, segments, headers naming other algorithms or keys), tokens whose claims are mutated
//! and then signed with the right key, and random strings. No token may panic the parser; a
//! mutated token is allowed only as the user it was minted for; a correctly signed one only
//! with valid, unexpired claims (for the issuer: its `iss` and an accepted `aud`).

use super::mutate::{Rng, mutate_bytes, mutate_json, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use messenger::auth::Authenticator;
use messenger::auth::issuer::{IssuerConfig, IssuerVerifier};
use messenger::auth::testing::{StaticJwks, TestKey};
use messenger::domain::{DeviceId, UserId};
use messenger_lambda::authorizer;
use serde_json::{Value, json};
use std::sync::Arc;

/// The issuer the fuzzed identity provider tokens come from.
const ISSUER: &str = "https://idp.example.test/pool";
/// Its accepted audience.
const AUDIENCE: &str = "messenger-app";
/// Seconds of clock skew the issuer verifier tolerates on `exp`.
const LEEWAY: i64 = 60;

/// The two authenticators fuzzed, how to sign for each, and a valid token of each (signing
/// is slow: the valid tokens are signed once).
pub struct Verifiers {
    hs256: Authenticator,
    secret: Vec<u8>,
    issuer: Authenticator,
    key: TestKey,
    /// (claims, token) of a valid HS256 token and of a valid issuer token.
    valid: [(Value, String); 2],
}

impl Verifiers {
    /// Verifiers for tokens checked at `now`.
    pub fn new(secret: &[u8], now: DateTime<Utc>) -> Self {
        let key = TestKey::es256_a("fuzz-key");
        let jwks = Arc::new(StaticJwks::new(&[&key]));
        let config = IssuerConfig::new(ISSUER, vec![AUDIENCE.into()]);
        let base = json!({"sub":"alice","exp":now.timestamp() + 3600,"iat":now.timestamp()});
        let mut dev = base.clone();
        dev["device"] = json!("phone");
        let mut idp = base;
        idp["iss"] = json!(ISSUER);
        idp["aud"] = json!(AUDIENCE);
        let dev_token = sign(secret, &json!({"alg":"HS256","typ":"JWT"}), &dev);
        let idp_token = key.sign(&idp);
        Self {
            hs256: Authenticator::Hs256(secret.to_vec()),
            secret: secret.to_vec(),
            issuer: Authenticator::Issuer(Arc::new(IssuerVerifier::new(config, jwks))),
            key,
            valid: [(dev, dev_token), (idp, idp_token)],
        }
    }
}

/// What a token case was made from, which decides what may be allowed.
enum Made {
    /// A mutation of alice's valid token: allowed only as alice on her phone.
    Mutated,
    /// Claims mutated, then signed with the right secret: allowed only with valid claims.
    Signed(Value),
}

/// The authorizer's verdict on one token (for one of the two authenticators), checked; `Err`
/// says what was wrong.
pub async fn check_one(v: &Verifiers, rng: &mut Rng, now: DateTime<Utc>) -> Result<bool, String> {
    let by_issuer = rng.percent(50);
    let sign_as = |claims: &Value| {
        if by_issuer {
            v.key.sign(claims)
        } else {
            sign(&v.secret, &json!({"alg":"HS256","typ":"JWT"}), claims)
        }
    };
    let (valid_claims, valid) = &v.valid[usize::from(by_issuer)];
    let (valid_claims, valid) = (valid_claims.clone(), valid.as_str());
    let (token, made) = match rng.below(4) {
        0 => (lossy(mutate_bytes(rng, valid)), Made::Mutated),
        1 => (
            mutate_segments(rng, valid, &valid_claims, &v.secret),
            Made::Mutated,
        ),
        2 => {
            let claims = mutate_json(rng, valid_claims.clone());
            (sign_as(&claims), Made::Signed(claims))
        }
        _ => (lossy(random_bytes(rng)), Made::Mutated),
    };
    // The device parameter: issuer tokens name none, so the connection says which.
    let device = if by_issuer { "phone" } else { "" };
    let event: messenger_lambda::AuthorizerEvent = serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:local:000000000000:messenger/local/$connect",
        "queryStringParameters": if device.is_empty() { json!({"token": token}) } else { json!({"token": token, "device": device}) },
        "requestContext": {"stage": "local"},
    }))
    .map_err(|e| format!("event: {e}"))?;
    let auth = if by_issuer { &v.issuer } else { &v.hs256 };
    let decision = authorizer::handle(auth, &event, now)
        .await
        .map_err(|e| format!("keys unavailable: {e}"))?;
    if !authorizer::allows(&decision) {
        return Ok(false);
    }
    let (user, got_device) = (&decision.context["userId"], &decision.context["device"]);
    match made {
        Made::Mutated if (user, got_device) != (&json!("alice"), &json!("phone")) => Err(format!(
            "a mutated token was allowed as {user}/{got_device}: {token:?}"
        )),
        Made::Signed(claims) => {
            let sub_ok = claims["sub"]
                .as_str()
                .is_some_and(|s| UserId::new(s).is_ok());
            let device_ok = match claims.get("device") {
                None | Some(Value::Null) => true,
                Some(d) => d.as_str().is_some_and(|d| DeviceId::new(d).is_ok()),
            };
            let leeway = if by_issuer { LEEWAY } else { 0 };
            // A NumericDate may be a non-integer (RFC 7519); far in the future is still valid.
            let exp_ok = claims["exp"]
                .as_f64()
                .is_some_and(|e| e + leeway as f64 > now.timestamp() as f64);
            let issuer_ok = !by_issuer
                || (claims["iss"] == ISSUER
                    && (claims["aud"] == AUDIENCE
                        || claims["aud"]
                            .as_array()
                            .is_some_and(|a| a.contains(&json!(AUDIENCE)))));
            if sub_ok && device_ok && exp_ok && issuer_ok && *user == claims["sub"] {
                Ok(true)
            } else {
                Err(format!("invalid claims were allowed: {claims}"))
            }
        }
        Made::Mutated => Ok(true),
    }
}

fn lossy(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// An HS256 JWT over any header and claims (signed with `secret` whatever the header says).
fn sign(secret: &[u8], header: &Value, claims: &Value) -> String {
    let signing = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("a secret");
    let signature =
        jsonwebtoken::crypto::sign(signing.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("HS256 signs");
    format!("{signing}.{signature}")
}

/// Segment-level mutations of a token: another algorithm in the header (`none`, HS512,
/// RS256), another or no key id, HS256 signed with the development secret over an issuer's
/// header (algorithm confusion), a dropped or doubled signature, padded or standard base64,
/// extra segments.
fn mutate_segments(rng: &mut Rng, token: &str, claims: &Value, secret: &[u8]) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    match rng.below(10) {
        8 => {
            let kid = rng.pick(&["fuzz-key", "other", "", "../../etc/passwd"]);
            let alg = rng.pick(&["HS256", "RS256", "ES256", "none"]);
            let h = B64.encode(json!({"alg": alg, "kid": kid}).to_string());
            format!("{h}.{payload}.{signature}")
        }
        9 => sign(
            secret,
            &json!({"alg":"HS256","kid":"fuzz-key","typ":"JWT"}),
            claims,
        ),
        0 => {
            let alg = rng.pick(&["none", "None", "HS512", "RS256", "ES256", "", "hs256"]);
            let h = B64.encode(json!({"alg": alg, "typ":"JWT"}).to_string());
            format!("{h}.{payload}.{signature}")
        }
        1 => format!("{header}.{payload}."),
        2 => format!("{header}.{payload}"),
        3 => format!("{header}.{payload}.{signature}.{signature}"),
        4 => format!("{token}=="),
        5 => token.replace('-', "+").replace('_', "/"),
        6 => {
            // Claims changed but the old signature kept.
            let mut c = claims.clone();
            c["sub"] = json!(rng.pick(&["bob", "admin", "alice ", "alice"]));
            format!("{header}.{}.{signature}", B64.encode(c.to_string()))
        }
        _ => format!("{payload}.{header}.{signature}"),
    }
}
