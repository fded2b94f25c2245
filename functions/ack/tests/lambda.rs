//! The `fn-ack` binary handles a recorded API Gateway event, and refuses to start unconfigured.

use messenger_aws::testing::{emulator_env, fixture, invoke_once, run_unconfigured};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fn-ack");

/// Alice and Bob share `dm:alice:bob`, where Bob wrote seq 1.
async fn seed(store: &messenger_aws::DynamoStore) {
    use messenger::domain::{ClientMsgId, ConversationId, NewMessage, UserId};
    use messenger::ports::{Conversations, MessageLog};
    let (alice, bob) = (UserId::new("alice").unwrap(), UserId::new("bob").unwrap());
    let conv = ConversationId::direct(&alice, &bob);
    let now = chrono::Utc::now();
    store.join(&conv, &alice, now).await.unwrap();
    store.join(&conv, &bob, now).await.unwrap();
    let m = NewMessage {
        conversation: conv,
        from: bob,
        client_msg_id: ClientMsgId::new("b-1").unwrap(),
        body: "hello".into(),
        sent_at: now,
        expires_at: None,
    };
    store.append(m).await.unwrap();
}

#[tokio::test]
async fn handles_a_recorded_ack_event() {
    let (vars, store) = emulator_env().await;
    seed(&store).await;
    let got = invoke_once(Path::new(BIN), &vars, fixture("websocket-ack-event.json")).await;
    assert!(!got.is_error, "{got:?}");
    assert_eq!(got.response["statusCode"], 200);
    let acked: Vec<_> = got
        .posts
        .iter()
        .filter(|(c, _)| c == "ZLtyMcR7IAMCFZQ=")
        .collect();
    assert_eq!(acked.len(), 1, "{:?}", got.posts);
    assert_eq!(acked[0].1["type"], "acked");
    assert_eq!(acked[0].1["id"], "r-2");
    use messenger::ports::Conversations;
    let m = store
        .membership(
            &messenger::domain::ConversationId::new("dm:alice:bob").unwrap(),
            &messenger::domain::UserId::new("alice").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.delivered, m.read), (1, 1));
}

#[tokio::test]
async fn exits_with_a_clear_message_when_unconfigured() {
    let (code, stderr) = run_unconfigured(Path::new(BIN)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MESSENGER_CONNECTIONS_TABLE"), "{stderr}");
}
