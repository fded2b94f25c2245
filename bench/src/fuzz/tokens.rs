//! Fuzzing layer: the `$connect` authorizer's token parser. Mutations of a valid token (bytes,
//! segments, headers naming other algorithms), tokens whose claims are mutated and then signed
//! with the right secret, and random strings. No token may panic the parser; a mutated token
//! is allowed only as the user it was minted for; a correctly signed one only with valid,
//! unexpired claims.

use super::mutate::{Rng, mutate_bytes, mutate_json, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use messenger::domain::{DeviceId, UserId};
use messenger_lambda::authorizer;
use serde_json::{Value, json};

/// What a token case was made from, which decides what may be allowed.
enum Made {
    /// A mutation of alice's valid token: allowed only as alice on her phone.
    Mutated,
    /// Claims mutated, then signed with the right secret: allowed only with valid claims.
    Signed(Value),
}

/// The authorizer's verdict on one token, checked; `Err` says what was wrong.
pub fn check_one(secret: &[u8], rng: &mut Rng, now: DateTime<Utc>) -> Result<bool, String> {
    let valid_claims =
        json!({"sub":"alice","device":"phone","exp":now.timestamp() + 3600,"iat":now.timestamp()});
    let valid = sign(secret, &json!({"alg":"HS256","typ":"JWT"}), &valid_claims);
    let (token, made) = match rng.below(4) {
        0 => (lossy(mutate_bytes(rng, &valid)), Made::Mutated),
        1 => (mutate_segments(rng, &valid, &valid_claims), Made::Mutated),
        2 => {
            let claims = mutate_json(rng, valid_claims.clone());
            (
                sign(secret, &json!({"alg":"HS256","typ":"JWT"}), &claims),
                Made::Signed(claims),
            )
        }
        _ => (lossy(random_bytes(rng)), Made::Mutated),
    };
    let event: messenger_lambda::AuthorizerEvent = serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:local:000000000000:messenger/local/$connect",
        "queryStringParameters": {"token": token},
        "requestContext": {"stage": "local"},
    }))
    .map_err(|e| format!("event: {e}"))?;
    let decision = authorizer::handle(secret, &event, now);
    let allowed = authorizer::allows(&decision);
    if !allowed {
        return Ok(false);
    }
    let (user, device) = (&decision.context["userId"], &decision.context["device"]);
    match made {
        Made::Mutated if (user, device) != (&json!("alice"), &json!("phone")) => Err(format!(
            "a mutated token was allowed as {user}/{device}: {token:?}"
        )),
        Made::Signed(claims) => {
            let sub_ok = claims["sub"]
                .as_str()
                .is_some_and(|s| UserId::new(s).is_ok());
            let device_ok = match claims.get("device") {
                None | Some(Value::Null) => true,
                Some(d) => d.as_str().is_some_and(|d| DeviceId::new(d).is_ok()),
            };
            let exp_ok = claims["exp"].as_i64().is_some_and(|e| e > now.timestamp());
            if sub_ok && device_ok && exp_ok && *user == claims["sub"] {
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
/// RS256), a dropped or doubled signature, padded or standard base64, extra segments.
fn mutate_segments(rng: &mut Rng, token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    match rng.below(8) {
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
