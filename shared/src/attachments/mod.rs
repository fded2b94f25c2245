//! Domain layer for attachments (photos, voice notes, files). The bytes never pass through the
//! WebSocket: `upload` hands the client a presigned POST (S3's browser-upload form) for one
//! object, the client posts the file straight to the object store, and `send` refers to it by
//! its [`AttachmentId`]. Messages carry [`Attachment`]s; their download URLs are minted when a
//! frame is produced ([`crate::ports::Objects::download_url`]).
//!
//! What an upload may be is decided here, once, for every object store: the rules
//! ([`UploadSpec::new`]: size, allowed types, the name, width/height/duration in sane ranges),
//! where the object goes ([`object_key`]: scoped to the conversation and the uploader), and
//! what the signed form pins ([`UploadSpec::form`]: the key, the content type, the exact size,
//! and metadata naming the message it is for). `send` trusts only what the store reports about
//! the object ([`ObjectInfo`]), checked by [`attachment_of`].
//!
//! - [`policy`]: the POST policy document, built for every store and checked by the local ones.
//! - [`sigv4`]: AWS Signature Version 4, for the local stores' upload forms and download URLs
//!   (the S3 adapter signs with the AWS crate; a test proves both sign alike).
//! - [`signed`]: [`signed::LocalObjects`], the object-store port with locally signed URLs over a
//!   byte store ([`signed::Blobs`]): in memory here, a directory in the embedded gateway.

pub mod policy;
pub mod signed;
pub mod sigv4;

use crate::Error;
use crate::domain::{ClientMsgId, ConversationId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An attachment, as minted by `upload`: 32 lowercase hex digits (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttachmentId(String);

impl AttachmentId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(crate::domain::random_hex(16))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AttachmentId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s))
        } else {
            let shown: String = s.chars().take(40).collect();
            Err(format!(
                "invalid attachment id {shown:?}: the ids `upload` returns are 32 hex digits"
            ))
        }
    }
}

impl From<AttachmentId> for String {
    fn from(id: AttachmentId) -> String {
        id.0
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file attached to a message, as stored with it: what the object store reported when the
/// message was sent, and the metadata the uploader declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// The file name the uploader gave (shown to recipients, offered when saving).
    pub name: String,
    /// Pixels, for images and videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Milliseconds, for voice notes, audio and videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The content types accepted by default: common photo, video, audio and document formats.
/// Never HTML, SVG or scripts, which a browser would run if opened.
pub const DEFAULT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/webm",
    "audio/wav",
    "application/pdf",
    "text/plain",
    "application/zip",
    "application/octet-stream",
];

/// Limits on attachments (all configurable; docs/protocol.md lists the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// Largest file, in bytes (`too_large` past it).
    pub max_bytes: u64,
    /// Accepted content types: exact (`image/png`) or a whole family (`image/*`).
    pub types: Vec<String>,
    /// Most attachments on one message.
    pub per_message: usize,
    /// How long an upload form stays valid.
    pub upload_ttl: chrono::Duration,
    /// How long a download URL stays valid.
    pub download_ttl: chrono::Duration,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            types: DEFAULT_TYPES.iter().map(|t| t.to_string()).collect(),
            per_message: 10,
            upload_ttl: chrono::Duration::minutes(15),
            download_ttl: chrono::Duration::hours(1),
        }
    }
}

/// Longest file name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Widest and tallest image or video, in pixels.
pub const MAX_DIMENSION: u32 = 20_000;
/// Longest voice note, audio or video: 24 hours, in milliseconds.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Metadata fields every upload form pins (S3 keeps them as the object's user metadata and
/// returns them, lower-cased and without the prefix, from HeadObject).
pub const META_PREFIX: &str = "x-amz-meta-";
/// The file name, percent-encoded (metadata is ASCII).
const META_NAME: &str = "name";
/// The `client_msg_id` of the one message the file may be sent in.
const META_MESSAGE: &str = "message";
/// The declared size and type, compared with what the store reports.
const META_SIZE: &str = "size";
const META_TYPE: &str = "type";
const META_WIDTH: &str = "width";
const META_HEIGHT: &str = "height";
const META_DURATION: &str = "duration-ms";

