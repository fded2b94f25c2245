//! Authentication: HS256 JSON Web Tokens. The `$connect` authorizer verifies them; the
//! development tools mint them. `sub` is the user id, the optional `device` claim the device.

use crate::domain::{DeviceId, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The secret the embedded gateway and `messenger-local token` use unless told otherwise.
/// For development only: every deployment sets its own.
pub const DEV_SECRET: &str = "messenger-local-development-secret";

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserId,
    pub device: DeviceId,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not a JWT")]
    Malformed,
    #[error("token algorithm must be HS256")]
    WrongAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Mints a token for `user` (and `device`) valid until `expires`.
pub fn mint(
    secret: &[u8],
    user: &UserId,
    device: Option<&DeviceId>,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
    };
    let claims = Claims {
        sub: user.to_string(),
        device: device.map(ToString::to_string),
        exp: expires.timestamp(),
        iat: Some(issued.timestamp()),
    };
    let signing_input = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(&header).expect("header serialises")),
        B64.encode(serde_json::to_vec(&claims).expect("claims serialise"))
    );
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies a token's signature (constant time), algorithm and expiry, and reads its identity.
pub fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<Identity, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header = decode_json(h)?;
    if header.alg != "HS256" {
        return Err(TokenError::WrongAlgorithm);
    }
    let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(&token.as_bytes()[..h.len() + 1 + c.len()]);
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = decode_json(c)?;
    if claims.exp <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    let user = UserId::new(claims.sub).map_err(|e| TokenError::BadClaims(e.to_string()))?;
    let device = match claims.device {
        Some(d) => DeviceId::new(d).map_err(|e| TokenError::BadClaims(e.to_string()))?,
        None => DeviceId::unnamed(),
    };
    Ok(Identity { user, device })
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::BadClaims(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn alice() -> UserId {
        UserId::new("alice").unwrap()
    }

    #[test]
    fn a_minted_token_verifies_with_its_device() {
        let now = Utc::now();
        let phone = DeviceId::new("phone").unwrap();
        let t = mint(b"k", &alice(), Some(&phone), now, now + Duration::hours(1));
        assert_eq!(
            verify(b"k", &t, now),
            Ok(Identity {
                user: alice(),
                device: phone
            })
        );
    }

    #[test]
    fn wrong_secret_expired_tampered_and_none_alg_are_refused() {
        let now = Utc::now();
        let t = mint(b"k", &alice(), None, now, now + Duration::hours(1));
        assert_eq!(verify(b"other", &t, now), Err(TokenError::BadSignature));
        assert_eq!(
            verify(b"k", &t, now + Duration::hours(2)),
            Err(TokenError::Expired)
        );
        let forged_claims = B64.encode(br#"{"sub":"mallory","exp":99999999999}"#);
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(verify(b"k", &tampered, now), Err(TokenError::BadSignature));
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), forged_claims);
        assert_eq!(verify(b"k", &none, now), Err(TokenError::WrongAlgorithm));
        assert_eq!(verify(b"k", "garbage", now), Err(TokenError::Malformed));
    }
}
