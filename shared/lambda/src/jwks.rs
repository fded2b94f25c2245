//! The JWKS port's HTTP adapter ([`HttpJwks`]): fetches an issuer's signing keys over HTTPS,
//! from an explicit JWKS URL or from the `jwks_uri` of the issuer's OpenID Connect discovery
//! document. Used by the authorizer Lambda and by the embedded gateway; the cache in front of
//! it is the core's (`messenger::auth::jwks::KeyCache`).
//!
//! hyper with rustls (the `ring` provider and the system's root certificates), the same client
//! stack the AWS SDK uses here, so it adds no crate to the Lambda builds. Every fetch has a
//! connect timeout and an overall timeout, and a bounded body.

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use messenger::auth::jwks::{JwkSet, JwksError, JwksSource, parse_jwk_set};
use messenger::auth::{IssuerConfig, IssuerVerifier};
use std::sync::Arc;
use std::time::Duration;

/// Where the keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// This URL serves the JWK set (Cognito: `<issuer>/.well-known/jwks.json`).
    Url(String),
    /// Read `jwks_uri` from `<issuer>/.well-known/openid-configuration`, whose `issuer` must be
    /// this one (OpenID Connect Discovery 1.0, §4.3).
    Discovery { issuer: String },
}

/// How long a fetch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimeouts {
    /// To open the TCP connection (default 2 s).
    pub connect: Duration,
    /// For the whole fetch, discovery included (default 3 s: the authorizer Lambda has 5).
    pub total: Duration,
}

impl Default for FetchTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(3),
        }
    }
}

/// Largest discovery document or JWK set read (real ones are a few KB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Checks a key URL: HTTPS, or plain HTTP to this machine only (an emulator, a test server).
/// Keys fetched over plain HTTP from elsewhere could be swapped on the way.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "{url:?}: keys are fetched over https (plain http only from 127.0.0.1/localhost)"
        )),
        _ => Err(format!("{url:?} is not an http(s) URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Fetches a JWK set over HTTP(S), with timeouts and a size limit.
pub struct HttpJwks {
    client: HttpsClient,
    location: JwksLocation,
    timeouts: FetchTimeouts,
    /// The `jwks_uri` discovery found, kept until a fetch from it fails.
    discovered: tokio::sync::Mutex<Option<String>>,
}

impl HttpJwks {
    /// A source for `location`; the URL is checked now ([`check_url`]), and the system's root
    /// certificates are loaded.
    pub fn new(location: JwksLocation, timeouts: FetchTimeouts) -> Result<Self, String> {
        match &location {
            JwksLocation::Url(url) => check_url(url)?,
            JwksLocation::Discovery { issuer } => check_url(issuer)?,
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeouts.connect));
        http.enforce_http(false);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            location,
            timeouts,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    async fn get(&self, url: &str) -> Result<Bytes, JwksError> {
        let uri: hyper::Uri = url.parse().map_err(|e| JwksError(format!("{url}: {e}")))?;
        let response = self
            .client
            .get(uri)
            .await
            .map_err(|e| JwksError(format!("GET {url}: {e}")))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(JwksError(format!("GET {url}: HTTP {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| JwksError(format!("GET {url}: {e}")))?;
        Ok(body.to_bytes())
    }

    /// The issuer's `jwks_uri`, discovered once.
    async fn jwks_uri(&self, issuer: &str) -> Result<String, JwksError> {
        let mut discovered = self.discovered.lock().await;
        if let Some(uri) = discovered.as_ref() {
            return Ok(uri.clone());
        }
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|e| JwksError(format!("{url}: not a discovery document: {e}")))?;
        if doc.issuer != issuer {
            return Err(JwksError(format!(
                "{url} names the issuer {:?}, not {issuer:?}",
                doc.issuer
            )));
        }
        check_url(&doc.jwks_uri).map_err(JwksError)?;
        *discovered = Some(doc.jwks_uri.clone());
        Ok(doc.jwks_uri)
    }

    async fn fetch_once(&self) -> Result<JwkSet, JwksError> {
        let url = match &self.location {
            JwksLocation::Url(url) => url.clone(),
            JwksLocation::Discovery { issuer } => self.jwks_uri(issuer).await?,
        };
        let fetched = self.get(&url).await.and_then(|body| parse_jwk_set(&body));
        if fetched.is_err() {
            // The issuer may have moved its keys: discover again next time.
            *self.discovered.lock().await = None;
        }
        fetched
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        tokio::time::timeout(self.timeouts.total, self.fetch_once())
            .await
            .unwrap_or_else(|_| {
                Err(JwksError(format!(
                    "no answer within {:?}",
                    self.timeouts.total
                )))
            })
    }
}

/// The verifier of an issuer's tokens: its keys from `jwks_url`, or found by discovery when
/// `None`. Refuses a configuration that could never verify anything, before anything is served.
pub fn issuer_verifier(
    config: IssuerConfig,
    jwks_url: Option<String>,
) -> Result<Arc<IssuerVerifier>, String> {
    config.validate()?;
    let location = match jwks_url {
        Some(url) => JwksLocation::Url(url),
        None => JwksLocation::Discovery {
            issuer: config.issuer.clone(),
        },
    };
    let source = HttpJwks::new(location, FetchTimeouts::default())?;
    Ok(Arc::new(IssuerVerifier::new(config, Arc::new(source))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        assert!(
            check_url("https://cognito-idp.eu-west-1.amazonaws.com/p/.well-known/jwks.json")
                .is_ok()
        );
        assert!(check_url("http://127.0.0.1:4566/p/.well-known/jwks.json").is_ok());
        assert!(check_url("http://localhost:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://issuer.example.com/jwks").is_err());
        assert!(check_url("http://10.0.0.1/jwks").is_err());
        assert!(check_url("ftp://127.0.0.1/jwks").is_err());
        assert!(check_url("not a url").is_err());
    }
}
