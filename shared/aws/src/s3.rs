//! Adapter layer: the [`Objects`] port on S3 (attachments). No S3 SDK: a presigned POST is not
//! in it anyway (it is a policy document signed with SigV4), and the three calls the functions
//! make (HeadObject, DeleteObjectTagging, DeleteObject) are small signed HTTP requests, so this
//! module signs with `aws-sigv4` (already built for the other SDK crates) and sends through
//! hyper with rustls (already built for the JWKS fetcher): no crate, no build time and no
//! binary size added to the Lambdas.
//!
//! Forms and URLs are signed with the process's credentials (on Lambda, the function role's
//! session credentials): S3 refuses them once those expire, so their expiry is capped at the
//! credentials' and the caller is told the real one.

use crate::sdk::CallTimeouts;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use messenger::attachments::{
    ObjectInfo, PresignedPost, SignedUrl, UploadForm, encode_uri, policy, sigv4::ALGORITHM,
};
use messenger::ports::{ObjectError, Objects};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Credentials are refreshed when they expire within this margin.
const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// The longest presigned URL S3 accepts.
const MAX_EXPIRES: i64 = 7 * 24 * 60 * 60;
/// Attachments in one S3 bucket.
pub struct S3Objects {
    http: HttpClient,
    credentials: SharedCredentialsProvider,
    /// The last credentials, until they are about to expire.
    cached: Mutex<Option<Credentials>>,
    region: String,
    bucket: String,
    /// Up to the key: `https://<bucket>.s3.<region>.amazonaws.com` (virtual-hosted, AWS), or
    /// `<endpoint>/<bucket>` (path-style, emulators).
    base: String,
    timeouts: CallTimeouts,
    /// Requests sent, by S3 operation (every attempt: S3 bills each).
    sent: Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Objects")
            .field("bucket", &self.bucket)
            .field("base", &self.base)
            .finish()
    }
}

fn failed(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ObjectError {
    ObjectError::Backend(e.into())
}

impl S3Objects {
    /// Attachments in `bucket`, with the credentials and region of `sdk`; `endpoint` (an
    /// emulator's base URL) addresses the bucket path-style, else AWS's regional endpoint.
    pub fn new(sdk: &SdkConfig, bucket: &str, endpoint: Option<&str>) -> Result<Self, String> {
        let credentials = sdk
            .credentials_provider()
            .ok_or("no AWS credentials provider in the environment")?;
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let base = match endpoint {
            Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        let timeouts = CallTimeouts::default();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.enforce_http(false);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            credentials,
            cached: Mutex::new(None),
            region,
            bucket: bucket.into(),
            base,
            timeouts,
            sent: Mutex::default(),
        })
    }

    /// The requests sent so far, by S3 operation (request-count tests).
    pub fn requests(&self) -> BTreeMap<&'static str, u64> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The current credentials (cached until five minutes before they expire).
    async fn credentials(&self) -> Result<Credentials, ObjectError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| DateTime::<Utc>::from(e) - Utc::now() > REFRESH_MARGIN)
        };
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(c) = cached.filter(fresh) {
            return Ok(c);
        }
        let c = self
            .credentials
            .provide_credentials()
            .await
            .map_err(failed)?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.base, encode_uri(key, true))
    }

    /// `expires_at`, capped at the credentials' expiry (whole seconds after `t`).
    fn lifetime(c: &Credentials, t: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
        let mut end = expires_at;
        if let Some(e) = c.expiry() {
            end = end.min(DateTime::<Utc>::from(e));
        }
        (end - t).num_seconds().clamp(0, MAX_EXPIRES)
    }

    /// Sends one request to S3, signed in its headers (with the payload's SHA-256), with the
    /// call timeouts and up to three attempts on 5xx or a lost connection. The status, headers
    /// and body.
    async fn call(
        &self,
        op: &'static str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, hyper::HeaderMap, Bytes), ObjectError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            *self
                .sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(op)
                .or_default() += 1;
            let result = tokio::time::timeout(
                self.timeouts.attempt,
                self.call_once(method, url, headers, body.clone()),
            )
            .await
            .unwrap_or_else(|_| Err(failed(format!("{method} {url}: timed out"))));
            let retry = match &result {
                Ok((status, ..)) => *status >= 500,
                Err(_) => true,
            };
            if !retry || attempt >= 3 {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
    }

    async fn call_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, hyper::HeaderMap, Bytes), ObjectError> {
        let creds = self.credentials().await?;
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(failed)?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(failed)?;
        let (instructions, _) = sign(signable, &params).map_err(failed)?.into_parts();
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let mut request = builder.body(Full::new(body)).map_err(failed)?;
        instructions.apply_to_request_http1x(&mut request);
        let response = self.http.request(request).await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(failed)?
            .to_bytes();
        Ok((status, headers, body))
    }

    /// Creates the bucket unless it exists (tests and local set-ups; deployments create it from
    /// the template).
    pub async fn create_bucket(&self) -> Result<(), ObjectError> {
        let (status, _, body) = self
            .call("CreateBucket", "PUT", &self.base, &[], Bytes::new())
            .await?;
        let text = String::from_utf8_lossy(&body);
        if (200..300).contains(&status) || text.contains("BucketAlreadyOwnedByYou") {
            Ok(())
        } else {
            Err(failed(format!(
                "CreateBucket {}: {status} {text}",
                self.bucket
            )))
        }
    }

    /// The object's tags (tests read them back).
    pub async fn tagging(&self, key: &str) -> Result<String, ObjectError> {
        let url = format!("{}?tagging", self.object_url(key));
        let (status, _, body) = self
            .call("GetObjectTagging", "GET", &url, &[], Bytes::new())
            .await?;
        expect_ok("GetObjectTagging", status, &body)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

fn expect_ok(what: &str, status: u16, body: &[u8]) -> Result<(), ObjectError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(failed(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        )))
    }
}

