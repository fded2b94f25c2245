//! Attachments against the in-memory object store: upload forms, sends with files, download
//! URLs in every frame, and everything refused on the way.

use super::super::testkit::World;
use super::super::{download::download, history::history, send::send, sync::sync, upload::upload};
use crate::Limits;
use crate::attachments::signed::Refusal;
use crate::attachments::{AttachmentLimits, PresignedPost};
use crate::protocol::ErrorCode;
use crate::request::Caller;
use chrono::Utc;
use serde_json::{Value, json};

const DM: &str = "dm:alice:bob";

/// `upload` as `caller` with `frame` (a `to`/`conversation` and the file's fields).
async fn ask_upload(w: &World, caller: &Caller, frame: Value) -> Result<Value, crate::Error> {
    let req = w.request(caller, frame);
    upload(&w.app, &req, req.frame()?).await?;
    let mut replies = w.take(caller);
    assert_eq!(replies.len(), 1, "{replies:?}");
    Ok(replies.remove(0))
}

fn photo(to: &str, cmid: &str, size: usize) -> Value {
    json!({"to": to, "client_msg_id": cmid, "content_type": "image/jpeg", "size": size,
           "name": "cat.jpg", "width": 640, "height": 480})
}

fn form(reply: &Value) -> PresignedPost {
    assert_eq!(reply["type"], "upload", "{reply}");
    serde_json::from_value(reply.clone()).expect("an upload reply is a presigned POST")
}

