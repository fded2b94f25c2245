//! End-to-end: photos and files through presigned uploads, with real WebSocket clients and a
//! real HTTP client, through the embedded gateway: its local directory over the in-memory
//! store, MiniStack's S3 over DynamoDB (`MESSENGER_E2E_STORE=dynamodb`).

use messenger::contract::ObjectClient;
use messenger_aws::testing::HttpObjectClient;
use messenger_e2e::{Client, TestGateway, test_files};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};

const DM: &str = "dm:alice:bob";

async fn gateway(config: GatewayConfig) -> TestGateway {
    let config = GatewayConfig {
        files: test_files().await,
        ..config
    };
    TestGateway::start_with(config).await
}

/// A "photo" of `size` bytes unlike any other.
fn photo(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(157).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn fields(upload: &Value) -> Vec<(String, String)> {
    upload["fields"]
        .as_object()
        .expect("an upload reply has fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Asks for an upload form (the `to`/`conversation` in `target`).
async fn ask(
    client: &mut Client,
    target: Value,
    cmid: &str,
    content_type: &str,
    size: usize,
) -> Value {
    let mut frame = json!({"action": "upload", "client_msg_id": cmid, "content_type": content_type,
                           "size": size, "name": "photo 1.jpg"});
    for (k, v) in target.as_object().unwrap() {
        frame[k] = v.clone();
    }
    client.request(frame).await
}

/// Uploads `file` as a JPEG for message `cmid`: the attachment id.
async fn upload(
    client: &mut Client,
    http: &HttpObjectClient,
    target: Value,
    cmid: &str,
    file: &[u8],
) -> String {
    let form = ask(client, target, cmid, "image/jpeg", file.len()).await;
    assert_eq!(form["type"], "upload", "{form}");
    let status = http
        .post_form(form["url"].as_str().unwrap(), &fields(&form), file.to_vec())
        .await;
    assert!(
        (200..300).contains(&status),
        "the upload was refused: {status}"
    );
    form["attachment"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_photo_uploaded_with_the_form_is_downloaded_byte_identical_from_the_message_and_history()
{
    let gw = gateway(GatewayConfig::default()).await;
    let http = HttpObjectClient::default();
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let file = photo(1024 * 1024, 3);

    let form = ask(
        &mut alice,
        json!({"to": "bob"}),
        "c-1",
        "image/jpeg",
        file.len(),
    )
    .await;
    assert_eq!(
        (form["type"].as_str(), form["conversation"].as_str()),
        (Some("upload"), Some(DM))
    );
    assert_eq!(form["fields"]["Content-Type"], "image/jpeg");
    let status = http
        .post_form(form["url"].as_str().unwrap(), &fields(&form), file.clone())
        .await;
    assert!((200..300).contains(&status), "{status}");
    let id = form["attachment"].as_str().unwrap();
    let sent = alice
        .request(
            json!({"action": "send", "to": "bob", "client_msg_id": "c-1", "attachments": [id]}),
        )
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");

    let live = bob.recv_type("message").await;
    let a = &live["attachments"][0];
    assert_eq!(
        (
            a["id"].as_str(),
            a["content_type"].as_str(),
            a["size"].as_u64(),
            a["name"].as_str()
        ),
        (
            Some(id),
            Some("image/jpeg"),
            Some(file.len() as u64),
            Some("photo 1.jpg")
        )
    );
    assert!(live.get("body").is_none_or(|b| b == ""), "{live}");
    let got = http.get(a["url"].as_str().unwrap()).await;
    assert_eq!(got.status, 200);
    assert!(
        got.body == file,
        "the live message's URL serves other bytes"
    );
    assert_eq!(got.content_type.as_deref(), Some("image/jpeg"));

    let page = bob
        .request(json!({"action": "history", "conversation": DM}))
        .await;
    let url = page["messages"][0]["attachments"][0]["url"]
        .as_str()
        .unwrap();
    let again = http.get(url).await;
    assert_eq!(again.status, 200);
    assert!(again.body == file, "the history URL serves other bytes");

    // And a fresh URL on request.
    let fresh = bob
        .request(json!({"action": "download", "conversation": DM, "seq": 1}))
        .await;
    assert_eq!(fresh["type"], "download", "{fresh}");
    let third = http
        .get(fresh["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert!(third.status == 200 && third.body == file);

    // Deleting the message for everyone deletes the file.
    let deleted = alice
        .request(json!({"action": "delete", "conversation": DM, "seq": 1}))
        .await;
    assert_eq!(deleted["type"], "deleted", "{deleted}");
    assert!(deleted["message"].get("attachments").is_none(), "{deleted}");
    let gone = http
        .get(fresh["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert!(
        !(200..300).contains(&gone.status),
        "a deleted message's file is still served"
    );
}

#[tokio::test]
async fn wrong_sizes_and_types_outsiders_and_another_conversation_s_upload_are_refused() {
    let gw = gateway(GatewayConfig::default()).await;
    let http = HttpObjectClient::default();
    let mut alice = gw.connect("alice", "phone").await;
    let mut bob = gw.connect("bob", "phone").await;
    let mut carol = gw.connect("carol", "phone").await;
    let group = alice
        .request(json!({"action": "create_group", "name": "Trip", "members": ["bob"]}))
        .await;
    let g = group["conversation"].as_str().expect("a group").to_owned();
    let file = photo(2000, 9);

    // The rules: a file over the limit, a type not accepted.
    let big = ask(
        &mut alice,
        json!({"to": "bob"}),
        "c-1",
        "image/jpeg",
        26 * 1024 * 1024,
    )
    .await;
    assert_eq!(
        (big["type"].as_str(), big["code"].as_str()),
        (Some("error"), Some("too_large")),
        "{big}"
    );
    let html = ask(&mut alice, json!({"to": "bob"}), "c-1", "text/html", 10).await;
    assert_eq!(html["code"], "bad_request", "{html}");

    // The store: another size, another type than the form pins.
    let form = ask(
        &mut alice,
        json!({"to": "bob"}),
        "c-1",
        "image/jpeg",
        file.len(),
    )
    .await;
    let url = form["url"].as_str().unwrap();
    let status = http.post_form(url, &fields(&form), photo(2001, 9)).await;
    assert!(
        !(200..300).contains(&status),
        "a larger file was accepted: {status}"
    );
    let mut retyped = fields(&form);
    for (k, v) in &mut retyped {
        if k == "Content-Type" {
            *v = "text/html".into();
        }
    }
    let status = http.post_form(url, &retyped, file.clone()).await;
    assert!(
        !(200..300).contains(&status),
        "another type was accepted: {status}"
    );
    // Nothing was stored: sending the attachment finds no upload.
    let id = form["attachment"].as_str().unwrap();
    let none = alice
        .request(
            json!({"action": "send", "to": "bob", "client_msg_id": "c-1", "attachments": [id]}),
        )
        .await;
    assert_eq!(none["code"], "not_found", "{none}");

    // A non-member gets no form for the group, and no URLs of its messages.
    let outsider = ask(
        &mut carol,
        json!({"conversation": g}),
        "c-9",
        "image/jpeg",
        10,
    )
    .await;
    assert_eq!(outsider["code"], "forbidden", "{outsider}");
    let in_group = upload(&mut alice, &http, json!({"conversation": g}), "g-1", &file).await;
    let sent = alice
        .request(json!({"action": "send", "conversation": g, "client_msg_id": "g-1", "body": "look", "attachments": [in_group]}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let seq = sent["seq"].as_u64().unwrap();
    let refused = carol
        .request(json!({"action": "download", "conversation": g, "seq": seq}))
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let got = bob
        .recv_where(|v| v["type"] == "message" && v["seq"] == seq)
        .await;
    let served = http
        .get(got["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert!(served.status == 200 && served.body == file);

    // An upload made for the 1:1 conversation cannot be sent to the group.
    let direct = upload(&mut alice, &http, json!({"to": "bob"}), "g-2", &file).await;
    let elsewhere = alice
        .request(json!({"action": "send", "conversation": g, "client_msg_id": "g-2", "attachments": [direct]}))
        .await;
    assert_eq!(elsewhere["code"], "not_found", "{elsewhere}");
    // ... and nothing was stored: the group's log still ends at the message above.
    let page = bob
        .request(json!({"action": "history", "conversation": g}))
        .await;
    assert_eq!(page["messages"][0]["seq"], seq, "{page}");
}

#[tokio::test]
async fn expired_forms_and_urls_are_refused() {
    let mut config = GatewayConfig::default();
    config.limits.attachments.upload_ttl = chrono::Duration::seconds(1);
    config.limits.attachments.download_ttl = chrono::Duration::seconds(1);
    let gw = gateway(config).await;
    let http = HttpObjectClient::default();
    let mut alice = gw.connect("alice", "phone").await;
    let file = photo(500, 1);
    let late = ask(
        &mut alice,
        json!({"to": "bob"}),
        "c-1",
        "image/jpeg",
        file.len(),
    )
    .await;
    let id = upload(&mut alice, &http, json!({"to": "bob"}), "c-2", &file).await;
    let sent = alice
        .request(
            json!({"action": "send", "to": "bob", "client_msg_id": "c-2", "attachments": [id]}),
        )
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let page = alice
        .request(json!({"action": "download", "conversation": DM, "seq": 1}))
        .await;
    let a = &page["attachments"][0];
    // Waiting for the deadlines is the point of this test: both are a second away.
    let deadline = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let last = deadline(&late["expires_at"]).max(deadline(&a["url_expires_at"]));
    let wait = (last.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds() + 1100;
    tokio::time::sleep(std::time::Duration::from_millis(wait.max(0) as u64)).await;

    let status = http
        .post_form(late["url"].as_str().unwrap(), &fields(&late), file.clone())
        .await;
    assert!(
        !(200..300).contains(&status),
        "an expired form was accepted: {status}"
    );
    let got = http.get(a["url"].as_str().unwrap()).await;
    assert!(
        !(200..300).contains(&got.status),
        "an expired URL was served"
    );
    // A new URL works.
    let fresh = alice
        .request(json!({"action": "download", "conversation": DM, "seq": 1}))
        .await;
    let again = http
        .get(fresh["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert!(again.status == 200 && again.body == file);
}
