//! The `messenger-local` binary as a user runs it: `token` mints what `serve` accepts, and
//! `serve --store dynamodb --create-tables` chats over DynamoDB (the emulator's).

use futures_util::{SinkExt, StreamExt};
use messenger::ports::MessageLog;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_messenger-local");
const WAIT: Duration = Duration::from_secs(30);

async fn token(user: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", user, "--device", "cli"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts `serve` with `args` on a free port; returns the child and its WebSocket base URL.
async fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.trim().strip_prefix("WebSocket:") {
                return rest.trim().trim_end_matches("?token=<token>").to_owned();
            }
        }
        panic!("serve exited before printing its URL")
    })
    .await
    .expect("serve prints its URL when ready");
    // Keep reading, as a terminal would: a closed pipe would fail the server's next print.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Socket) -> Value {
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a frame")
        .unwrap()
        .unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

async fn chat(url: &str) {
    let connect = |user: &'static str| async move {
        let t = token(user).await;
        tokio_tungstenite::connect_async(format!("{url}?token={t}"))
            .await
            .expect("token accepted")
            .0
    };
    let (mut alice, mut bob) = (connect("alice").await, connect("bob").await);
    let frame = json!({"action":"send","id":"1","to":"bob","client_msg_id":"c-1","body":"hi"});
    alice
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut alice).await["type"], "sent");
    let got = next(&mut bob).await;
    assert_eq!(
        (got["type"].as_str(), got["from"].as_str()),
        (Some("message"), Some("alice"))
    );
}

#[tokio::test]
async fn a_minted_token_chats_through_the_default_in_memory_gateway() {
    let (_child, url) = serve(&[]).await;
    chat(&url).await;
}

#[tokio::test]
async fn serve_over_dynamodb_creates_its_tables_and_stores_there() {
    let endpoint = messenger_aws::testing::emulator_endpoint();
    let prefix = format!("cli{}-", messenger::contract::tag());
    let args = [
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &endpoint,
        "--table-prefix",
        &prefix,
        "--create-tables",
    ];
    let (_child, url) = serve(&args).await;
    chat(&url).await;

    let sdk = messenger_aws::sdk::for_endpoint(&endpoint).await;
    let store = messenger_aws::DynamoStore::new(&sdk, messenger_aws::Tables::with_prefix(&prefix));
    let conv = messenger::domain::ConversationId::new("dm:alice:bob").unwrap();
    let heads = store.last_seqs(std::slice::from_ref(&conv)).await.unwrap();
    assert_eq!(heads[&conv], 1, "the message is in DynamoDB");
}