/// `size` bytes that differ from one file to the next.
fn bytes(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn send_files(w: &World, from: &Caller, frame: Value) -> Result<(), crate::Error> {
    let req = w.request(from, frame);
    send(&w.app, &req, req.frame()?).await
}

/// Alice uploads a file for message `cmid` to bob and posts it; returns the attachment id.
async fn uploaded(w: &World, alice: &Caller, cmid: &str, file: &[u8]) -> String {
    let reply = ask_upload(w, alice, photo("bob", cmid, file.len()))
        .await
        .unwrap();
    w.objects
        .post(&form(&reply), file.to_vec(), Utc::now())
        .await
        .unwrap();
    reply["attachment"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_photo_goes_up_with_the_form_and_comes_down_byte_identical_from_every_frame() {
    // GIVEN alice and bob online, and a 1 MB photo
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    let file = bytes(1024 * 1024, 7);
    // WHEN alice asks to upload it for message c-1, posts it, and sends it without a body
    let reply = ask_upload(&w, &alice, photo("bob", "c-1", file.len()))
        .await
        .unwrap();
    let post = form(&reply);
    assert_eq!(reply["conversation"], DM);
    assert_eq!(post.fields["Content-Type"], "image/jpeg");
    let id = reply["attachment"].as_str().unwrap();
    assert_eq!(
        w.objects.post(&post, file.clone(), Utc::now()).await,
        Ok(format!("att/{DM}/by-alice/{id}"))
    );
    send_files(
        &w,
        &alice,
        json!({"to": "bob", "client_msg_id": "c-1", "attachments": [id]}),
    )
    .await
    .unwrap();
    // THEN bob's message carries it, with a URL that serves exactly the bytes
    let live = w.take(&bob).remove(0);
    let a = &live["attachments"][0];
    assert_eq!(
        (&a["id"], &a["content_type"], &a["size"], &a["name"]),
        (
            &json!(id),
            &json!("image/jpeg"),
            &json!(1024 * 1024),
            &json!("cat.jpg")
        )
    );
    assert_eq!((&a["width"], &a["height"]), (&json!(640), &json!(480)));
    assert_eq!(live["body"], "");
    let fetched = w
        .objects
        .fetch(a["url"].as_str().unwrap(), Utc::now())
        .await
        .unwrap();
    assert_eq!(fetched.bytes, file);
    assert_eq!(fetched.content_type, "image/jpeg");
    assert_eq!(
        fetched.disposition.as_deref(),
        Some("inline; filename*=UTF-8''cat.jpg")
    );
    // AND the same from history, sync and download, each with a URL minted for it
    let h = w.request(&bob, json!({"conversation": DM}));
    history(&w.app, &h, h.frame().unwrap()).await.unwrap();
    let s = w.request(&bob, json!({}));
    sync(&w.app, &s, s.frame().unwrap()).await.unwrap();
    let d = w.request(&bob, json!({"conversation": DM, "seq": 1}));
    download(&w.app, &d, d.frame().unwrap()).await.unwrap();
    let frames = w.take(&bob);
    let urls = [
        &frames[0]["messages"][0]["attachments"][0],
        &frames[1]["messages"][0]["attachments"][0],
        &frames[2]["attachments"][0],
    ];
    for a in urls {
        let got = w
            .objects
            .fetch(a["url"].as_str().unwrap(), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.bytes, file);
        assert!(a["url_expires_at"].is_string());
    }
    // AND the object is no longer an abandoned upload
    let swept = crate::attachments::signed::Blobs::sweep(
        w.objects.blobs(),
        Utc::now() + chrono::Duration::days(2),
    )
    .await
    .unwrap();
    assert_eq!(swept, 0);
}

#[tokio::test]
async fn uploads_past_the_rules_are_refused_before_anything_is_signed() {
    // GIVEN a 1,000-byte limit and 3 uploads a minute
    let mut limits = Limits {
        attachments: AttachmentLimits {
            max_bytes: 1000,
            ..AttachmentLimits::default()
        },
        ..Limits::default()
    };
    limits.rates.uploads = crate::ratelimit::Rate {
        burst: 3,
        per_minute: 3,
    };
    let w = World::with_limits(limits);
    let alice = w.connect("alice", "p").await;
    let code = |r: Result<Value, crate::Error>| r.unwrap_err().code();
    // WHEN files too big, of a refused type, or with odd metadata are asked for
    // THEN each gets its typed error
    assert_eq!(
        code(ask_upload(&w, &alice, photo("bob", "c-1", 1001)).await),
        ErrorCode::TooLarge
    );
    let mut html = photo("bob", "c-1", 10);
    html["content_type"] = json!("text/html");
    assert_eq!(
        code(ask_upload(&w, &alice, html).await),
        ErrorCode::BadRequest
    );
    let mut huge = photo("bob", "c-1", 10);
    huge["width"] = json!(1_000_000);
    assert_eq!(
        code(ask_upload(&w, &alice, huge).await),
        ErrorCode::BadRequest
    );
    // AND those count against nothing: three uploads go through in this minute, the 4th is
    // rate limited
    for i in 0..3 {
        ask_upload(&w, &alice, photo("bob", &format!("c-{i}"), 10))
            .await
            .unwrap();
    }
    assert_eq!(
        code(ask_upload(&w, &alice, photo("bob", "c-9", 10)).await),
        ErrorCode::RateLimited
    );
}

#[tokio::test]
async fn only_members_get_upload_forms_and_download_urls() {
    // GIVEN a group of alice and bob, with a photo in it
    let w = World::new();
    let (alice, bob, carol) = (
        w.connect("alice", "p").await,
        w.connect("bob", "p").await,
        w.connect("carol", "p").await,
    );
    let g = w.request(&alice, json!({"name": "g", "members": ["bob"]}));
    super::super::create_group::create_group(&w.app, &g, g.frame().unwrap())
        .await
        .unwrap();
    let group = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut frame = photo("", "c-1", 3);
    frame.as_object_mut().unwrap().remove("to");
    frame["conversation"] = json!(group);
    let reply = ask_upload(&w, &alice, frame.clone()).await.unwrap();
    w.objects
        .post(&form(&reply), vec![1, 2, 3], Utc::now())
        .await
        .unwrap();
    let id = reply["attachment"].clone();
    send_files(
        &w,
        &alice,
        json!({"conversation": group, "client_msg_id": "c-1", "attachments": [id]}),
    )
    .await
    .unwrap();
    w.take(&bob);
    // WHEN carol, not a member, asks to upload there, or for the message's URLs, or for a
    // 1:1 conversation of others
    frame["client_msg_id"] = json!("x-1");
    let up = ask_upload(&w, &carol, frame).await.unwrap_err();
    let d = w.request(&carol, json!({"conversation": group, "seq": 2}));
    let down = download(&w.app, &d, d.frame().unwrap()).await.unwrap_err();
    let mut dm = photo("", "x-2", 3);
    dm.as_object_mut().unwrap().remove("to");
    dm["conversation"] = json!(DM);
    let other_dm = ask_upload(&w, &carol, dm).await.unwrap_err();
    // THEN each is forbidden
    for e in [up, down, other_dm] {
        assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
    }
    // AND bob, a member, gets fresh URLs; a seq that is no message is not found
    let d = w.request(&bob, json!({"conversation": group, "seq": 2}));
    download(&w.app, &d, d.frame().unwrap()).await.unwrap();
    assert_eq!(w.take(&bob)[0]["attachments"][0]["id"], id);
    let d = w.request(&bob, json!({"conversation": group, "seq": 9}));
    let e = download(&w.app, &d, d.frame().unwrap()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn the_store_refuses_another_size_another_type_a_changed_field_or_an_expired_form() {
    // GIVEN a form for a 100-byte JPEG
    let w = World::new();
    let alice = w.connect("alice", "p").await;
    let reply = ask_upload(&w, &alice, photo("bob", "c-1", 100))
        .await
        .unwrap();
    let post = form(&reply);
    let now = Utc::now();
    // WHEN the file posted is 99 or 101 bytes, is said to be a PNG, lands under another key,
    // carries a field the form did not sign, or comes after the form expired
    let mut png = post.clone();
    png.fields.insert("Content-Type".into(), "image/png".into());
    let mut elsewhere = post.clone();
    elsewhere
        .fields
        .insert("key".into(), "att/dm:alice:bob/by-bob/x".into());
    let mut extra = post.clone();
    extra.fields.insert("x-amz-meta-evil".into(), "1".into());
    let refusals = [
        w.objects.post(&post, vec![0; 99], now).await,
        w.objects.post(&post, vec![0; 101], now).await,
        w.objects.post(&png, vec![0; 100], now).await,
        w.objects.post(&elsewhere, vec![0; 100], now).await,
        w.objects.post(&extra, vec![0; 100], now).await,
        w.objects.post(&post, vec![0; 100], post.expires_at).await,
    ];
    // THEN every one is refused, and nothing was stored
    assert!(matches!(refusals[0], Err(Refusal::TooSmall)));
    assert!(matches!(refusals[1], Err(Refusal::TooLarge)));
    assert!(matches!(refusals[2], Err(Refusal::Condition(_))));
    assert!(matches!(refusals[3], Err(Refusal::Condition(_))));
    assert!(matches!(refusals[4], Err(Refusal::Condition(_))));
    assert!(matches!(refusals[5], Err(Refusal::Expired)));
    assert!(w.objects.blobs().keys().is_empty());
    // AND a send naming it finds no upload
    let e = send_files(
        &w,
        &alice,
        json!({"to": "bob", "client_msg_id": "c-1", "attachments": [reply["attachment"]]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn a_send_attaches_only_the_senders_uploads_for_this_conversation_and_message() {
    // GIVEN alice's upload for c-1 to bob, bob's upload for b-1 to alice, and alice's upload for
    // c-2 to carol
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    let mine = uploaded(&w, &alice, "c-1", b"mine").await;
    let reply = ask_upload(&w, &bob, photo("alice", "b-1", 5))
        .await
        .unwrap();
    w.objects
        .post(&form(&reply), b"bob's".to_vec(), Utc::now())
        .await
        .unwrap();
    let bobs = reply["attachment"].as_str().unwrap().to_owned();
    let reply = ask_upload(&w, &alice, photo("carol", "c-2", 4))
        .await
        .unwrap();
    w.objects
        .post(&form(&reply), b"else".to_vec(), Utc::now())
        .await
        .unwrap();
    let carols = reply["attachment"].as_str().unwrap().to_owned();
    let to_bob = |cmid: &str, ids: Value| json!({"to": "bob", "client_msg_id": cmid, "body": "look", "attachments": ids});
    // WHEN alice sends bob's file, the file from the conversation with carol, her own file in
    // another message than the one it was uploaded for, too many files, or one twice
    let errors = [
        send_files(&w, &alice, to_bob("c-1", json!([bobs]))).await,
        send_files(&w, &alice, to_bob("c-1", json!([carols]))).await,
        send_files(&w, &alice, to_bob("c-3", json!([mine]))).await,
        send_files(&w, &alice, to_bob("c-1", json!(vec![mine.clone(); 11]))).await,
        send_files(&w, &alice, to_bob("c-1", json!([mine, mine]))).await,
        send_files(&w, &alice, to_bob("c-1", json!(["not-an-id"]))).await,
    ];
    // THEN each is refused and nothing is stored or delivered
    let codes: Vec<ErrorCode> = errors.into_iter().map(|e| e.unwrap_err().code()).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::NotFound,
            ErrorCode::NotFound,
            ErrorCode::NotFound,
            ErrorCode::TooLarge,
            ErrorCode::BadRequest,
            ErrorCode::BadRequest,
        ]
    );
    assert!(w.take(&bob).is_empty());
    // AND the right one is stored once: a retry answers with the original and attaches nothing
    // new (it is delivered again, as every retried send is, with the original's file)
    send_files(&w, &alice, to_bob("c-1", json!([mine])))
        .await
        .unwrap();
    send_files(&w, &alice, to_bob("c-1", json!([mine])))
        .await
        .unwrap();
    let replies = w.take(&alice);
    assert_eq!(replies[1]["duplicate"], true, "{replies:?}");
    assert_eq!(replies[1]["seq"], replies[0]["seq"], "{replies:?}");
    let delivered = w.take(&bob);
    assert_eq!(delivered.len(), 2, "the send and its retry: {delivered:?}");
    for m in delivered {
        assert_eq!(m["seq"], replies[0]["seq"], "{m}");
        assert_eq!(m["attachments"][0]["id"], json!(mine), "{m}");
    }
}

#[tokio::test]
async fn a_download_url_expires_and_cannot_be_turned_into_another() {
    // GIVEN a sent photo and bob's URL to it
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    let id = uploaded(&w, &alice, "c-1", b"pixels").await;
    send_files(
        &w,
        &alice,
        json!({"to": "bob", "client_msg_id": "c-1", "attachments": [id]}),
    )
    .await
    .unwrap();
    let a = w.take(&bob).remove(0)["attachments"][0].clone();
    let url = a["url"].as_str().unwrap();
    let expires: chrono::DateTime<Utc> = a["url_expires_at"].as_str().unwrap().parse().unwrap();
    // THEN it works until it expires (an hour), not a second after
    assert!(expires - Utc::now() > chrono::Duration::minutes(59));
    assert!(w.objects.fetch(url, expires).await.is_ok());
    assert_eq!(
        w.objects
            .fetch(url, expires + chrono::Duration::seconds(1))
            .await,
        Err(Refusal::Expired)
    );
    // AND a URL edited to last longer, or to name another object, is refused
    let longer = url.replace("X-Amz-Expires=3", "X-Amz-Expires=9");
    assert_eq!(
        w.objects.fetch(&longer, Utc::now()).await,
        Err(Refusal::Signature)
    );
    let other = url.replace("by-alice", "by-bob");
    assert_eq!(
        w.objects.fetch(&other, Utc::now()).await,
        Err(Refusal::Signature)
    );
}

#[tokio::test]
async fn deleting_a_message_for_everyone_deletes_its_files() {
    // GIVEN a sent message with two files, and another with one
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    let one = uploaded(&w, &alice, "c-1", b"one").await;
    let two = uploaded(&w, &alice, "c-1", b"two").await;
    let kept = uploaded(&w, &alice, "c-2", b"kept").await;
    for (cmid, files) in [("c-1", json!([one, two])), ("c-2", json!([kept]))] {
        send_files(
            &w,
            &alice,
            json!({"to": "bob", "client_msg_id": cmid, "body": "files", "attachments": files}),
        )
        .await
        .unwrap();
    }
    let live = w.take(&bob).remove(0);
    assert_eq!(live["attachments"].as_array().unwrap().len(), 2);
    w.take(&alice);
    // WHEN alice deletes the first message for everyone
    w.run(
        &alice,
        json!({"action": "delete", "conversation": DM, "seq": 1}),
    )
    .await
    .unwrap();
    // THEN its objects are gone, its URLs serve nothing, and it shows no files any more
    assert_eq!(
        w.objects.blobs().keys(),
        vec![format!("att/{DM}/by-alice/{kept}")]
    );
    let url = live["attachments"][1]["url"].as_str().unwrap();
    assert_eq!(
        w.objects.fetch(url, Utc::now()).await,
        Err(Refusal::NotFound)
    );
    let deleted = w.take(&bob).remove(0);
    assert_eq!(deleted["target"]["deleted"], true, "{deleted}");
    assert!(deleted["target"].get("attachments").is_none(), "{deleted}");
}

#[tokio::test]
async fn an_empty_message_is_still_refused_and_files_alone_need_no_body() {
    let w = World::new();
    let alice = w.connect("alice", "p").await;
    let e = send_files(&w, &alice, json!({"to": "bob", "client_msg_id": "c-1"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    let id = uploaded(&w, &alice, "c-2", b"voice").await;
    send_files(
        &w,
        &alice,
        json!({"to": "bob", "client_msg_id": "c-2", "attachments": [id]}),
    )
    .await
    .unwrap();
    assert_eq!(w.take(&alice)[0]["type"], "sent");
}

#[test]
fn a_push_preview_of_a_file_says_what_it_is() {
    use crate::attachments::{Attachment, AttachmentId, preview};
    let file = |t: &str| Attachment {
        id: AttachmentId::random(),
        content_type: t.into(),
        size: 1,
        name: "notes.pdf".into(),
        width: None,
        height: None,
        duration_ms: None,
    };
    assert_eq!(preview("caption", &[file("image/png")]), "caption");
    assert_eq!(preview("", &[file("image/png")]), "📎 Photo");
    assert_eq!(
        preview("", &[file("audio/ogg"), file("image/png")]),
        "📎 Voice message and 1 more"
    );
    assert_eq!(preview("", &[file("application/pdf")]), "📎 notes.pdf");
}
