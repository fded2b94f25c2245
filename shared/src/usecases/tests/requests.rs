//! Message requests in the use cases: what a request hides, and how it ends.

use super::send_to;
use crate::usecases::disconnect::disconnect;
use crate::usecases::testkit::World;
use serde_json::json;

const DM: &str = "dm:alice:bob";

#[tokio::test]
async fn a_declined_sender_is_refused_but_a_retry_of_what_was_stored_gets_the_original() {
    // GIVEN alice's first message to bob, whose `sent` she never got, and bob declining it
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    w.take(&alice);
    let decline = json!({"action": "decline", "conversation": DM});
    w.run(&bob, decline).await.unwrap();
    // WHEN she retries it, THEN the original answers
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let sent = w.take(&alice).pop().unwrap();
    assert_eq!(
        (&sent["seq"], &sent["duplicate"]),
        (&json!(1), &json!(true)),
        "{sent}"
    );
    // WHEN she writes anything new, THEN it is refused and nothing is stored
    let e = send_to(&w, &alice, "bob", "c-2", "hello?")
        .await
        .unwrap_err();
    assert_eq!(e.code(), crate::protocol::ErrorCode::Forbidden);
    let e = send_to(&w, &alice, "bob", "c-1", "another body")
        .await
        .unwrap_err();
    assert_eq!(e.code(), crate::protocol::ErrorCode::Conflict);
}

#[tokio::test]
async fn requests_count_in_neither_the_badge_nor_the_inbox_total_and_are_never_pushed() {
    // GIVEN bob offline with an iPhone, a stranger's two messages and a contact's one
    let w = World::new();
    w.contacts("carol", "bob");
    let (mallory, carol) = (
        w.connect("mallory", "p").await,
        w.connect("carol", "p").await,
    );
    let phone = w.connect("bob", "phone").await;
    let r = json!({"action": "register_push", "platform": "apns", "token": "bob-t"});
    w.run(&phone, r).await.unwrap();
    disconnect(&w.app, &phone).await.unwrap();
    send_to(&w, &mallory, "bob", "m-1", "psst").await.unwrap();
    send_to(&w, &mallory, "bob", "m-2", "psst").await.unwrap();
    send_to(&w, &carol, "bob", "c-1", "hi").await.unwrap();
    // THEN only carol's pushed, with a badge of 1 (the request's 2 unread are not counted)
    let pushes = w.notifier.pushes.lock().unwrap().clone();
    let got: Vec<(String, Option<u64>)> = pushes
        .iter()
        .map(|(_, _, n)| (n.conversation.to_string(), n.badge))
        .collect();
    assert_eq!(got, [("dm:bob:carol".to_owned(), Some(1))]);
    // AND bob's inbox counts carol's 1, and says 1 request waits with 2 unread
    let laptop = w.connect("bob", "laptop").await;
    w.run(&laptop, json!({"action": "conversations"}))
        .await
        .unwrap();
    let inbox = w.take(&laptop).pop().unwrap();
    assert_eq!(
        (&inbox["unread_total"], &inbox["requests"]),
        (&json!(1), &json!(1)),
        "{inbox}"
    );
    w.run(
        &laptop,
        json!({"action": "conversations", "folder": "requests"}),
    )
    .await
    .unwrap();
    let requests = w.take(&laptop).pop().unwrap();
    assert_eq!(requests["conversations"][0]["unread"], 2, "{requests}");
    assert_eq!(
        requests["unread_total"], 1,
        "the inbox's, in either folder: {requests}"
    );
}
