//! An issuer's signing keys: the port that fetches its JWK set ([`JwksSource`]; the HTTP
//! adapter is `messenger_lambda::jwks::HttpJwks`) and the per-process cache in front of it
//! ([`KeyCache`]).
//!
//! The cache fetches once, keeps the keys for [`CachePolicy::ttl`], and refreshes early when a
//! token names a key it does not hold (the issuer rotated its keys) — at most once per
//! [`CachePolicy::refresh_interval`], so a stream of tokens with made-up `kid`s cannot turn into
//! a stream of fetches. It fails closed: without fresh keys nothing verifies.

use super::issuer::ACCEPTED_ALGORITHMS;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm, PublicKeyUse};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use jsonwebtoken::jwk::{Jwk, JwkSet};

/// Fetches an issuer's current JWK set (its `jwks_uri`).
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The keys the issuer publishes now.
    async fn fetch(&self) -> Result<JwkSet, JwksError>;
}

/// Why the keys could not be had (unreachable, timed out, not a JWK set, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

/// How long keys are trusted, and how often they may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Keys older than this are fetched again before use (default 1 hour).
    pub ttl: Duration,
    /// At most one fetch per this interval, whether for an unknown `kid` or after a failed
    /// fetch (default 30 s).
    pub refresh_interval: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::hours(1),
            refresh_interval: Duration::seconds(30),
        }
    }
}

/// Parses a JWKS document, keeping only the keys that can verify a token here: a `kid`, a
/// signature key (`use` absent or `sig`), RSA or EC, with no `alg` or an accepted one. Other
/// entries (encryption keys, unknown key types) are skipped, not fatal: issuers publish them.
pub fn parse_jwk_set(body: &[u8]) -> Result<JwkSet, JwksError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| JwksError(format!("not a JWK set: {e}")))?;
    let keys: Vec<Jwk> = doc
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter(|k| usable(k).is_some())
        .collect();
    if keys.is_empty() {
        return Err(JwksError("the JWK set has no usable signing key".into()));
    }
    Ok(JwkSet { keys })
}

/// A published key, ready to verify with.
pub(crate) struct SigningKey {
    pub jwk: Jwk,
    pub key: DecodingKey,
}

