//! Adapter layer: the object-store port ([`Objects`]) with locally signed forms and URLs, over
//! any byte store ([`Blobs`]): [`MemoryBlobs`] for the unit tests, a directory in the embedded
//! gateway (`messenger-local`'s `files` module, which also serves the URLs over HTTP through
//! [`LocalObjects::accept_post`] and [`LocalObjects::open`]). Forms and URLs have S3's shape and
//! are checked as S3 checks them, so client code is the same against either.

use super::policy;
use super::sigv4::{self, LocalSigner};
use super::{
    ObjectInfo, PENDING_TAGGING, PresignedPost, SignedUrl, TAGGING_FIELD, UploadForm, encode_uri,
};
use crate::ports::{ObjectError, Objects};
use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Why the store refused a form or a URL, with S3's status and error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a well-formed signed request.
    Malformed(String),
    /// The signature does not match (a field, the path or the query was changed).
    Signature,
    /// Past the URL's or the policy's expiry.
    Expired,
    /// A field breaks the policy (another type, another key, an extra field).
    Condition(String),
    /// The file is larger or smaller than the policy's `content-length-range`.
    TooLarge,
    TooSmall,
    /// No such object.
    NotFound,
}

impl Refusal {
    /// The HTTP status S3 answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::TooLarge | Self::TooSmall => 400,
            Self::Signature | Self::Expired | Self::Condition(_) => 403,
            Self::NotFound => 404,
        }
    }

    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "InvalidArgument",
            Self::Signature => "SignatureDoesNotMatch",
            Self::Expired | Self::Condition(_) => "AccessDenied",
            Self::TooLarge => "EntityTooLarge",
            Self::TooSmall => "EntityTooSmall",
            Self::NotFound => "NoSuchKey",
        }
    }

    /// A message for the error body.
    pub fn message(&self) -> String {
        match self {
            Self::Malformed(why) => why.clone(),
            Self::Signature => {
                "The request signature we calculated does not match the signature you provided."
                    .into()
            }
            Self::Expired => "Request has expired".into(),
            Self::Condition(c) => {
                format!("Invalid according to Policy: Policy Condition failed: {c}")
            }
            Self::TooLarge => "Your proposed upload exceeds the maximum allowed size.".into(),
            Self::TooSmall => {
                "Your proposed upload is smaller than the minimum allowed size.".into()
            }
            Self::NotFound => "The specified key does not exist.".into(),
        }
    }
}

/// An object's record in a byte store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub info: ObjectInfo,
    /// Uploaded and not (yet) attached to a message: swept after a day.
    pub pending: bool,
    pub uploaded_at: DateTime<Utc>,
}

/// Where a local object store keeps bytes. Keys are opaque strings.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores (or replaces) an object.
    async fn put(&self, key: &str, object: &StoredObject, bytes: Vec<u8>) -> std::io::Result<()>;
    /// An object and its bytes.
    async fn get(&self, key: &str) -> std::io::Result<Option<(StoredObject, Vec<u8>)>>;
    /// An object's record.
    async fn head(&self, key: &str) -> std::io::Result<Option<StoredObject>>;
    /// Marks an object attached (no longer pending); absent objects are left absent.
    async fn attach(&self, key: &str) -> std::io::Result<()>;
    /// Deletes an object; deleting an absent one is not an error.
    async fn delete(&self, key: &str) -> std::io::Result<()>;
    /// Deletes the pending objects uploaded before `before`; returns how many.
    async fn sweep(&self, before: DateTime<Utc>) -> std::io::Result<usize>;
}

/// A download as served: the bytes, their type, and the disposition the URL asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub disposition: Option<String>,
}

/// The object-store port with forms and URLs signed by a local secret (SigV4, credential
/// `local/<date>/local/s3/aws4_request`), served at `<base>/<path>`: POST there to upload,
/// GET `<path>/<key>` to download.
pub struct LocalObjects<B> {
    blobs: B,
    signer: LocalSigner,
    /// `http://127.0.0.1:8080`
    base: String,
    /// `127.0.0.1:8080`: the host the signatures cover.
    host: String,
    /// `/_local/files`
    path: String,
}