#[async_trait]
impl Objects for S3Objects {
    async fn upload_form(
        &self,
        form: &UploadForm,
        now: DateTime<Utc>,
    ) -> Result<PresignedPost, ObjectError> {
        let creds = self.credentials().await?;
        let t = now.trunc_subsecs(0);
        let expires_at = t + chrono::Duration::seconds(Self::lifetime(&creds, t, form.expires_at));
        let date = t.format("%Y%m%d").to_string();
        let mut signing = vec![
            ("x-amz-algorithm".to_owned(), ALGORITHM.to_owned()),
            (
                "x-amz-credential".to_owned(),
                format!(
                    "{}/{date}/{}/s3/aws4_request",
                    creds.access_key_id(),
                    self.region
                ),
            ),
            (
                "x-amz-date".to_owned(),
                t.format("%Y%m%dT%H%M%SZ").to_string(),
            ),
        ];
        if let Some(token) = creds.session_token() {
            signing.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let pinned = UploadForm {
            expires_at,
            ..form.clone()
        };
        let doc = policy::document(&pinned, Some(&self.bucket), &signing);
        let encoded = base64::engine::general_purpose::STANDARD.encode(doc);
        let key = v4::generate_signing_key(
            creds.secret_access_key(),
            SystemTime::from(t),
            &self.region,
            "s3",
        );
        let signature = v4::calculate_signature(key, encoded.as_bytes());
        let mut fields: BTreeMap<String, String> = policy::fields(&pinned, &signing);
        fields.insert("policy".into(), encoded);
        fields.insert("x-amz-signature".into(), signature);
        Ok(PresignedPost {
            url: format!("{}/", self.base),
            fields,
            expires_at,
        })
    }

    async fn download_url(
        &self,
        key: &str,
        disposition: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<SignedUrl, ObjectError> {
        let creds = self.credentials().await?;
        let t = now.trunc_subsecs(0);
        let secs = Self::lifetime(&creds, t, expires_at);
        let url = format!(
            "{}?response-content-disposition={}",
            self.object_url(key),
            encode_uri(disposition, false)
        );
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs as u64));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::from(t))
            .settings(settings)
            .build()
            .map_err(failed)?
            .into();
        let signable = SignableRequest::new(
            "GET",
            &url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(failed)?;
        let (instructions, _) = sign(signable, &params).map_err(failed)?.into_parts();
        let mut request = hyper::Request::builder()
            .uri(&url)
            .body(())
            .map_err(failed)?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(SignedUrl {
            url: request.uri().to_string(),
            expires_at: t + chrono::Duration::seconds(secs),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ObjectError> {
        let (status, headers, body) = self
            .call(
                "HeadObject",
                "HEAD",
                &self.object_url(key),
                &[],
                Bytes::new(),
            )
            .await?;
        // A principal without s3:ListBucket gets 403, not 404, for a missing key: the functions
        // have no ListBucket, so both mean "not there".
        if status == 404 || status == 403 {
            return Ok(None);
        }
        expect_ok("HeadObject", status, &body)?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let size = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| failed("HeadObject without a Content-Length"))?;
        let metadata = headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name
                    .as_str()
                    .strip_prefix(messenger::attachments::META_PREFIX)?;
                Some((name.to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok(Some(ObjectInfo {
            size,
            content_type: header("content-type").unwrap_or_default().to_owned(),
            metadata,
        }))
    }

    /// Removes the object's tags (its `state=pending`), so the abandoned-upload rule no longer
    /// applies: a DELETE, which S3 does not bill, and no tag stored per object.
    async fn mark_attached(&self, key: &str) -> Result<(), ObjectError> {
        let url = format!("{}?tagging", self.object_url(key));
        let (status, _, body) = self
            .call("DeleteObjectTagging", "DELETE", &url, &[], Bytes::new())
            .await?;
        expect_ok("DeleteObjectTagging", status, &body)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let (status, _, body) = self
            .call(
                "DeleteObject",
                "DELETE",
                &self.object_url(key),
                &[],
                Bytes::new(),
            )
            .await?;
        expect_ok("DeleteObject", status, &body)
    }
}
