//! Authentication: who opens a connection. The `$connect` authorizer (a Lambda, or the embedded
//! gateway's handshake) hands a token, and the `device` query parameter if any, to an
//! [`Authenticator`]; it answers with the [`Identity`] every route of the connection runs as.
//!
//! One kind of token at a time:
//! - [`hs256`]: development tokens signed with a shared secret (`messenger-local token` mints
//!   them; the embedded gateway's and the emulator deployments' default);
//! - [`issuer`]: an identity provider's RS256/ES256 tokens (a Cognito user pool, Auth0, Okta,
//!   Firebase, Keycloak, any OpenID Connect issuer), verified against the issuer's published
//!   keys. They are fetched through the [`jwks::JwksSource`] port (the HTTP adapter lives
//!   outside the core, in `messenger-lambda`) and cached by [`jwks::KeyCache`].

pub mod hs256;
pub mod issuer;
pub mod jwks;
#[cfg(any(test, feature = "test-tokens"))]
pub mod testing;

use crate::domain::{DeviceId, UserId};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use hs256::{DEV_SECRET, mint, verify};
pub use issuer::{IssuerConfig, IssuerVerifier};
pub use jwks::{CachePolicy, JwksError, JwksSource};

/// Who a connection is: the user every route runs as, and the device it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserId,
    pub device: DeviceId,
}

/// What a verified token says: its user, and its device when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub user: UserId,
    pub device: Option<DeviceId>,
}

/// Why a token (or the device named next to it) was refused: the handshake gets a 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not a JWT")]
    Malformed,
    #[error("token algorithm is not accepted here")]
    WrongAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("token was issued by another issuer")]
    WrongIssuer,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token is neither an ID token nor an access token")]
    WrongTokenUse,
    #[error("token is signed with a key the issuer does not publish")]
    UnknownKey,
    #[error("device is invalid: {0}")]
    BadDevice(String),
    #[error("the device parameter differs from the token's device claim")]
    DeviceMismatch,
}

/// Why a connection was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token is bad: the handshake is refused (403).
    #[error(transparent)]
    Refused(#[from] TokenError),
    /// The issuer's keys could not be had: nobody is let in (fail closed), but the client is
    /// told it is the server's fault (500), so it retries rather than signing the user out.
    #[error("the issuer's signing keys are unavailable: {0}")]
    Unavailable(#[from] JwksError),
}

/// How tokens are verified: one kind at a time.
#[derive(Clone)]
pub enum Authenticator {
    /// Development HS256 tokens signed with this secret.
    Hs256(Vec<u8>),
    /// An identity provider's tokens, verified against its keys.
    Issuer(Arc<IssuerVerifier>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the secret itself.
            Self::Hs256(_) => f.write_str("Authenticator::Hs256(<secret>)"),
            Self::Issuer(v) => write!(f, "Authenticator::Issuer({:?})", v.config().issuer),
        }
    }
}

impl Authenticator {
    /// Verifies `token` and settles the device: the token's `device` claim, else the `device`
    /// query parameter, else the unnamed device. A parameter that is not a valid device id, or
    /// that contradicts the claim, refuses the connection.
    pub async fn authenticate(
        &self,
        token: &str,
        device: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Identity, AuthError> {
        let claimed = match self {
            Self::Hs256(secret) => hs256::verify_claims(secret, token, now)?,
            Self::Issuer(verifier) => verifier.verify(token, now).await?,
        };
        let device = settle_device(claimed.device, device)?;
        Ok(Identity {
            user: claimed.user,
            device,
        })
    }
}

fn settle_device(claim: Option<DeviceId>, param: Option<&str>) -> Result<DeviceId, TokenError> {
    let param = param
        .map(DeviceId::new)
        .transpose()
        .map_err(|e| TokenError::BadDevice(e.to_string()))?;
    match (claim, param) {
        (Some(claim), Some(param)) if claim != param => Err(TokenError::DeviceMismatch),
        (Some(device), _) | (None, Some(device)) => Ok(device),
        (None, None) => Ok(DeviceId::unnamed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn dev() -> Authenticator {
        Authenticator::Hs256(b"k".to_vec())
    }

    fn token(device: Option<&str>) -> String {
        let now = Utc::now();
        let device = device.map(|d| DeviceId::new(d).unwrap());
        mint(
            b"k",
            &UserId::new("alice").unwrap(),
            device.as_ref(),
            now,
            now + Duration::hours(1),
        )
    }

    async fn device_of(token: &str, param: Option<&str>) -> Result<String, AuthError> {
        let id = dev().authenticate(token, param, Utc::now()).await?;
        assert_eq!(id.user.as_str(), "alice");
        Ok(id.device.to_string())
    }

    #[tokio::test]
    async fn the_device_comes_from_the_claim_else_the_parameter_else_the_default() {
        assert_eq!(
            device_of(&token(Some("phone")), None).await.unwrap(),
            "phone"
        );
        assert_eq!(
            device_of(&token(None), Some("tablet")).await.unwrap(),
            "tablet"
        );
        assert_eq!(
            device_of(&token(Some("phone")), Some("phone"))
                .await
                .unwrap(),
            "phone"
        );
        assert_eq!(
            device_of(&token(None), None).await.unwrap(),
            DeviceId::unnamed().to_string()
        );
    }

    #[tokio::test]
    async fn a_bad_or_contradicting_device_parameter_is_refused() {
        assert_eq!(
            device_of(&token(Some("phone")), Some("laptop")).await,
            Err(AuthError::Refused(TokenError::DeviceMismatch))
        );
        for bad in ["", "my phone", &"x".repeat(200)] {
            assert!(
                matches!(
                    device_of(&token(None), Some(bad)).await,
                    Err(AuthError::Refused(TokenError::BadDevice(_)))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let shown = format!("{:?}", Authenticator::Hs256(b"hunter2".to_vec()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