/// The form field that tags a new upload `state=pending`: a lifecycle rule deletes pending
/// objects after a day; `send` removes the tag from the ones it attaches.
pub const TAGGING_FIELD: &str = "tagging";
/// The tag set of a new upload, in the XML S3's POST form takes.
pub const PENDING_TAGGING: &str =
    "<Tagging><TagSet><Tag><Key>state</Key><Value>pending</Value></Tag></TagSet></Tagging>";

/// A content type as written in an upload: `type/subtype`, lower case, no parameters.
fn check_content_type(t: &str) -> Result<(), Error> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&^_.+-".contains(&b))
    };
    match t.split_once('/') {
        Some((ty, sub)) if t.len() <= 127 && token(ty) && token(sub) => Ok(()),
        _ => Err(Error::BadRequest(format!(
            "content_type {:?} is not a lower-case `type/subtype`",
            t.chars().take(130).collect::<String>()
        ))),
    }
}

/// Whether `t` is one of the accepted types.
pub fn type_allowed(types: &[String], t: &str) -> bool {
    types
        .iter()
        .any(|allowed| match allowed.strip_suffix("/*") {
            Some(family) => t.split_once('/').is_some_and(|(ty, _)| ty == family),
            None => allowed == t,
        })
}

fn is_visual(t: &str) -> bool {
    t.starts_with("image/") || t.starts_with("video/")
}

fn is_timed(t: &str) -> bool {
    t.starts_with("audio/") || t.starts_with("video/")
}

/// A file name: 1–255 bytes of UTF-8, no control characters, no path.
fn check_name(name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("is longer than 255 bytes")
    } else if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        Some("may not contain control characters, / or \\")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::BadRequest(format!("name {why}"))),
        None => Ok(()),
    }
}

/// An upload the rules accept: what `upload` validated, before anything is stored or signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    pub content_type: String,
    pub size: u64,
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

impl UploadSpec {
    /// Checks an upload against `limits`: a size of 1 byte to `max_bytes` (`too_large` past it),
    /// an accepted content type, a file name, and the optional width and height (images and
    /// videos, 1–20,000 pixels) and duration (audio and videos, 1 ms to 24 h).
    pub fn new(
        limits: &AttachmentLimits,
        content_type: String,
        size: u64,
        name: String,
        width: Option<u32>,
        height: Option<u32>,
        duration_ms: Option<u64>,
    ) -> Result<Self, Error> {
        check_content_type(&content_type)?;
        if !type_allowed(&limits.types, &content_type) {
            return Err(Error::BadRequest(format!(
                "content_type {content_type} is not accepted here; accepted: {}",
                limits.types.join(", ")
            )));
        }
        if size == 0 {
            return Err(Error::BadRequest("size must be at least 1 byte".into()));
        }
        if size > limits.max_bytes {
            return Err(Error::TooLarge(format!(
                "the file is {size} bytes; the limit is {}",
                limits.max_bytes
            )));
        }
        check_name(&name)?;
        for (field, value) in [("width", width), ("height", height)] {
            match value {
                Some(_) if !is_visual(&content_type) => {
                    return Err(Error::BadRequest(format!(
                        "{field} is for images and videos, not {content_type}"
                    )));
                }
                Some(v) if v == 0 || v > MAX_DIMENSION => {
                    return Err(Error::BadRequest(format!(
                        "{field} must be 1 to {MAX_DIMENSION} pixels"
                    )));
                }
                _ => {}
            }
        }
        match duration_ms {
            Some(_) if !is_timed(&content_type) => {
                return Err(Error::BadRequest(format!(
                    "duration_ms is for audio and videos, not {content_type}"
                )));
            }
            Some(d) if d == 0 || d > MAX_DURATION_MS => {
                return Err(Error::BadRequest(format!(
                    "duration_ms must be 1 to {MAX_DURATION_MS} (24 hours)"
                )));
            }
            _ => {}
        }
        Ok(Self {
            content_type,
            size,
            name,
            width,
            height,
            duration_ms,
        })
    }

