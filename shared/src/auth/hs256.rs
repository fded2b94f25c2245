//! Development tokens: HS256 JSON Web Tokens signed with one shared secret (verified and signed
//! by the `jsonwebtoken` crate). `messenger-local token` and the tests mint them; the embedded
//! gateway and the emulator deployments accept them. `sub` is the user id, the optional `device`
//! claim the device.

use super::{Claimed, Identity, TokenError};
use crate::domain::{DeviceId, UserId};
use chrono::{DateTime, Utc};
use jsonwebtoken::{self as jwt, Algorithm, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// The secret the embedded gateway and `messenger-local token` use unless told otherwise.
/// For development only: every deployment sets its own.
pub const DEV_SECRET: &str = "messenger-local-development-secret";

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
}

/// Mints a token for `user` (and `device`) valid until `expires`.
pub fn mint(
    secret: &[u8],
    user: &UserId,
    device: Option<&DeviceId>,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> String {
    let claims = Claims {
        sub: user.to_string(),
        device: device.map(ToString::to_string),
        exp: expires.timestamp(),
        iat: Some(issued.timestamp()),
    };
    let key = jwt::EncodingKey::from_secret(secret).expect("a non-empty secret");
    jwt::encode(&jwt::Header::new(Algorithm::HS256), &claims, &key).expect("HS256 signs")
}

/// Verifies a token's algorithm (HS256 only), signature (constant time) and expiry (`exp` is
/// required; checked against `now`, without leeway), and reads its identity (the unnamed
/// device without a `device` claim).
pub fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<Identity, TokenError> {
    let claimed = verify_claims(secret, token, now)?;
    Ok(Identity {
        user: claimed.user,
        device: claimed.device.unwrap_or_else(DeviceId::unnamed),
    })
}

/// [`verify`], keeping whether the token names a device.
pub(super) fn verify_claims(
    secret: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claimed, TokenError> {
    // The header parses only when it names an algorithm the crate knows (`none` is not one).
    let header = jwt::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::Json(_) => TokenError::WrongAlgorithm,
        _ => TokenError::Malformed,
    })?;
    if header.alg != Algorithm::HS256 {
        return Err(TokenError::WrongAlgorithm);
    }
    let mut validation = jwt::Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's clock; audiences are not used by HS256
    // development tokens.
    validation.validate_exp = false;
    validation.validate_aud = false;
    // An empty secret verifies nothing.
    let key = jwt::DecodingKey::from_secret(secret).map_err(|_| TokenError::BadSignature)?;
    let claims = jwt::decode::<Claims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::WrongAlgorithm
            }
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::Json(_) => TokenError::BadClaims(e.to_string()),
            _ => TokenError::Malformed,
        })?
        .claims;
    if claims.exp <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    let user = UserId::new(claims.sub).map_err(|e| TokenError::BadClaims(e.to_string()))?;
    let device = claims
        .device
        .map(DeviceId::new)
        .transpose()
        .map_err(|e| TokenError::BadClaims(e.to_string()))?;
    Ok(Claimed { user, device })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
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
