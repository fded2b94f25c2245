//! An identity provider's tokens: RS256 or ES256 JWTs verified against the issuer's published
//! keys ([`super::jwks`]), then their claims: `iss` is the configured issuer, the audience is
//! ours, `exp`/`nbf` hold (with [`DEFAULT_LEEWAY_SECS`] of clock skew), and the user id claim
//! (`sub` by default) is a valid user id.
//!
//! Amazon Cognito user pools (an issuer `https://cognito-idp.<region>.amazonaws.com/<poolId>`)
//! are recognised: both their ID tokens (`token_use` `id`, the app client id in `aud`) and their
//! access tokens (`token_use` `access`, the app client id in `client_id`, no `aud`) are
//! accepted, and nothing else. Any other issuer's tokens must name one of the audiences in
//! `aud` (a string or a list).

use super::jwks::{CachePolicy, JwksSource, KeyCache};
use super::{AuthError, Claimed, TokenError};
use crate::domain::{DeviceId, UserId};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::KeyAlgorithm;
use jsonwebtoken::{self as jwt, Algorithm, errors::ErrorKind};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The signature algorithms an issuer's tokens may use. Anything else (`none`, HS256 — whose
/// "secret" could be the issuer's public key —, PS256, …) is refused before any key is looked up.
pub const ACCEPTED_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// The claim naming the device, in development and issuer tokens alike (optional).
pub const DEVICE_CLAIM: &str = "device";

/// Which issuer to trust, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// What `iss` must be, exactly (e.g. `https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC`).
    pub issuer: String,
    /// Accepted audiences: the app client id(s) for Cognito, the API identifier or client id
    /// of other issuers. At least one.
    pub audiences: Vec<String>,
    /// The claim holding the user id (default `sub`: stable and unique per issuer).
    pub user_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// How long keys are cached and how often they may be fetched.
    pub cache: CachePolicy,
}

impl IssuerConfig {
    /// An issuer with the defaults: user id in `sub`, a minute of leeway, keys cached an hour.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            user_claim: "sub".into(),
            leeway: Duration::seconds(DEFAULT_LEEWAY_SECS),
            cache: CachePolicy::default(),
        }
    }

    /// Whether the issuer is a Cognito user pool (its tokens carry `token_use`).
    pub fn is_cognito(&self) -> bool {
        let host = self
            .issuer
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        host.starts_with("cognito-idp.")
            && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
    }

    /// The configuration's own mistakes, said before anything is served.
    pub fn validate(&self) -> Result<(), String> {
        let url = &self.issuer;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("issuer {url:?} is not an http(s) URL"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err("at least one audience (the app client id) is needed".into());
        }
        if self.user_claim.is_empty() {
            return Err("the user id claim is empty".into());
        }
        Ok(())
    }
}

/// Verifies one issuer's tokens; built once per process (its key cache lives as long).
pub struct IssuerVerifier {
    config: IssuerConfig,
    cognito: bool,
    keys: KeyCache,
}

impl IssuerVerifier {
    /// A verifier fetching keys from `source`.
    pub fn new(config: IssuerConfig, source: Arc<dyn JwksSource>) -> Self {
        Self {
            cognito: config.is_cognito(),
            keys: KeyCache::new(source, config.cache),
            config,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Verifies a token's algorithm, key, signature and claims; reads the user (and the
    /// device, if the token has a `device` claim).
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claimed, AuthError> {
        // The header parses only when it names an algorithm the crate knows (`none` is not one).
        let header = jwt::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::Json(_) => TokenError::WrongAlgorithm,
            _ => TokenError::Malformed,
        })?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::WrongAlgorithm.into());
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .key(kid, now)
            .await?
            .ok_or(TokenError::UnknownKey)?;
        // A key published for one algorithm verifies no other.
        if key
            .jwk
            .common
            .key_algorithm
            .is_some_and(|a| a != KeyAlgorithm::from(header.alg))
        {
            return Err(TokenError::WrongAlgorithm.into());
        }
        let mut validation = jwt::Validation::new(header.alg);
        // The claims are checked below, against the caller's clock and the configuration.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jwt::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::WrongAlgorithm
                }
                ErrorKind::Json(_) | ErrorKind::Utf8(_) | ErrorKind::Base64(_) => {
                    TokenError::Malformed
                }
                // A signature that does not verify, or a key of the wrong shape for it.
                _ => TokenError::BadSignature,
            })?
            .claims;
        Ok(self.check(&claims, now)?)
    }

    fn check(
        &self,
        claims: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Claimed, TokenError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.config.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        let at = |name: &str| claims.get(name).and_then(Value::as_f64);
        let now_s = now.timestamp() as f64;
        let leeway = self.config.leeway.num_seconds() as f64;
        let exp = at("exp").ok_or_else(|| TokenError::BadClaims("exp is required".into()))?;
        if now_s >= exp + leeway {
            return Err(TokenError::Expired);
        }
        if at("nbf").is_some_and(|nbf| now_s < nbf - leeway) {
            return Err(TokenError::NotYetValid);
        }
        let ours =
            |v: Option<&str>| v.is_some_and(|v| self.config.audiences.iter().any(|a| a == v));
        let audience_ok = if self.cognito {
            match text("token_use") {
                Some("id") => ours(text("aud")),
                Some("access") => ours(text("client_id")),
                _ => return Err(TokenError::WrongTokenUse),
            }
        } else {
            match claims.get("aud") {
                Some(Value::String(aud)) => ours(Some(aud)),
                Some(Value::Array(auds)) => auds.iter().any(|a| ours(a.as_str())),
                _ => false,
            }
        };
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }
        let user = text(&self.config.user_claim)
            .ok_or_else(|| TokenError::BadClaims(format!("no {} claim", self.config.user_claim)))?;
        let user = UserId::new(user).map_err(|e| TokenError::BadClaims(e.to_string()))?;
        let device = match claims.get(DEVICE_CLAIM) {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => {
                Some(DeviceId::new(d.as_str()).map_err(|e| TokenError::BadClaims(e.to_string()))?)
            }
            Some(_) => return Err(TokenError::BadClaims("device is not a string".into())),
        };
        Ok(Claimed { user, device })
    }
}

#[cfg(test)]
mod tests;
