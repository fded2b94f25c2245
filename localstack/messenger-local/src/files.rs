//! Attachments on one laptop: the object store of the embedded gateway.
//!
//! By default the gateway keeps uploaded files in a directory and serves them itself, with
//! forms and URLs of S3's shape (SigV4 presigned POST and GET, HMAC-signed with a key derived
//! from the gateway's JWT secret), so client code is the same as against S3:
//! - `POST /_local/files`: a presigned POST (`multipart/form-data`, every form field, then
//!   the file as field `file`), checked as S3 checks one (signature, expiry, every policy
//!   condition: key, content type, exact size, metadata); `204` once stored, S3's XML error
//!   and status otherwise.
//! - `GET /_local/files/<key>?X-Amz-…`: a presigned GET; the bytes with their content type
//!   and the disposition the URL names.
//!
//! Where the files live ([`Files`]): a fresh directory under the system's temp dir, removed
//! when the gateway stops (the default: as gone as the in-memory store; a killed gateway's is
//! removed by the next one to start), or a directory given
//! with `serve --files-dir` (kept). `serve --store dynamodb --s3-bucket B` uses S3 (MiniStack's)
//! instead and serves nothing here.

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use messenger::attachments::ObjectInfo;
use messenger::attachments::signed::{Blobs, LocalObjects, Refusal, StoredObject};
use messenger::ports::Objects;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where uploads are posted, and under which downloads are served.
pub const PATH: &str = "/_local/files";

/// An upload not attached to a message by then is removed (checked every hour).
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::days(1);

/// Where the gateway keeps attachments.
#[derive(Clone, Default)]
pub enum Files {
    /// A fresh directory under the system temp dir, removed when the gateway stops.
    #[default]
    Temporary,
    /// This directory (created when missing), kept.
    Directory(PathBuf),
    /// Another object store (S3): the gateway serves no files itself.
    Store(Arc<dyn Objects>),
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Temporary => f.write_str("Temporary"),
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            Self::Store(_) => f.write_str("Store"),
        }
    }
}

/// The object store a gateway runs with, and what it serves.
pub struct Mounted {
    pub objects: Arc<dyn Objects>,
    /// The directory store this gateway serves, and the largest file.
    served: Option<(Arc<LocalObjects<DirBlobs>>, u64)>,
    /// A temporary directory to remove at shutdown.
    temporary: Option<PathBuf>,
    /// The hourly sweep of abandoned uploads, stopped at shutdown.
    sweeper: Option<tokio::task::JoinHandle<()>>,
    /// What the banner says.
    pub described: String,
}

impl Mounted {
    /// The routes serving uploads and downloads (none when another store serves them).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let Some((store, max_bytes)) = &self.served else {
            return Router::new();
        };
        let (upload, download) = (store.clone(), store.clone());
        Router::new()
            .route(
                PATH,
                post(move |headers: HeaderMap, body: Bytes| async move {
                    accept(&upload, &headers, body).await
                }),
            )
            .route(
                &format!("{PATH}/{{*key}}"),
                get(move |uri: Uri| async move { serve_file(&download, &uri).await }),
            )
            // The form's fields and the file: the largest file plus room for the fields.
            .layer(DefaultBodyLimit::max(*max_bytes as usize + 64 * 1024))
    }

    /// Removes the temporary directory, if this gateway made one.
    pub async fn close(self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
        if let Some(dir) = self.temporary
            && let Err(e) = tokio::fs::remove_dir_all(&dir).await
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the files directory");
        }
    }
}

/// The object store for `files`, for a gateway at `http://{addr}` signing with `secret`.
pub async fn mount(
    files: &Files,
    secret: &[u8],
    addr: std::net::SocketAddr,
    max_bytes: u64,
) -> std::io::Result<Mounted> {
    let (dir, temporary) = match files {
        Files::Store(objects) => {
            return Ok(Mounted {
                objects: objects.clone(),
                served: None,
                temporary: None,
                sweeper: None,
                described: "files in S3".into(),
            });
        }
        Files::Directory(dir) => (dir.clone(), false),
        Files::Temporary => {
            remove_orphans(&std::env::temp_dir()).await;
            let name = format!(
                "messenger-local-files-{}-{}",
                std::process::id(),
                messenger::domain::random_hex(6)
            );
            (std::env::temp_dir().join(name), true)
        }
    };
    tokio::fs::create_dir_all(&dir).await?;
    // Forms and URLs are signed with a key of their own, derived from the JWT secret: processes
    // sharing a secret and a directory accept each other's URLs.
    let mut key = b"messenger-local files\0".to_vec();
    key.extend_from_slice(secret);
    let store = Arc::new(LocalObjects::new(
        DirBlobs::new(dir.clone()),
        &key,
        &format!("http://{addr}"),
        PATH,
    ));
    // As S3's lifecycle rule does: uploads never attached to a message go after a day.
    let swept = store.clone();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60 * 60));
        loop {
            every.tick().await;
            let before = Utc::now() - ABANDONED_AFTER;
            match swept.blobs().sweep(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "abandoned uploads removed"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep abandoned uploads"),
            }
        }
    });
    Ok(Mounted {
        objects: store.clone(),
        sweeper: Some(sweeper),
        served: Some((store, max_bytes)),
        described: format!("files in {}", dir.display()),
        temporary: temporary.then_some(dir),
    })
}