impl<B> std::fmt::Debug for LocalObjects<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjects")
            .field("base", &self.base)
            .field("path", &self.path)
            .finish()
    }
}

/// Signed URLs of the local stores are scoped to this region (any name would do).
const REGION: &str = "local";

impl<B: Blobs> LocalObjects<B> {
    /// A store at `base_url` (`http://host:port`), serving under `path` (`/_local/files`),
    /// signing with `secret`.
    pub fn new(blobs: B, secret: &[u8], base_url: &str, path: &str) -> Self {
        let base = base_url.trim_end_matches('/').to_owned();
        let host = base
            .split_once("://")
            .map_or(base.as_str(), |(_, h)| h)
            .to_owned();
        Self {
            blobs,
            signer: LocalSigner::new("local", secret, REGION),
            base,
            host,
            path: path.trim_end_matches('/').to_owned(),
        }
    }

    /// The byte store.
    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    /// The path uploads are posted to, and under which downloads are served.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// An upload: the form's fields (names as posted) and the file. Checked as S3 checks a
    /// signed POST (signature, expiry, every condition of the policy), then stored.
    pub async fn accept_post(
        &self,
        fields: &[(String, String)],
        file: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<String, Refusal> {
        let fields: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        self.signer.check_post(&fields)?;
        let policy = base64::engine::general_purpose::STANDARD
            .decode(fields.get("policy").map(String::as_str).unwrap_or_default())
            .map_err(|_| Refusal::Malformed("the policy is not base64".into()))?;
        policy::check(&policy, &fields, None, file.len() as u64, now)?;
        let key = fields
            .get("key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Refusal::Malformed("a form needs a key".into()))?;
        let metadata = fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(super::META_PREFIX)?.to_owned(), v.clone())))
            .collect();
        let object = StoredObject {
            info: ObjectInfo {
                size: file.len() as u64,
                content_type: fields
                    .get("content-type")
                    .cloned()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
                metadata,
            },
            pending: fields.get(TAGGING_FIELD).map(String::as_str) == Some(PENDING_TAGGING),
            uploaded_at: now,
        };
        self.blobs
            .put(key, &object, file)
            .await
            .map_err(|e| Refusal::Malformed(format!("cannot store the object: {e}")))?;
        Ok(key.clone())
    }

    /// A download: `path` as requested (percent-encoded) and its raw query string, checked as
    /// S3 checks a presigned GET (signature, then expiry).
    pub async fn open(
        &self,
        path: &str,
        raw_query: &str,
        now: DateTime<Utc>,
    ) -> Result<Download, Refusal> {
        let params = self.signer.check_get(&self.host, path, raw_query, now)?;
        let key = path
            .strip_prefix(&self.path)
            .and_then(|k| k.strip_prefix('/'))
            .and_then(super::decode_uri)
            .ok_or(Refusal::NotFound)?;
        let (object, bytes) = self
            .blobs
            .get(&key)
            .await
            .map_err(|e| Refusal::Malformed(format!("cannot read the object: {e}")))?
            .ok_or(Refusal::NotFound)?;
        Ok(Download {
            bytes,
            content_type: object.info.content_type,
            disposition: params.get("response-content-disposition").cloned(),
        })
    }
}

fn io(e: std::io::Error) -> ObjectError {
    ObjectError::Backend(Box::new(e))
}