    /// The signed form for this upload as attachment `id` of `uploader` in `conv`, for the
    /// message `message` only, valid until `expires_at`.
    pub fn form(
        &self,
        conv: &ConversationId,
        uploader: &UserId,
        id: &AttachmentId,
        message: &ClientMsgId,
        expires_at: DateTime<Utc>,
    ) -> UploadForm {
        let meta = |name: &str, value: String| (format!("{META_PREFIX}{name}"), value);
        let mut fields = vec![
            meta(META_NAME, encode_uri(&self.name, false)),
            meta(META_MESSAGE, message.to_string()),
            meta(META_SIZE, self.size.to_string()),
            meta(META_TYPE, self.content_type.clone()),
        ];
        let dims = [
            (META_WIDTH, self.width.map(u64::from)),
            (META_HEIGHT, self.height.map(u64::from)),
            (META_DURATION, self.duration_ms),
        ];
        for (name, value) in dims {
            if let Some(v) = value {
                fields.push(meta(name, v.to_string()));
            }
        }
        fields.push((TAGGING_FIELD.into(), PENDING_TAGGING.into()));
        UploadForm {
            key: object_key(conv, uploader, id),
            content_type: self.content_type.clone(),
            size: self.size,
            fields,
            expires_at,
        }
    }
}

/// What an object store signs for one upload: a POST form that can create exactly this object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadForm {
    pub key: String,
    /// The `Content-Type` field, pinned.
    pub content_type: String,
    /// The exact size (`content-length-range` from `size` to `size`).
    pub size: u64,
    /// Every other field the form carries, pinned to these values (metadata, tagging).
    pub fields: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// A signed upload form, as the client gets it: POST `multipart/form-data` to `url` with every
/// field, then the file as the last field, named `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedPost {
    pub url: String,
    pub fields: BTreeMap<String, String>,
    /// The form is refused after this instant (never later than the signer's credentials).
    pub expires_at: DateTime<Utc>,
}

/// A presigned download URL and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// What an object store reports about a stored object (S3's HeadObject).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: String,
    /// User metadata, names lower-cased and without `x-amz-meta-`.
    pub metadata: BTreeMap<String, String>,
}

/// Where attachment `id` of `uploader` in `conv` is stored:
/// `att/<conversation>/by-<uploader>/<id>`. Keys are made only from validated ids (no `/`);
/// `by-` keeps a user id such as `..` from being a path segment that URLs would resolve away.
pub fn object_key(conv: &ConversationId, uploader: &UserId, id: &AttachmentId) -> String {
    format!("att/{conv}/by-{uploader}/{id}")
}

/// Why an object cannot be attached, as the client's error.
fn unusable(id: &AttachmentId, why: &str) -> Error {
    Error::BadRequest(format!("attachment {id} {why}"))
}

/// The attachment an object makes, when it is one the rules accept for message `message`:
/// uploaded through a form made for that message (so no file is attached twice), of the size
/// and type it declared, with readable metadata. The object was found under the key of the
/// conversation and the sender, so it is theirs and this conversation's.
pub fn attachment_of(
    info: &ObjectInfo,
    id: &AttachmentId,
    message: &ClientMsgId,
) -> Result<Attachment, Error> {
    let meta = |name: &str| info.metadata.get(name).map(String::as_str);
    if meta(META_MESSAGE) != Some(message.as_str()) {
        return Err(Error::NotFound(format!(
            "attachment {id} was uploaded for another message; upload it again with this \
             client_msg_id"
        )));
    }
    if meta(META_SIZE) != Some(info.size.to_string().as_str()) {
        return Err(unusable(id, "is not of the size its upload declared"));
    }
    if meta(META_TYPE) != Some(info.content_type.as_str()) {
        return Err(unusable(id, "is not of the type its upload declared"));
    }
    let name = meta(META_NAME)
        .and_then(decode_uri)
        .ok_or_else(|| unusable(id, "has no readable name"))?;
    let number = |name: &str| -> Result<Option<u64>, Error> {
        meta(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| unusable(id, "has unreadable metadata"))
            })
            .transpose()
    };
    let dimension = |name: &str| -> Result<Option<u32>, Error> {
        number(name)?
            .map(|v| u32::try_from(v).map_err(|_| unusable(id, "has unreadable metadata")))
            .transpose()
    };
    Ok(Attachment {
        id: id.clone(),
        content_type: info.content_type.clone(),
        size: info.size,
        name,
        width: dimension(META_WIDTH)?,
        height: dimension(META_HEIGHT)?,
        duration_ms: number(META_DURATION)?,
    })
}

