//! AWS Signature Version 4 for the local object stores: the same signed POST forms and presigned
//! GET URLs as S3's (`X-Amz-Algorithm`, `X-Amz-Credential`, … `X-Amz-Signature`), signed with a
//! local secret instead of AWS credentials, so client code cannot tell the stores apart. The S3
//! adapter signs with the `aws-sigv4` crate; `messenger-aws`'s tests check that a URL signed
//! here verifies there and the other way round.

use super::encode_uri;
use super::signed::Refusal;
use crate::domain::hex;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The only algorithm: HMAC-SHA256.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service every signature here is scoped to.
pub const SERVICE: &str = "s3";
/// The longest presigned URL S3 accepts: a week.
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 60 * 60;

/// `20261129T055801Z`, SigV4's `X-Amz-Date`.
pub fn amz_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SigV4's signing key: `HMAC("AWS4" + secret, date)`, then the region, the service and
/// `aws4_request`.
fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = b"AWS4".to_vec();
    k.extend_from_slice(secret);
    let k = hmac(&k, date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Constant-time equality of two signatures.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Signs with one secret, as one credential: `<access key>/<date>/<region>/s3/aws4_request`.
#[derive(Clone)]
pub struct LocalSigner {
    access_key: String,
    secret: Vec<u8>,
    region: String,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("LocalSigner")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish()
    }
}

impl LocalSigner {
    pub fn new(access_key: &str, secret: &[u8], region: &str) -> Self {
        Self {
            access_key: access_key.into(),
            secret: secret.to_vec(),
            region: region.into(),
        }
    }

    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/{SERVICE}/aws4_request", self.region)
    }

    /// `X-Amz-Credential`'s value for a signature made at `t`.
    pub fn credential(&self, t: DateTime<Utc>) -> String {
        format!(
            "{}/{}",
            self.access_key,
            self.scope(&t.format("%Y%m%d").to_string())
        )
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        signing_key(&self.secret, date, &self.region, SERVICE)
    }

    /// The signature of a POST policy (its base64 text is the string to sign) made at `t`.
    pub fn sign_policy(&self, policy_b64: &str, t: DateTime<Utc>) -> String {
        let key = self.signing_key(&t.format("%Y%m%d").to_string());
        hex(&hmac(&key, policy_b64.as_bytes()))
    }

    /// Checks a POST form's signing fields (lower-cased names) and its signature over the
    /// policy. Expiry is the policy's (checked with its conditions).
    pub fn check_post(&self, fields: &BTreeMap<String, String>) -> Result<(), Refusal> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
        let (policy, signature) = (get("policy"), get("x-amz-signature"));
        if policy.is_empty() || signature.is_empty() || get("x-amz-algorithm") != ALGORITHM {
            return Err(Refusal::Malformed(
                "missing or unknown signing fields".into(),
            ));
        }
        let t = parse_amz_date(get("x-amz-date"))
            .ok_or_else(|| Refusal::Malformed("x-amz-date is not a SigV4 date".into()))?;
        if get("x-amz-credential") != self.credential(t) {
            return Err(Refusal::Signature);
        }
        if same(&self.sign_policy(policy, t), signature) {
            Ok(())
        } else {
            Err(Refusal::Signature)
        }
    }

    fn string_to_sign(&self, canonical_request: &str, t: DateTime<Utc>) -> String {
        let hash = hex(&Sha256::digest(canonical_request.as_bytes()));
        let scope = self.scope(&t.format("%Y%m%d").to_string());
        format!("{ALGORITHM}\n{}\n{scope}\n{hash}", amz_date(t))
    }

    /// A presigned GET of `path` (already percent-encoded) on `host`, signed at `t` and valid
    /// for `expires_secs`: the query string, `params` (e.g. `response-content-disposition`)
    /// included.
    pub fn presign_get(
        &self,
        host: &str,
        path: &str,
        params: &[(&str, &str)],
        t: DateTime<Utc>,
        expires_secs: i64,
    ) -> String {
        let mut query: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        query.extend([
            ("X-Amz-Algorithm".into(), ALGORITHM.into()),
            ("X-Amz-Credential".into(), self.credential(t)),
            ("X-Amz-Date".into(), amz_date(t)),
            ("X-Amz-Expires".into(), expires_secs.to_string()),
            ("X-Amz-SignedHeaders".into(), "host".into()),
        ]);
        let canonical = canonical_query(&query);
        let signature = self.get_signature(host, path, &canonical, t);
        format!("{canonical}&X-Amz-Signature={signature}")
    }

    fn get_signature(
        &self,
        host: &str,
        path: &str,
        canonical_query: &str,
        t: DateTime<Utc>,
    ) -> String {
        let request =
            format!("GET\n{path}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
        let key = self.signing_key(&t.format("%Y%m%d").to_string());
        hex(&hmac(&key, self.string_to_sign(&request, t).as_bytes()))
    }

    /// Checks a presigned GET of `path` (as requested, percent-encoded) on `host` with the raw
    /// query string `raw_query`, at `now`: the signature, then the expiry. Returns the decoded
    /// query parameters.
    pub fn check_get(
        &self,
        host: &str,
        path: &str,
        raw_query: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>, Refusal> {
        let mut params = Vec::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                super::decode_uri(s).ok_or_else(|| Refusal::Malformed("bad query encoding".into()))
            };
            params.push((decode(k)?, decode(v)?));
        }
        let map: BTreeMap<String, String> = params.iter().cloned().collect();
        let get = |k: &str| map.get(k).map(String::as_str).unwrap_or_default();
        let signature = get("X-Amz-Signature");
        if signature.is_empty() || get("X-Amz-Algorithm") != ALGORITHM {
            return Err(Refusal::Signature);
        }
        let t = parse_amz_date(get("X-Amz-Date"))
            .ok_or_else(|| Refusal::Malformed("X-Amz-Date is not a SigV4 date".into()))?;
        let expires: i64 = get("X-Amz-Expires")
            .parse()
            .ok()
            .filter(|e| (0..=MAX_EXPIRES_SECS).contains(e))
            .ok_or_else(|| Refusal::Malformed("X-Amz-Expires must be 0 to 604800".into()))?;
        if get("X-Amz-Credential") != self.credential(t) || get("X-Amz-SignedHeaders") != "host" {
            return Err(Refusal::Signature);
        }
        params.retain(|(k, _)| k != "X-Amz-Signature");
        let expected = self.get_signature(host, path, &canonical_query(&params), t);
        if !same(&expected, signature) {
            return Err(Refusal::Signature);
        }
        if now > t + chrono::Duration::seconds(expires) {
            return Err(Refusal::Expired);
        }
        Ok(map)
    }
}

