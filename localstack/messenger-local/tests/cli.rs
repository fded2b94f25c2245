//! The `messenger-local` binary as a user runs it: `token` mints what `serve` accepts, and
//! `serve --store dynamodb --create-tables` chats over DynamoDB (the emulator's); `--help`
//! explains every option, and usage errors exit with 2.

mod common;

use common::{BIN, WAIT, serve};
use futures_util::{SinkExt, StreamExt};
use messenger::ports::MessageLog;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

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
    chat_and_report(url, false).await;
}

/// Alice writes to Bob; with `report`, Bob reports her message and the report's id is returned.
async fn chat_and_report(url: &str, report: bool) -> Option<String> {
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
    if !report {
        return None;
    }
    let frame = json!({"action":"report","id":"2","conversation":"dm:alice:bob","seq":1,
                       "reason":"spam","details":"a stranger"});
    bob.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let reported = next(&mut bob).await;
    assert_eq!(reported["type"], "reported", "{reported}");
    Some(reported["report"].as_str().unwrap().to_owned())
}

/// `messenger-local reports list` and `reports read ID` with these store options: the report
/// the scenario made, with the message's text as it was.
async fn operator_reads(id: &str, store: &[&str]) {
    let list = Command::new(BIN)
        .args(["reports", "list"])
        .args(store)
        .output()
        .await
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let list = String::from_utf8(list.stdout).unwrap();
    let line = list
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("Spam") && line.contains("bob reported dm:alice:bob#1 by alice: hi"),
        "{line}"
    );
    let read = Command::new(BIN)
        .args(["reports", "read", id])
        .args(store)
        .output()
        .await
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let report: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(
        (
            &report["reporter"],
            &report["reason"],
            &report["details"],
            &report["message"]["body"]
        ),
        (
            &json!("bob"),
            &json!("spam"),
            &json!("a stranger"),
            &json!("hi")
        )
    );
}

#[tokio::test]
async fn an_operator_lists_and_reads_reports_of_the_running_in_memory_gateway() {
    let (_child, url) = serve(&[]).await;
    let id = chat_and_report(&url, true).await.unwrap();
    let http = url
        .replacen("ws://", "http://", 1)
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    operator_reads(&id, &["--gateway", &http]).await;
}

#[tokio::test]
async fn a_minted_token_chats_through_the_default_in_memory_gateway() {
    let (_child, url) = serve(&[]).await;
    chat(&url).await;
}

#[tokio::test]
async fn serve_with_an_issuer_accepts_its_tokens_and_no_development_ones() {
    use messenger::auth::testing::TestKey;
    let server = messenger_lambda::testing::JwksServer::start().await;
    let key = TestKey::es256_a("k1");
    server.publish("/jwks.json", &[&key]);
    let issuer = "https://login.example.com/";
    let jwks = server.url("/jwks.json");
    let (_child, url) = serve(&[
        "--issuer",
        issuer,
        "--audience",
        "web,ios",
        "--jwks-url",
        &jwks,
    ])
    .await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let connect = |sub: &str, aud: &str| {
        let t = key.sign(&json!({"iss": issuer, "aud": aud, "sub": sub, "exp": exp}));
        tokio_tungstenite::connect_async(format!("{url}?token={t}&device=cli"))
    };
    let (mut alice, _) = connect("alice", "ios").await.expect("an ios token");
    let (mut bob, _) = connect("bob", "web").await.expect("a web token");
    let frame = json!({"action":"send","id":"1","to":"bob","client_msg_id":"c-1","body":"hi"});
    alice
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut alice).await["type"], "sent");
    assert_eq!(next(&mut bob).await["from"], "alice");

    let refused = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused(connect("carol", "android").await), 403);
    let dev = token("carol").await;
    assert_eq!(
        refused(tokio_tungstenite::connect_async(format!("{url}?token={dev}")).await),
        403
    );
}