/// Removes the temporary directories of gateways that are gone without stopping (killed):
/// `messenger-local-files-<pid>-…` whose process no longer exists (Linux: no `/proc/<pid>`;
/// elsewhere nothing is removed).
async fn remove_orphans(temp: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(temp).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("messenger-local-files-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = cfg!(target_os = "linux")
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists();
        if gone {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// S3's error document.
fn refused(r: &Refusal) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        r.code(),
        xml_escape(&r.message())
    );
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn accept(store: &LocalObjects<DirBlobs>, headers: &HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((fields, file)) = parse_form(content_type, &body) else {
        return refused(&Refusal::Malformed(
            "The body of your POST request is not well-formed multipart/form-data.".into(),
        ));
    };
    match store.accept_post(&fields, file, Utc::now()).await {
        Ok(key) => {
            tracing::info!(key, "file uploaded");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => {
            tracing::info!(code = r.code(), "upload refused");
            refused(&r)
        }
    }
}

async fn serve_file(store: &LocalObjects<DirBlobs>, uri: &Uri) -> Response {
    match store
        .open(uri.path(), uri.query().unwrap_or_default(), Utc::now())
        .await
    {
        Ok(d) => {
            let mut response = d.bytes.into_response();
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&d.content_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            if let Some(v) = d.disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            // A file is data, never a page of this origin.
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
            response
        }
        Err(r) => refused(&r),
    }
}

/// A form's fields, in order, and its file.
type Form = (Vec<(String, String)>, Vec<u8>);

/// The fields and the file (field `file`) of a `multipart/form-data` body.
fn parse_form(content_type: &str, body: &[u8]) -> Option<Form> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut file = None;
    let mut rest = body;
    // Up to and including the first delimiter (a preamble is ignored).
    let start = find(rest, &delimiter)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, &[b"\r\n".as_slice(), &delimiter].concat())?;
        let part = &rest[..end];
        rest = &rest[end + 2 + delimiter.len()..];
        let split = find(part, b"\r\n\r\n")?;
        let (head, value) = (&part[..split], &part[split + 4..]);
        let head = std::str::from_utf8(head).ok()?;
        let name = head.lines().find_map(|line| {
            let (h, v) = line.split_once(':')?;
            if !h.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').map(str::trim).find_map(|p| {
                p.strip_prefix("name=")
                    .map(|n| n.trim_matches('"').to_owned())
            })
        })?;
        if name == "file" {
            file = Some(value.to_vec());
            // S3 ignores every field after the file.
            break;
        }
        fields.push((name, String::from_utf8(value.to_vec()).ok()?));
    }
    Some((fields, file?))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Objects as files in one directory: `<key, percent-encoded>.bin` (the bytes) and `.json`
/// (type, metadata, size, whether attached). The encoded key has no `/`, so no key can name a
/// path outside the directory.
#[derive(Debug, Clone)]
pub struct DirBlobs {
    dir: PathBuf,
}

/// The `.json` beside an object's bytes.
#[derive(Serialize, Deserialize)]
struct Record {
    size: u64,
    content_type: String,
    metadata: BTreeMap<String, String>,
    pending: bool,
    uploaded_at: DateTime<Utc>,
}

