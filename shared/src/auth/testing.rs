//! Test support (feature `test-tokens`): fixed signing keys that stand in for an identity
//! provider's, their JWKs, and an in-memory [`JwksSource`] whose key set a test can rotate or
//! break. The keys are test fixtures (`testdata/`), never used outside tests.

use super::jwks::{JwksError, JwksSource};
use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A private key with its `kid`, signing tokens as an issuer would.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
}

impl TestKey {
    /// P-256 key "A" (ES256).
    pub fn es256_a(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(include_bytes!("testdata/es256-1.der")),
        )
    }

    /// P-256 key "B" (ES256), for rotations.
    pub fn es256_b(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(include_bytes!("testdata/es256-2.der")),
        )
    }

    /// A 2048-bit RSA key (RS256).
    pub fn rs256(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_der(include_bytes!("testdata/rs256.der")),
        )
    }

    fn new(kid: &str, alg: Algorithm, key: EncodingKey) -> Self {
        Self {
            kid: kid.into(),
            alg,
            key,
        }
    }

    /// The public key as the issuer publishes it: `kid`, `use: sig`, `alg`.
    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("a public JWK");
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk
    }

    /// A token over `claims` with this key's `alg` and `kid`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

/// A JWK set of these keys' public halves.
pub fn jwk_set(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
}

/// An in-memory issuer: serves the key set it was last given, counts fetches, and fails on
/// demand.
pub struct StaticJwks {
    set: Mutex<JwkSet>,
    fetches: AtomicUsize,
    failing: AtomicBool,
}

impl StaticJwks {
    /// An issuer publishing `keys`.
    pub fn new(keys: &[&TestKey]) -> Self {
        Self {
            set: Mutex::new(jwk_set(keys)),
            fetches: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// Publishes `keys` instead (a key rotation).
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.set.lock().unwrap() = jwk_set(keys);
    }

    /// Makes every fetch fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many fetches were made.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(JwksError("the issuer is down".into()));
        }
        Ok(self.set.lock().unwrap().clone())
    }
}
