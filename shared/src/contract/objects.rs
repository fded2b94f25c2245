//! Contract of [`Objects`]: what the signed forms and URLs of every object store (memory, a
//! directory, S3) let a client do, through an [`ObjectClient`] (plain HTTP for the real stores).

use super::{conv, tag, user};
use crate::attachments::{
    AttachmentId, AttachmentLimits, UploadSpec, attachment_of, disposition, object_key,
};
use crate::domain::ClientMsgId;
use crate::ports::Objects;
use async_trait::async_trait;
use chrono::{Duration, Utc};

/// An HTTP response as the contract looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub disposition: Option<String>,
    pub body: Vec<u8>,
}

/// What an app does with forms and URLs: HTTP to the store.
#[async_trait]
pub trait ObjectClient: Send + Sync {
    /// POSTs `fields` and then the file (field `file`) to `url` as `multipart/form-data`, as a
    /// browser form does; the HTTP status.
    async fn post_form(&self, url: &str, fields: &[(String, String)], file: Vec<u8>) -> u16;
    /// GETs `url`.
    async fn get(&self, url: &str) -> Fetched;
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// `size` bytes unlike any other test's.
fn bytes(size: usize, tag: &str) -> Vec<u8> {
    let seed = tag.as_bytes();
    (0..size)
        .map(|i| seed[i % seed.len()].wrapping_add(i as u8))
        .collect()
}

struct Upload {
    spec: UploadSpec,
    key: String,
    id: AttachmentId,
    cmid: ClientMsgId,
    form: crate::attachments::UploadForm,
}

/// A PNG upload of `size` bytes for a fresh conversation, user and message.
fn upload(t: &str, size: u64, expires_in: Duration) -> Upload {
    let spec = UploadSpec::new(
        &AttachmentLimits::default(),
        "image/png".into(),
        size,
        "contract é+%.png".into(),
        Some(10),
        Some(20),
        None,
    )
    .unwrap();
    let (c, u, id) = (conv(t), user("uploader", t), AttachmentId::random());
    let cmid = ClientMsgId::new(format!("c-{t}")).unwrap();
    let form = spec.form(&c, &u, &id, &cmid, Utc::now() + expires_in);
    Upload {
        key: object_key(&c, &u, &id),
        spec,
        id,
        cmid,
        form,
    }
}

fn fields(post: &crate::attachments::PresignedPost) -> Vec<(String, String)> {
    post.fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A file posted with its form is stored as declared, served byte-identical by a download URL
/// (with its type and disposition), and gone once deleted.
pub async fn an_upload_round_trips(objects: &dyn Objects, client: &dyn ObjectClient) {
    let t = tag();
    let u = upload(&t, 1500, Duration::minutes(5));
    let now = Utc::now();
    assert_eq!(objects.head(&u.key).await.unwrap(), None);
    let post = objects.upload_form(&u.form, now).await.unwrap();
    assert!(post.expires_at > now && post.expires_at <= u.form.expires_at);
    let file = bytes(1500, &t);
    let status = client
        .post_form(&post.url, &fields(&post), file.clone())
        .await;
    assert!(ok(status), "the upload was refused: {status}");

    let info = objects.head(&u.key).await.unwrap().expect("stored");
    let a = attachment_of(&info, &u.id, &u.cmid).expect("as declared");
    assert_eq!(
        (a.size, a.content_type.as_str(), a.name.as_str()),
        (1500, "image/png", u.spec.name.as_str())
    );
    assert_eq!(
        (a.width, a.height, a.duration_ms),
        (Some(10), Some(20), None)
    );

    let shown = disposition(&a);
    let url = objects
        .download_url(&u.key, &shown, now, now + Duration::minutes(10))
        .await
        .unwrap();
    let left = url.expires_at - now;
    assert!(
        left > Duration::minutes(9) && left <= Duration::minutes(10),
        "{left}"
    );
    let got = client.get(&url.url).await;
    assert_eq!(got.status, 200);
    assert!(got.body == file, "the download differs from the upload");
    assert_eq!(got.content_type.as_deref(), Some("image/png"));
    assert_eq!(got.disposition.as_deref(), Some(shown.as_str()));

    objects.mark_attached(&u.key).await.unwrap();
    objects.mark_attached(&u.key).await.unwrap();
    assert!(objects.head(&u.key).await.unwrap().is_some());
    objects.delete(&u.key).await.unwrap();
    assert_eq!(objects.head(&u.key).await.unwrap(), None);
    assert!(
        !ok(client.get(&url.url).await.status),
        "served after delete"
    );
    objects.delete(&u.key).await.unwrap();
}

/// A form creates exactly its object: another size, another type, another key, an unsigned
/// field or a post after its expiry is refused and stores nothing; the form still works after.
pub async fn forms_accept_only_what_they_pin(objects: &dyn Objects, client: &dyn ObjectClient) {
    let t = tag();
    let u = upload(&t, 100, Duration::minutes(5));
    let post = objects.upload_form(&u.form, Utc::now()).await.unwrap();
    let good = fields(&post);
    let with = |name: &str, value: &str| {
        let mut f: Vec<(String, String)> =
            good.iter().filter(|(k, _)| k != name).cloned().collect();
        f.push((name.into(), value.into()));
        f
    };
    let elsewhere = object_key(&conv(&t), &user("someone", &t), &u.id);
    let attempts = [
        ("99 bytes", good.clone(), 99),
        ("101 bytes", good.clone(), 101),
        ("another type", with("Content-Type", "text/html"), 100),
        ("another key", with("key", &elsewhere), 100),
        ("an unsigned field", with("x-amz-meta-extra", "1"), 100),
    ];
    for (what, fields, size) in attempts {
        let status = client.post_form(&post.url, &fields, bytes(size, &t)).await;
        assert!(!ok(status), "{what} was accepted ({status})");
    }
    assert_eq!(objects.head(&u.key).await.unwrap(), None);
    assert_eq!(objects.head(&elsewhere).await.unwrap(), None);

    let late = upload(&t, 100, Duration::seconds(-1));
    let expired = objects.upload_form(&late.form, Utc::now()).await.unwrap();
    let status = client
        .post_form(&expired.url, &fields(&expired), bytes(100, &t))
        .await;
    assert!(!ok(status), "an expired form was accepted ({status})");
    assert_eq!(objects.head(&late.key).await.unwrap(), None);

    let status = client.post_form(&post.url, &good, bytes(100, &t)).await;
    assert!(ok(status), "the form itself was refused ({status})");
}

/// A download URL stops working when it expires, and cannot be edited to last longer or to
/// name another object.
pub async fn download_urls_expire_and_cannot_be_edited(
    objects: &dyn Objects,
    client: &dyn ObjectClient,
) {
    let t = tag();
    let u = upload(&t, 10, Duration::minutes(5));
    let post = objects.upload_form(&u.form, Utc::now()).await.unwrap();
    assert!(ok(client
        .post_form(&post.url, &fields(&post), bytes(10, &t))
        .await));
    let now = Utc::now();
    let signed_before = now - Duration::hours(2);
    let old = objects
        .download_url(
            &u.key,
            "inline",
            signed_before,
            signed_before + Duration::hours(1),
        )
        .await
        .unwrap();
    assert!(old.expires_at < now);
    assert!(
        !ok(client.get(&old.url).await.status),
        "an expired URL was served"
    );

    let fresh = objects
        .download_url(&u.key, "inline", now, now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(client.get(&fresh.url).await.status, 200);
    let expires = fresh
        .url
        .split(['?', '&'])
        .find(|p| p.starts_with("X-Amz-Expires="))
        .expect("a presigned URL says how long it lasts");
    let longer = fresh.url.replace(expires, &format!("{expires}0"));
    assert_ne!(longer, fresh.url);
    assert!(
        !ok(client.get(&longer).await.status),
        "a lengthened URL was served"
    );
    let other = fresh
        .url
        .replace(u.id.as_str(), AttachmentId::random().as_str());
    assert!(
        !ok(client.get(&other).await.status),
        "an edited URL was served"
    );
}

/// Expands to one `#[tokio::test]` per object-store contract function, each calling
/// `$make.await` for `(objects, client)`: an `Arc<dyn Objects>` and an `Arc<dyn ObjectClient>`.
#[macro_export]
macro_rules! object_contract_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn an_upload_round_trips() {
            let (objects, client) = $make.await;
            $crate::contract::an_upload_round_trips(&*objects, &*client).await;
        }
        #[tokio::test]
        async fn forms_accept_only_what_they_pin() {
            let (objects, client) = $make.await;
            $crate::contract::forms_accept_only_what_they_pin(&*objects, &*client).await;
        }
        #[tokio::test]
        async fn download_urls_expire_and_cannot_be_edited() {
            let (objects, client) = $make.await;
            $crate::contract::download_urls_expire_and_cannot_be_edited(&*objects, &*client).await;
        }
    };
}