/// SigV4's canonical query string: each name and value percent-encoded, sorted.
fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (encode_uri(k, false), encode_uri(v, false)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_signing_key_is_aws_s_documented_example() {
        // "Examples of how to derive a signing key for Signature Version 4" (AWS General
        // Reference): this secret, date, region and service give this key.
        let key = signing_key(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn a_presigned_get_verifies_until_it_expires_and_not_once_changed() {
        let s = LocalSigner::new("local", b"secret", "local");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let path = "/files/att/dm%3Aa%3Ab/by-a/0123";
        let disposition = [(
            "response-content-disposition",
            "inline; filename*=UTF-8''x.png",
        )];
        let q = s.presign_get("127.0.0.1:8080", path, &disposition, t, 60);
        let ok = s.check_get(
            "127.0.0.1:8080",
            path,
            &q,
            t + chrono::Duration::seconds(60),
        );
        assert_eq!(
            ok.unwrap()["response-content-disposition"],
            "inline; filename*=UTF-8''x.png"
        );
        assert_eq!(
            s.check_get(
                "127.0.0.1:8080",
                path,
                &q,
                t + chrono::Duration::seconds(61)
            ),
            Err(Refusal::Expired)
        );
        let other_path = "/files/att/dm%3Aa%3Ab/by-a/0124";
        assert_eq!(
            s.check_get("127.0.0.1:8080", other_path, &q, t),
            Err(Refusal::Signature)
        );
        let longer = q.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
        assert_eq!(
            s.check_get("127.0.0.1:8080", path, &longer, t),
            Err(Refusal::Signature)
        );
        let forged = LocalSigner::new("local", b"guess", "local").presign_get(
            "127.0.0.1:8080",
            path,
            &[],
            t,
            60,
        );
        assert_eq!(
            s.check_get("127.0.0.1:8080", path, &forged, t),
            Err(Refusal::Signature)
        );
    }
}