#[async_trait]
impl<B: Blobs> Objects for LocalObjects<B> {
    async fn upload_form(
        &self,
        form: &UploadForm,
        now: DateTime<Utc>,
    ) -> Result<PresignedPost, ObjectError> {
        let t = now.trunc_subsecs(0);
        let signing = vec![
            ("x-amz-algorithm".to_owned(), sigv4::ALGORITHM.to_owned()),
            ("x-amz-credential".to_owned(), self.signer.credential(t)),
            ("x-amz-date".to_owned(), sigv4::amz_date(t)),
        ];
        let doc = policy::document(form, None, &signing);
        let policy = base64::engine::general_purpose::STANDARD.encode(doc);
        let mut fields = policy::fields(form, &signing);
        fields.insert(
            "x-amz-signature".into(),
            self.signer.sign_policy(&policy, t),
        );
        fields.insert("policy".into(), policy);
        Ok(PresignedPost {
            url: format!("{}{}", self.base, self.path),
            fields,
            expires_at: form.expires_at,
        })
    }

    async fn download_url(
        &self,
        key: &str,
        disposition: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<SignedUrl, ObjectError> {
        let t = now.trunc_subsecs(0);
        let secs = (expires_at - t)
            .num_seconds()
            .clamp(0, sigv4::MAX_EXPIRES_SECS);
        let path = format!("{}/{}", self.path, encode_uri(key, true));
        let query = self.signer.presign_get(
            &self.host,
            &path,
            &[("response-content-disposition", disposition)],
            t,
            secs,
        );
        Ok(SignedUrl {
            url: format!("{}{path}?{query}", self.base),
            expires_at: t + chrono::Duration::seconds(secs),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ObjectError> {
        Ok(self.blobs.head(key).await.map_err(io)?.map(|o| o.info))
    }

    async fn mark_attached(&self, key: &str) -> Result<(), ObjectError> {
        self.blobs.attach(key).await.map_err(io)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.blobs.delete(key).await.map_err(io)
    }
}

/// Objects in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryBlobs {
    objects: Mutex<HashMap<String, (StoredObject, Vec<u8>)>>,
}

impl MemoryBlobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (StoredObject, Vec<u8>)>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys stored, sorted (for tests).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[async_trait]
impl Blobs for MemoryBlobs {
    async fn put(&self, key: &str, object: &StoredObject, bytes: Vec<u8>) -> std::io::Result<()> {
        self.lock().insert(key.into(), (object.clone(), bytes));
        Ok(())
    }

    async fn get(&self, key: &str) -> std::io::Result<Option<(StoredObject, Vec<u8>)>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn head(&self, key: &str) -> std::io::Result<Option<StoredObject>> {
        Ok(self.lock().get(key).map(|(o, _)| o.clone()))
    }

    async fn attach(&self, key: &str) -> std::io::Result<()> {
        if let Some((o, _)) = self.lock().get_mut(key) {
            o.pending = false;
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    async fn sweep(&self, before: DateTime<Utc>) -> std::io::Result<usize> {
        let mut objects = self.lock();
        let n = objects.len();
        objects.retain(|_, (o, _)| !(o.pending && o.uploaded_at < before));
        Ok(n - objects.len())
    }
}

/// The in-memory object store of the unit tests and of tools: [`LocalObjects`] over
/// [`MemoryBlobs`], at `http://objects.test/files`.
pub type InMemoryObjects = LocalObjects<MemoryBlobs>;

impl InMemoryObjects {
    /// A fresh, empty store.
    pub fn in_memory() -> Self {
        LocalObjects::new(
            MemoryBlobs::default(),
            b"in-memory objects",
            "http://objects.test",
            "/files",
        )
    }

    /// Downloads a URL this store signed, as an HTTP client would (for tests).
    pub async fn fetch(&self, url: &str, now: DateTime<Utc>) -> Result<Download, Refusal> {
        let rest = url.strip_prefix(&self.base).ok_or(Refusal::NotFound)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        self.open(path, query, now).await
    }

    /// Posts a form this store signed, as an HTTP client would (for tests).
    pub async fn post(
        &self,
        form: &PresignedPost,
        file: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<String, Refusal> {
        let fields: Vec<(String, String)> = form.fields.clone().into_iter().collect();
        self.accept_post(&fields, file, now).await
    }
}