fn usable(jwk: &Jwk) -> Option<(String, SigningKey)> {
    let kid = jwk.common.key_id.clone()?;
    // Public keys only: a symmetric (`oct`) entry would make HS256 verifiable.
    if !matches!(
        jwk.algorithm,
        AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
    ) {
        return None;
    }
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(alg) = jwk.common.key_algorithm {
        let accepted = ACCEPTED_ALGORITHMS
            .iter()
            .any(|a| KeyAlgorithm::from(*a) == alg);
        if !accepted {
            return None;
        }
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((
        kid,
        SigningKey {
            jwk: jwk.clone(),
            key,
        },
    ))
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<SigningKey>>,
    fetched_at: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    last_error: Option<JwksError>,
}

impl State {
    fn fresh(&self, now: DateTime<Utc>, policy: &CachePolicy) -> bool {
        self.fetched_at.is_some_and(|t| now < t + policy.ttl)
    }

    fn tried_recently(&self, now: DateTime<Utc>, policy: &CachePolicy) -> bool {
        self.last_attempt
            .is_some_and(|t| now < t + policy.refresh_interval)
    }
}

/// The keys of one issuer, cached for the life of the process (one Lambda container, one
/// embedded gateway). Lookups take a read lock only; fetches are single-flight.
pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    policy: CachePolicy,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// An empty cache: the first lookup fetches.
    pub fn new(source: Arc<dyn JwksSource>, policy: CachePolicy) -> Self {
        Self {
            source,
            policy,
            state: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The key `kid` names, fetching when the cache is empty or stale, or (rate-limited) when
    /// `kid` is unknown. `Ok(None)`: the issuer does not publish that key. `Err`: no fresh keys
    /// could be had.
    pub(crate) async fn key(
        &self,
        kid: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SigningKey>>, JwksError> {
        {
            let state = self.read();
            if state.fresh(now, &self.policy)
                && let Some(k) = state.keys.get(kid)
            {
                return Ok(Some(k.clone()));
            }
        }
        // One fetch at a time; whoever waited here looks again first.
        let _single_flight = self.refresh.lock().await;
        {
            let state = self.read();
            if state.fresh(now, &self.policy) {
                if let Some(k) = state.keys.get(kid) {
                    return Ok(Some(k.clone()));
                }
                if state.tried_recently(now, &self.policy) {
                    return Ok(None);
                }
            } else if state.tried_recently(now, &self.policy)
                && let Some(e) = &state.last_error
            {
                return Err(e.clone());
            }
        }
        let fetched = self.source.fetch().await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.last_attempt = Some(now);
        match fetched {
            Ok(set) => {
                state.keys = set
                    .keys
                    .iter()
                    .filter_map(usable)
                    .map(|(kid, key)| (kid, Arc::new(key)))
                    .collect();
                state.fetched_at = Some(now);
                state.last_error = None;
                tracing::info!(keys = state.keys.len(), "issuer keys fetched");
                Ok(state.keys.get(kid).cloned())
            }
            Err(e) => {
                tracing::warn!(error = %e, "issuer keys could not be fetched");
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{StaticJwks, TestKey};

    fn cache(source: &Arc<StaticJwks>) -> KeyCache {
        KeyCache::new(source.clone(), CachePolicy::default())
    }

    #[tokio::test]
    async fn keys_are_fetched_once_and_kept_for_the_ttl() {
        let a = TestKey::es256_a("a");
        let source = Arc::new(StaticJwks::new(&[&a]));
        let cache = cache(&source);
        let t0 = Utc::now();
        assert!(cache.key("a", t0).await.unwrap().is_some());
        assert!(
            cache
                .key("a", t0 + Duration::minutes(59))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(source.fetches(), 1);
        // Past the TTL the set is fetched again before use.
        assert!(
            cache
                .key("a", t0 + Duration::minutes(61))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn an_unknown_kid_refreshes_at_most_once_per_interval() {
        let (a, b) = (TestKey::es256_a("a"), TestKey::es256_b("b"));
        let source = Arc::new(StaticJwks::new(&[&a]));
        let cache = cache(&source);
        let t0 = Utc::now();
        assert!(cache.key("a", t0).await.unwrap().is_some());
        // The issuer rotates to b; a token signed with b arrives within the interval: refused
        // without a fetch.
        source.publish(&[&b]);
        assert!(
            cache
                .key("b", t0 + Duration::seconds(10))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(source.fetches(), 1);
        // After the interval the unknown kid triggers one refresh, which finds it.
        assert!(
            cache
                .key("b", t0 + Duration::seconds(31))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(source.fetches(), 2);
        // A made-up kid right after: no further fetch.
        assert!(
            cache
                .key("zzz", t0 + Duration::seconds(32))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn without_fresh_keys_lookups_fail_closed_and_failed_fetches_are_rate_limited() {
        let a = TestKey::es256_a("a");
        let source = Arc::new(StaticJwks::new(&[&a]));
        let cache = cache(&source);
        let t0 = Utc::now();
        source.fail(true);
        assert!(cache.key("a", t0).await.is_err());
        assert!(cache.key("a", t0 + Duration::seconds(5)).await.is_err());
        assert_eq!(source.fetches(), 1, "a failed fetch is not retried at once");
        source.fail(false);
        assert!(
            cache
                .key("a", t0 + Duration::seconds(31))
                .await
                .unwrap()
                .is_some()
        );
        // Stale keys are not used when the refresh fails.
        source.fail(true);
        let later = t0 + Duration::hours(2);
        assert!(cache.key("a", later).await.is_err());
    }

    #[test]
    fn a_jwks_document_keeps_only_usable_signing_keys() {
        let a = TestKey::es256_a("a");
        let good = serde_json::to_value(a.jwk()).unwrap();
        let mut encryption = good.clone();
        encryption["use"] = "enc".into();
        encryption["kid"] = "enc".into();
        let mut no_kid = good.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let doc = serde_json::json!({"keys": [
            good,
            encryption,
            no_kid,
            {"kty": "OKP", "crv": "X448", "x": "AAAA", "kid": "odd"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac-no-alg"},
        ]});
        let set = parse_jwk_set(doc.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.common.key_id.clone()).collect();
        assert_eq!(kids, [Some("a".to_owned())]);
        assert!(parse_jwk_set(br#"{"keys":[]}"#).is_err());
        assert!(parse_jwk_set(b"<html>").is_err());
    }
}