#[test]
fn serve_refuses_to_fetch_keys_over_plain_http_from_elsewhere() {
    let out = run(&[
        "serve",
        "--port",
        "0",
        "--issuer",
        "https://login.example.com/",
        "--audience",
        "web",
        "--jwks-url",
        "http://login.example.com/jwks.json",
    ]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("https"), "{stderr}");
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
    let id = chat_and_report(&url, true).await.unwrap();
    operator_reads(&id, &args[..6]).await;

    let sdk = messenger_aws::sdk::for_endpoint(&endpoint).await;
    let store = messenger_aws::DynamoStore::new(&sdk, messenger_aws::Tables::with_prefix(&prefix));
    let conv = messenger::domain::ConversationId::new("dm:alice:bob").unwrap();
    let heads = store.last_seqs(std::slice::from_ref(&conv)).await.unwrap();
    assert_eq!(heads[&conv], 1, "the message is in DynamoDB");
}

/// Runs the binary to completion with `args`.
fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

/// The line of `help` that lists `option`, if it says what the option does.
fn described<'a>(help: &'a str, option: &str) -> Option<&'a str> {
    help.lines().find(|line| {
        let Some(rest) = line.trim_start().strip_prefix(option) else {
            return false;
        };
        // Past the name and its value placeholder, some words.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('<') {
            Some(r) => r.split_once('>').map_or("", |(_, after)| after),
            None => rest,
        };
        rest.split_whitespace().count() >= 2
    })
}

#[test]
fn help_describes_every_option_of_every_command() {
    let commands: [(&[&str], &[&str]); 4] = [
        (&["--help"], &["serve", "token", "reports"]),
        (
            &["serve", "-h"],
            &[
                "--port",
                "--host",
                "--stage",
                "--max-body-bytes",
                "--idle-timeout-secs",
                "--max-connection-secs",
                "--two-way",
                "--max-outbound-bytes",
                "--write-timeout-secs",
                "--handshake-timeout-secs",
                "--max-handshakes",
                "--store",
                "--dynamodb-endpoint",
                "--table-prefix",
                "--create-tables",
                "--issuer",
                "--audience",
                "--jwks-url",
                "--user-claim",
                "--rate-send",
                "--rate-groups",
                "--rate-reads",
                "--rate-presence",
                "--rate-push",
                "--max-connections-per-user",
                "--max-groups-per-user",
                "--max-devices-per-user",
                "--max-ids-per-frame",
                "--max-sync-cursors",
            ],
        ),
        (&["help", "token"], &["<USER>", "--device", "--hours"]),
        (
            &["reports", "list", "-h"],
            &[
                "--days",
                "--json",
                "--gateway",
                "--messages-table",
                "--store",
                "--dynamodb-endpoint",
                "--table-prefix",
            ],
        ),
    ];
    for (args, options) in commands {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        let help = String::from_utf8(out.stdout).unwrap();
        for option in options {
            assert!(
                described(&help, option).is_some(),
                "{args:?} does not describe {option}:\n{help}"
            );
        }
        if args != ["--help"] && args[0] != "reports" {
            assert!(help.contains("MESSENGER_JWT_SECRET"), "{args:?}:\n{help}");
        }
    }
    let serve = String::from_utf8(run(&["serve", "-h"]).stdout).unwrap();
    for default in [
        "[default: 8080]",
        "[default: 60,300]",
        "[env: MESSENGER_DYNAMODB_ENDPOINT]",
        "memory, dynamodb",
    ] {
        assert!(
            serve.contains(default),
            "serve -h lacks {default}:\n{serve}"
        );
    }
}

#[test]
fn usage_errors_exit_with_2_and_say_what_is_wrong() {
    let cases: [(&[&str], &str); 9] = [
        (&["serve", "--bogus"], "--bogus"),
        (&["serve", "--rate-send", "fast"], "BURST,PER_MINUTE"),
        (
            &["serve", "--max-ids-per-frame", "47"],
            "--max-ids-per-frame",
        ),
        (&["serve", "--audience", "app"], "--issuer"),
        (
            &["serve", "--issuer", "https://id.example.com/"],
            "--audience",
        ),
        (&["serve", "--store", "sqlite"], "sqlite"),
        (&["serve", "--port", "http"], "--port"),
        (&["token", "alice", "--bogus", "x"], "--bogus"),
        (&["token", "not a user"], "invalid user id"),
    ];
    for (args, says) in cases {
        let out = run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
    assert_eq!(run(&[]).status.code(), Some(2), "no command");
}