/// The `Content-Disposition` a download is served with: photos, videos and audio inline (an
/// app shows or plays them), anything else as a download, never rendered by a browser; both
/// with the file's name.
pub fn disposition(a: &Attachment) -> String {
    let how = if is_visual(&a.content_type) || a.content_type.starts_with("audio/") {
        "inline"
    } else {
        "attachment"
    };
    format!("{how}; filename*=UTF-8''{}", encode_uri(&a.name, false))
}

/// A message's text for a push preview: its body, or what its files are ("Photo", "Voice
/// message", the file's name…) when it has none.
pub fn preview(body: &str, files: &[Attachment]) -> String {
    let Some(first) = files.first().filter(|_| body.is_empty()) else {
        return body.to_owned();
    };
    let what = match first.content_type.split('/').next() {
        Some("image") => "Photo".to_owned(),
        Some("video") => "Video".to_owned(),
        Some("audio") => "Voice message".to_owned(),
        _ => first.name.clone(),
    };
    match files.len() {
        1 => format!("📎 {what}"),
        n => format!("📎 {what} and {} more", n - 1),
    }
}

/// Percent-encodes every byte except RFC 3986's unreserved characters (and `/` when
/// `keep_slash`): how SigV4 encodes paths and query values, and how names are kept in metadata.
pub fn encode_uri(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes percent-encoding (`+` stays a plus); `None` when it is malformed or not UTF-8.
pub fn decode_uri(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(t: &str, size: u64) -> Result<UploadSpec, Error> {
        UploadSpec::new(
            &AttachmentLimits::default(),
            t.into(),
            size,
            "photo.jpg".into(),
            None,
            None,
            None,
        )
    }

    #[test]
    fn ids_are_32_hex_digits() {
        let id = AttachmentId::random();
        assert_eq!(AttachmentId::try_from(id.to_string()), Ok(id));
        for bad in [
            "",
            "ABCDEF0123456789abcdef0123456789",
            "../x",
            &"a".repeat(33),
        ] {
            assert!(AttachmentId::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rules_refuse_what_is_too_big_of_another_type_or_badly_named() {
        assert!(spec("image/jpeg", 1).is_ok());
        assert!(spec("image/jpeg", 25 * 1024 * 1024).is_ok());
        assert!(matches!(
            spec("image/jpeg", 25 * 1024 * 1024 + 1),
            Err(Error::TooLarge(_))
        ));
        for t in [
            "text/html",
            "image/svg+xml",
            "Image/JPEG",
            "image/jpeg; x=1",
            "jpeg",
        ] {
            assert!(matches!(spec(t, 10), Err(Error::BadRequest(_))), "{t}");
        }
        assert!(matches!(spec("image/png", 0), Err(Error::BadRequest(_))));
        let limits = AttachmentLimits::default();
        for name in ["", "..", "a/b", "a\u{0}b", &"x".repeat(256)] {
            let r = UploadSpec::new(
                &limits,
                "text/plain".into(),
                1,
                name.into(),
                None,
                None,
                None,
            );
            assert!(matches!(r, Err(Error::BadRequest(_))), "{name:?}");
        }
        let family = vec!["image/*".to_string()];
        assert!(type_allowed(&family, "image/avif") && !type_allowed(&family, "video/mp4"));
    }

    #[test]
    fn metadata_is_checked_against_the_type_and_sane_ranges() {
        let l = AttachmentLimits::default();
        let with =
            |t: &str, w, h, d| UploadSpec::new(&l, t.into(), 10, "f".into(), w, h, d).map(|_| ());
        assert!(with("image/png", Some(4000), Some(3000), None).is_ok());
        assert!(with("video/mp4", Some(1920), Some(1080), Some(60_000)).is_ok());
        assert!(with("audio/ogg", None, None, Some(MAX_DURATION_MS)).is_ok());
        for bad in [
            with("image/png", Some(0), None, None),
            with("image/png", Some(MAX_DIMENSION + 1), None, None),
            with("image/png", None, None, Some(1000)),
            with("audio/ogg", Some(10), None, None),
            with("audio/ogg", None, None, Some(0)),
            with("audio/ogg", None, None, Some(MAX_DURATION_MS + 1)),
            with("application/pdf", None, Some(10), None),
        ] {
            assert!(matches!(bad, Err(Error::BadRequest(_))));
        }
    }

    fn stored(form: &UploadForm, size: u64, content_type: &str) -> ObjectInfo {
        let metadata = form
            .fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(META_PREFIX)?.to_owned(), v.clone())))
            .collect();
        ObjectInfo {
            size,
            content_type: content_type.into(),
            metadata,
        }
    }

    #[test]
    fn an_object_is_an_attachment_only_for_its_message_at_its_declared_size_and_type() {
        let l = AttachmentLimits::default();
        let spec = UploadSpec::new(
            &l,
            "image/png".into(),
            1000,
            "Фото 1.png".into(),
            Some(640),
            Some(480),
            None,
        )
        .unwrap();
        let (conv, alice) = (
            ConversationId::new("dm:alice:bob").unwrap(),
            UserId::new("alice").unwrap(),
        );
        let (id, cmid) = (AttachmentId::random(), ClientMsgId::new("c-1").unwrap());
        let form = spec.form(&conv, &alice, &id, &cmid, Utc::now());
        assert_eq!(form.key, format!("att/dm:alice:bob/by-alice/{id}"));
        let a = attachment_of(&stored(&form, 1000, "image/png"), &id, &cmid).unwrap();
        assert_eq!(
            (a.name.as_str(), a.size, a.width, a.height, a.duration_ms),
            ("Фото 1.png", 1000, Some(640), Some(480), None)
        );
        let other = ClientMsgId::new("c-2").unwrap();
        assert!(matches!(
            attachment_of(&stored(&form, 1000, "image/png"), &id, &other),
            Err(Error::NotFound(_))
        ));
        for info in [
            stored(&form, 999, "image/png"),
            stored(&form, 1000, "image/gif"),
        ] {
            assert!(matches!(
                attachment_of(&info, &id, &cmid),
                Err(Error::BadRequest(_))
            ));
        }
    }

    #[test]
    fn names_round_trip_through_percent_encoding_and_downloads_name_the_file() {
        for s in ["plain.txt", "a b+c%d", "Фото 1.png", "~._-"] {
            assert_eq!(decode_uri(&encode_uri(s, false)).as_deref(), Some(s));
        }
        assert_eq!(encode_uri("a/b c", true), "a/b%20c");
        assert_eq!(decode_uri("%zz"), None);
        let a = Attachment {
            id: AttachmentId::random(),
            content_type: "application/pdf".into(),
            size: 1,
            name: "q3 report.pdf".into(),
            width: None,
            height: None,
            duration_ms: None,
        };
        assert_eq!(
            disposition(&a),
            "attachment; filename*=UTF-8''q3%20report.pdf"
        );
        let photo = Attachment {
            content_type: "image/jpeg".into(),
            ..a
        };
        assert!(disposition(&photo).starts_with("inline;"));
    }
}
