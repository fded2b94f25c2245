//! DynamoDB and S3 requests of attachments, through the real use cases on the emulator (its
//! DynamoDB and S3). The numbers are the ones in docs/data-model.md ("Attachments") and the
//! cost model of docs/scale.md.

mod common;

use common::counting::{caller, cost, requests, world};
use messenger::contract::ObjectClient;
use messenger::domain::ConversationId;
use messenger_aws::testing::{HttpObjectClient, fresh_bucket};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[tokio::test]
async fn upload_send_download_and_delete_of_files_cost_exactly_the_documented_requests() {
    let (store, app, poster) = world().await;
    let objects = Arc::new(fresh_bucket().await);
    let app = app.with_objects(objects.clone());
    let http = HttpObjectClient::default();
    let t = messenger::contract::tag();
    let alice = caller("alice", "phone", &t);
    let bob = caller("bob", "phone", &t);
    for c in [&alice, &bob] {
        messenger::usecases::connect::connect(&app, c)
            .await
            .unwrap();
    }
    let dm = ConversationId::direct(&alice.user, &bob.user);
    let s3 = |before: &BTreeMap<&'static str, u64>| {
        let now = objects.requests();
        now.into_iter()
            .filter_map(|(op, n)| {
                let d = n - before.get(op).copied().unwrap_or(0);
                (d > 0).then_some((op, d))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut files = Vec::new();
    for (cmid, i) in [("c-1", 0u8), ("c-1", 1), ("c-2", 2)] {
        let s3_before = objects.requests();
        let upload = json!({"action": "upload", "to": bob.user, "client_msg_id": cmid,
                            "content_type": "image/png", "size": 100, "name": "a.png"});
        let spent = cost(&store, &app, &alice, upload).await;
        println!("upload: {spent:?}");
        // The uploads token (rate limit); a 1:1 conversation needs no membership read.
        assert_eq!(requests(&spent), BTreeMap::from([("UpdateItem", 1)]));
        assert_eq!(spent.write_units(), 1.0);
        assert_eq!(s3(&s3_before), BTreeMap::new(), "forms are signed locally");
        let (_, form) = poster.0.lock().unwrap().pop().unwrap();
        let fields: Vec<(String, String)> = form["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let status = http
            .post_form(form["url"].as_str().unwrap(), &fields, vec![i; 100])
            .await;
        assert_eq!(status, 204);
        files.push(form["attachment"].clone());
    }
    poster.take();

    // A 1:1 send with two files, the conversation's first: the send's requests, plus per file
    // one HeadObject and one DeleteObjectTagging.
    let s3_before = objects.requests();
    let send = json!({"action": "send", "to": bob.user, "client_msg_id": "c-1",
                      "attachments": [files[0], files[1]]});
    let spent = cost(&store, &app, &alice, send).await;
    println!("send with 2 files: {spent:?}");
    assert_eq!(
        requests(&spent),
        BTreeMap::from([
            ("BatchGetItem", 2),
            // head, message, idempotency key and (the first message) both memberships
            ("TransactWriteItems", 1),
            ("UpdateItem", 2), // the send token; the sender's read pointer
        ])
    );
    assert_eq!(
        s3(&s3_before),
        BTreeMap::from([("HeadObject", 2), ("DeleteObjectTagging", 2)])
    );
    let steady = json!({"action": "send", "to": bob.user, "client_msg_id": "c-2",
                        "body": "and this", "attachments": [files[2]]});
    let s3_before = objects.requests();
    let spent = cost(&store, &app, &alice, steady).await;
    println!("send with 1 file: {spent:?}");
    assert_eq!(
        requests(&spent),
        BTreeMap::from([
            ("BatchGetItem", 2),
            ("TransactWriteItems", 1),
            ("UpdateItem", 2)
        ])
    );
    // As a text message: the file's few hundred bytes keep each item under 1 KB.
    assert_eq!(spent.write_units(), 8.0);
    assert_eq!(
        s3(&s3_before),
        BTreeMap::from([("HeadObject", 1), ("DeleteObjectTagging", 1)])
    );
    poster.take();

    // `download`: the reads token, the membership and the message; URLs are signed locally.
    let s3_before = objects.requests();
    let download = json!({"action": "download", "conversation": dm, "seq": 1});
    let spent = cost(&store, &app, &bob, download).await;
    println!("download: {spent:?}");
    assert_eq!(
        requests(&spent),
        BTreeMap::from([("GetItem", 1), ("Query", 1), ("UpdateItem", 1)])
    );
    assert_eq!(s3(&s3_before), BTreeMap::new());
    let reply: Value = poster.0.lock().unwrap().pop().unwrap().1;
    assert_eq!(reply["attachments"].as_array().unwrap().len(), 2);

    // `delete` of the message with two files: the amendment, plus one DeleteObject per file.
    let s3_before = objects.requests();
    let delete = json!({"action": "delete", "conversation": dm, "seq": 1});
    let spent = cost(&store, &app, &alice, delete).await;
    println!("delete: {spent:?}");
    assert_eq!(
        requests(&spent),
        BTreeMap::from([
            // the membership and both block records (a 1:1); the head and the message; both
            // members' items
            ("BatchGetItem", 3),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1), // the send token
        ])
    );
    assert_eq!(s3(&s3_before), BTreeMap::from([("DeleteObject", 2)]));
}