impl DirBlobs {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let name = messenger::attachments::encode_uri(key, false);
        (
            self.dir.join(format!("{name}.bin")),
            self.dir.join(format!("{name}.json")),
        )
    }

    async fn record(&self, key: &str) -> std::io::Result<Option<Record>> {
        match tokio::fs::read(self.paths(key).1).await {
            Ok(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write_record(&self, key: &str, r: &Record) -> std::io::Result<()> {
        let path = self.paths(key).1;
        let tmp = path.with_extension(format!("json.{}", messenger::domain::random_hex(4)));
        tokio::fs::write(&tmp, serde_json::to_vec(r).map_err(std::io::Error::other)?).await?;
        tokio::fs::rename(&tmp, &path).await
    }
}

fn stored(r: Record) -> StoredObject {
    StoredObject {
        info: ObjectInfo {
            size: r.size,
            content_type: r.content_type,
            metadata: r.metadata,
        },
        pending: r.pending,
        uploaded_at: r.uploaded_at,
    }
}

async fn remove(path: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put(&self, key: &str, object: &StoredObject, bytes: Vec<u8>) -> std::io::Result<()> {
        let (bin, _) = self.paths(key);
        // The bytes first, under a temporary name, then the record: a reader never sees a
        // record without its bytes.
        let tmp = bin.with_extension(format!("bin.{}", messenger::domain::random_hex(4)));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &bin).await?;
        self.write_record(
            key,
            &Record {
                size: object.info.size,
                content_type: object.info.content_type.clone(),
                metadata: object.info.metadata.clone(),
                pending: object.pending,
                uploaded_at: object.uploaded_at,
            },
        )
        .await
    }

    async fn get(&self, key: &str) -> std::io::Result<Option<(StoredObject, Vec<u8>)>> {
        let Some(r) = self.record(key).await? else {
            return Ok(None);
        };
        match tokio::fs::read(self.paths(key).0).await {
            Ok(bytes) => Ok(Some((stored(r), bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn head(&self, key: &str) -> std::io::Result<Option<StoredObject>> {
        Ok(self.record(key).await?.map(stored))
    }

    async fn attach(&self, key: &str) -> std::io::Result<()> {
        if let Some(mut r) = self.record(key).await?
            && r.pending
        {
            r.pending = false;
            self.write_record(key, &r).await?;
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        let (bin, json) = self.paths(key);
        remove(&json).await?;
        remove(&bin).await
    }

    async fn sweep(&self, before: DateTime<Utc>) -> std::io::Result<usize> {
        let mut swept = 0;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(encoded) = name.strip_suffix(".json") else {
                continue;
            };
            let Some(key) = messenger::attachments::decode_uri(encoded) else {
                continue;
            };
            if let Some(r) = self.record(&key).await?
                && r.pending
                && r.uploaded_at < before
            {
                self.delete(&key).await?;
                swept += 1;
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_keeps_objects_and_sweeps_only_old_abandoned_uploads() {
        let dir = std::env::temp_dir().join(format!(
            "messenger-dirblobs-test-{}",
            messenger::domain::random_hex(6)
        ));
        tokio::fs::create_dir_all(&dir).await.unwrap();
        let blobs = DirBlobs::new(dir.clone());
        let object = |pending, hours_ago| StoredObject {
            info: ObjectInfo {
                size: 3,
                content_type: "image/png".into(),
                metadata: BTreeMap::from([("name".to_owned(), "a%20b.png".to_owned())]),
            },
            pending,
            uploaded_at: Utc::now() - chrono::Duration::hours(hours_ago),
        };
        let keys = [
            "att/dm:a:b/by-a/old",
            "att/dm:a:b/by-a/new",
            "att/dm:a:b/by-a/sent",
        ];
        blobs
            .put(keys[0], &object(true, 30), b"old".to_vec())
            .await
            .unwrap();
        blobs
            .put(keys[1], &object(true, 1), b"new".to_vec())
            .await
            .unwrap();
        blobs
            .put(keys[2], &object(true, 30), b"yes".to_vec())
            .await
            .unwrap();
        blobs.attach(keys[2]).await.unwrap();
        let (stored, bytes) = blobs.get(keys[1]).await.unwrap().unwrap();
        assert_eq!(
            (stored.info, bytes),
            (object(true, 1).info, b"new".to_vec())
        );
        let swept = blobs.sweep(Utc::now() - ABANDONED_AFTER).await.unwrap();
        assert_eq!(swept, 1);
        assert!(blobs.head(keys[0]).await.unwrap().is_none());
        assert!(blobs.head(keys[1]).await.unwrap().is_some());
        assert!(!blobs.head(keys[2]).await.unwrap().unwrap().pending);
        blobs.delete(keys[1]).await.unwrap();
        blobs.delete(keys[1]).await.unwrap();
        assert!(blobs.get(keys[1]).await.unwrap().is_none());
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }

    #[test]
    fn a_form_parses_into_its_fields_and_the_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\natt/a\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: image/png\r\n\r\n\x00\r\n\x01\r\n--XyZ--\r\n";
        let (fields, file) = parse_form("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(fields, vec![("key".to_owned(), "att/a".to_owned())]);
        assert_eq!(file, b"\x00\r\n\x01");
        assert_eq!(parse_form("text/plain; boundary=XyZ", body), None);
        assert_eq!(
            parse_form("multipart/form-data; boundary=XyZ", b"--XyZ--"),
            None
        );
    }
}
