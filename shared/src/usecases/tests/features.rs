//! Typing, edit, delete, reactions, replies, the inbox and mute (GIVEN / WHEN / THEN).

use super::{DM, send_to, types};
use crate::protocol::ErrorCode;
use crate::request::Caller;
use crate::usecases::testkit::World;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A world whose clock the test moves.
fn world_at(start: DateTime<Utc>) -> (World, Arc<Mutex<DateTime<Utc>>>) {
    let mut w = World::new();
    let now = Arc::new(Mutex::new(start));
    let clock = now.clone();
    w.app.clock = Arc::new(move || *clock.lock().unwrap());
    (w, now)
}

async fn code(w: &World, caller: &Caller, body: Value) -> ErrorCode {
    w.run(caller, body).await.expect_err("refused").code()
}

/// The one frame `caller` got (and forgets the rest).
fn only(w: &World, caller: &Caller) -> Value {
    let mut got = w.take(caller);
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

/// Alice and bob online, and alice's message 1 "hello" in their 1:1.
async fn chatting() -> (World, Caller, Caller) {
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hello").await.unwrap();
    w.take(&alice);
    w.take(&bob);
    (w, alice, bob)
}

#[tokio::test]
async fn typing_reaches_the_others_unanswered_and_is_throttled_per_user_and_conversation() {
    // GIVEN alice and bob in a conversation, alice on two devices
    let (w, now) = world_at(Utc::now());
    let (alice, alice2, bob) = (
        w.connect("alice", "p").await,
        w.connect("alice", "laptop").await,
        w.connect("bob", "p").await,
    );
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    for c in [&alice, &alice2, &bob] {
        w.take(c);
    }
    // WHEN alice types twice within the interval, then again after it
    let typing = json!({"action": "typing", "conversation": DM});
    w.run(&alice, typing.clone()).await.unwrap();
    w.run(&alice, typing.clone()).await.unwrap();
    // THEN bob sees one typing, alice's devices see nothing, and alice gets no answer
    assert_eq!(
        only(&w, &bob),
        json!({"type": "typing", "conversation": DM, "user": "alice"})
    );
    assert!(w.take(&alice).is_empty() && w.take(&alice2).is_empty());
    *now.lock().unwrap() += chrono::Duration::seconds(3);
    w.run(&alice, typing).await.unwrap();
    assert_eq!(types(&w.take(&bob)), ["typing"]);
    // AND a stranger is refused, and nothing of it is in the log
    let carol = w.connect("carol", "p").await;
    let stranger = json!({"action": "typing", "conversation": DM});
    assert_eq!(code(&w, &carol, stranger).await, ErrorCode::Forbidden);
    let page = w.run(&bob, json!({"action": "sync", "since": {}})).await;
    page.unwrap();
    assert_eq!(w.take(&bob)[0]["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_edit_by_the_author_reaches_everyone_and_is_refused_to_others_and_late() {
    // GIVEN alice's message 1, sent now
    let start = Utc::now();
    let (w, now) = world_at(start);
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hello").await.unwrap();
    w.take(&alice);
    w.take(&bob);
    // WHEN she edits it
    let edit = |body: &str| json!({"action": "edit", "conversation": DM, "seq": 1, "body": body});
    w.run(&alice, edit("hello!")).await.unwrap();
    // THEN she gets `edited` with the message as it is, and bob the entry with its target
    let reply = only(&w, &alice);
    assert_eq!(
        (&reply["type"], &reply["entry"]["seq"]),
        (&json!("edited"), &json!(2))
    );
    assert_eq!(reply["message"]["body"], "hello!");
    assert_eq!(reply["message"]["rev"], 2);
    assert!(reply["message"]["edited_at"].is_string());
    let entry = only(&w, &bob);
    assert_eq!(entry["type"], "message");
    assert_eq!(entry["event"], json!({"type": "message_edited", "seq": 1}));
    assert_eq!(entry["target"], reply["message"]);
    let mut pushed = entry.clone();
    pushed.as_object_mut().unwrap().remove("type");
    assert_eq!(
        pushed, reply["entry"],
        "the caller gets the entry the others get"
    );
    // AND the same body again changes nothing
    w.run(&alice, edit("hello!")).await.unwrap();
    assert_eq!(only(&w, &alice)["unchanged"], true);
    assert!(w.take(&bob).is_empty());
    // AND bob may not edit it, nobody may edit past the window, nor a seq out of range
    assert_eq!(code(&w, &bob, edit("mine now")).await, ErrorCode::Forbidden);
    let out_of_range = json!({"action": "edit", "conversation": DM, "seq": 9, "body": "x"});
    assert_eq!(code(&w, &alice, out_of_range).await, ErrorCode::BadRequest);
    let empty = json!({"action": "edit", "conversation": DM, "seq": 1, "body": ""});
    assert_eq!(code(&w, &alice, empty).await, ErrorCode::BadRequest);
    let entry_itself = json!({"action": "edit", "conversation": DM, "seq": 2, "body": "x"});
    assert_eq!(code(&w, &alice, entry_itself).await, ErrorCode::BadRequest);
    *now.lock().unwrap() = start + chrono::Duration::minutes(16);
    assert_eq!(
        code(&w, &alice, edit("too late")).await,
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn a_deleted_message_loses_its_body_and_reactions_in_the_store_and_history() {
    // GIVEN alice's message with bob's reaction
    let (w, alice, bob) = chatting().await;
    let react = json!({"action": "react", "conversation": DM, "seq": 1, "emoji": "👍"});
    w.run(&bob, react.clone()).await.unwrap();
    // WHEN bob tries to delete it, then alice does
    let delete = json!({"action": "delete", "conversation": DM, "seq": 1});
    assert_eq!(code(&w, &bob, delete.clone()).await, ErrorCode::Forbidden);
    w.run(&alice, delete.clone()).await.unwrap();
    // THEN the stored message has no body and no reactions, and history says deleted
    let conv = crate::domain::ConversationId::new(DM).unwrap();
    let stored = w.app.stores.messages.by_seqs(&conv, &[1], Utc::now()).await;
    let stored = stored.unwrap().remove(0);
    assert!(stored.deleted && stored.body.is_empty() && stored.reactions.is_empty());
    w.take(&bob);
    w.run(&bob, json!({"action": "history", "conversation": DM}))
        .await
        .unwrap();
    let page = only(&w, &bob);
    let first = &page["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["deleted"], true);
    assert!(first.get("body").is_none() && first.get("reactions").is_none());
    // AND deleting again changes nothing; reacting to it is not_found
    w.take(&alice);
    w.run(&alice, delete).await.unwrap();
    assert_eq!(only(&w, &alice)["unchanged"], true);
    assert_eq!(code(&w, &bob, react).await, ErrorCode::NotFound);
}

#[tokio::test]
async fn group_admins_delete_anyones_message_members_only_their_own() {
    // GIVEN a group of alice (admin), bob and carol, and bob's message
    let w = World::new();
    let (alice, bob, carol) = (
        w.connect("alice", "p").await,
        w.connect("bob", "p").await,
        w.connect("carol", "p").await,
    );
    let create = json!({"action": "create_group", "name": "g", "members": ["bob", "carol"]});
    w.run(&alice, create).await.unwrap();
    let g = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = json!({"action": "send", "conversation": g, "client_msg_id": "b-1", "body": "x"});
    w.run(&bob, send).await.unwrap();
    let delete = json!({"action": "delete", "conversation": g, "seq": 2});
    // WHEN carol tries, THEN forbidden; WHEN alice does, THEN everyone sees the deletion
    assert_eq!(code(&w, &carol, delete.clone()).await, ErrorCode::Forbidden);
    for c in [&alice, &bob, &carol] {
        w.take(c);
    }
    w.run(&alice, delete).await.unwrap();
    for c in [&bob, &carol] {
        let entry = only(&w, c);
        assert_eq!(entry["event"]["type"], "message_deleted");
        assert_eq!(
            (&entry["from"], &entry["target"]["deleted"]),
            (&json!("alice"), &json!(true))
        );
    }
}

#[tokio::test]
async fn reactions_are_one_per_user_and_emoji_bounded_and_validated() {
    // GIVEN a message and a limit of 2 different emoji
    let mut w = World::new();
    w.app.limits.max_reaction_emoji = 2;
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hello").await.unwrap();
    let react = |emoji: &str, remove: bool| json!({"action": "react", "conversation": DM, "seq": 1, "emoji": emoji, "remove": remove});
    // WHEN bob reacts twice with the same emoji, and alice with another
    w.run(&bob, react("👍", false)).await.unwrap();
    w.run(&bob, react("👍", false)).await.unwrap();
    w.run(&alice, react("❤️", false)).await.unwrap();
    // THEN the message holds one reaction each, in order
    w.take(&bob);
    w.run(&bob, json!({"action": "history", "conversation": DM}))
        .await
        .unwrap();
    let page = only(&w, &bob);
    let m = page["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        m["reactions"],
        json!([{"emoji": "👍", "users": ["bob"]}, {"emoji": "❤️", "users": ["alice"]}])
    );
    // AND a third emoji is too_large, text is not an emoji, and removing works
    assert_eq!(
        code(&w, &bob, react("🎉", false)).await,
        ErrorCode::TooLarge
    );
    assert_eq!(
        code(&w, &bob, react("lol", false)).await,
        ErrorCode::BadRequest
    );
    w.take(&alice);
    w.run(&alice, react("❤️", true)).await.unwrap();
    let reply = only(&w, &alice);
    assert_eq!(reply["type"], "reacted");
    assert_eq!(
        reply["message"]["reactions"],
        json!([{"emoji": "👍", "users": ["bob"]}])
    );
    assert_eq!(
        only(&w, &bob)["event"],
        json!({"type": "reaction_removed", "seq": 1, "emoji": "❤️"})
    );
}

#[tokio::test]
async fn a_reply_carries_the_quote_live_and_in_sync_and_must_name_a_visible_message() {
    // GIVEN alice's message 1
    let (w, alice, bob) = chatting().await;
    // WHEN bob replies to it
    let reply = json!({"action": "send", "conversation": DM, "client_msg_id": "b-1",
                       "body": "hi!", "reply_to": 1});
    w.run(&bob, reply).await.unwrap();
    // THEN alice's copy quotes it
    let m = only(&w, &alice);
    assert_eq!(
        (&m["reply_to"], &m["quote"]),
        (&json!(1), &json!({"from": "alice", "text": "hello"}))
    );
    // AND after alice edits the original, a sync shows the reply quoting the new text
    let edit = json!({"action": "edit", "conversation": DM, "seq": 1, "body": "hello again"});
    w.run(&alice, edit).await.unwrap();
    w.take(&bob);
    w.run(&bob, json!({"action": "sync", "since": {DM: 1}}))
        .await
        .unwrap();
    let page = only(&w, &bob);
    let got = page["messages"].as_array().unwrap();
    assert_eq!(
        got[0]["quote"],
        json!({"from": "alice", "text": "hello again", "edited": true})
    );
    assert_eq!(
        got[1]["target"]["body"], "hello again",
        "the edit entry carries the message"
    );
    // AND replies to nothing, to a system entry or to seq 0 are refused
    let to = |seq: u64, cmid: &str| json!({"action": "send", "conversation": DM, "client_msg_id": cmid, "body": "x", "reply_to": seq});
    assert_eq!(code(&w, &bob, to(99, "b-2")).await, ErrorCode::BadRequest);
    assert_eq!(code(&w, &bob, to(3, "b-3")).await, ErrorCode::BadRequest);
    assert_eq!(code(&w, &bob, to(0, "b-4")).await, ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_member_who_joined_later_never_sees_older_messages_through_replies_or_edits() {
    // GIVEN a group where alice wrote message 2 before dave was added (seq 3)
    let w = World::new();
    let (alice, dave) = (w.connect("alice", "p").await, w.connect("dave", "p").await);
    w.run(
        &alice,
        json!({"action": "create_group", "name": "g", "members": []}),
    )
    .await
    .unwrap();
    let g = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |cmid: &str, reply_to: Option<u64>| {
        let body = if reply_to.is_some() {
            "a reply"
        } else {
            "secret"
        };
        json!({"action": "send", "conversation": g, "client_msg_id": cmid, "body": body,
               "reply_to": reply_to})
    };
    w.run(&alice, send("a-1", None)).await.unwrap();
    let add = json!({"action": "add_members", "conversation": g, "users": ["dave"]});
    w.run(&alice, add).await.unwrap();
    w.take(&dave);
    // WHEN alice replies to message 2 and edits it
    w.run(&alice, send("a-2", Some(2))).await.unwrap();
    let edit = json!({"action": "edit", "conversation": g, "seq": 2, "body": "still secret"});
    w.run(&alice, edit).await.unwrap();
    // THEN dave gets both entries, without the quote or the target
    let got = w.take(&dave);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (&got[0]["reply_to"], got[0].get("quote")),
        (&json!(2), None)
    );
    assert_eq!(
        (&got[1]["event"]["seq"], got[1].get("target")),
        (&json!(2), None)
    );
    // AND dave cannot react to or reply to message 2
    let react = json!({"action": "react", "conversation": g, "seq": 2, "emoji": "👍"});
    assert_eq!(code(&w, &dave, react).await, ErrorCode::NotFound);
    let reply = json!({"action": "send", "conversation": g, "client_msg_id": "d-1",
                       "body": "?", "reply_to": 2});
    assert_eq!(code(&w, &dave, reply).await, ErrorCode::NotFound);
    // AND his sync shows neither
    w.run(&dave, json!({"action": "sync", "since": {}}))
        .await
        .unwrap();
    let page = w.take(&dave).remove(0);
    assert!(!page.to_string().contains("secret"), "{page}");
}

async fn inbox(w: &World, who: &Caller) -> Value {
    w.run(who, json!({"action": "conversations"}))
        .await
        .unwrap();
    only(w, who)
}

#[tokio::test]
async fn the_inbox_puts_the_latest_activity_first_with_unread_counts_previews_and_a_badge() {
    // GIVEN alice writes to bob, then carol writes to bob twice, later
    let start = Utc::now();
    let (w, now) = world_at(start);
    w.contacts("alice", "bob");
    w.contacts("carol", "bob");
    let (alice, bob, carol) = (
        w.connect("alice", "p").await,
        w.connect("bob", "p").await,
        w.connect("carol", "p").await,
    );
    send_to(&w, &alice, "bob", "a-1", "from alice")
        .await
        .unwrap();
    *now.lock().unwrap() += chrono::Duration::seconds(1);
    send_to(&w, &carol, "bob", "c-1", "one").await.unwrap();
    send_to(&w, &carol, "bob", "c-2", &"two ".repeat(40))
        .await
        .unwrap();
    // AND bob reacts to carol's first and replies to alice (sending reads)
    let react = json!({"action": "react", "conversation": "dm:bob:carol", "seq": 1, "emoji": "👍"});
    w.run(&bob, react).await.unwrap();
    // WHEN bob opens his inbox
    w.take(&bob);
    let page = inbox(&w, &bob).await;
    // THEN carol's conversation comes first, with 2 unread (the reaction is not counted)
    let rows = page["conversations"].as_array().unwrap();
    assert_eq!(rows[0]["conversation"], "dm:bob:carol");
    assert_eq!(
        (&rows[0]["unread"], &rows[1]["unread"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(page["unread_total"], 3);
    let last = &rows[0]["last"];
    assert_eq!((&last["seq"], &last["from"]), (&json!(2), &json!("carol")));
    assert_eq!(
        last["text"].as_str().unwrap().chars().count(),
        101,
        "truncated"
    );
    // WHEN bob reads carol's first message, and replies to alice
    let ack = json!({"action": "ack", "conversation": "dm:bob:carol", "seq": 1, "kind": "read"});
    w.run(&bob, ack).await.unwrap();
    *now.lock().unwrap() += chrono::Duration::seconds(1);
    send_to(&w, &bob, "alice", "b-1", "hi alice").await.unwrap();
    w.take(&bob);
    // THEN alice's conversation is first again, read (his own message is not unread)
    let page = inbox(&w, &bob).await;
    let rows = page["conversations"].as_array().unwrap();
    assert_eq!(rows[0]["conversation"], DM);
    assert_eq!(
        (&rows[0]["unread"], &rows[1]["unread"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(page["unread_total"], 1);
    // AND pages of one follow the order through the cursor
    w.run(&bob, json!({"action": "conversations", "limit": 1}))
        .await
        .unwrap();
    let first = only(&w, &bob);
    assert_eq!(
        (&first["more"], &first["conversations"][0]["conversation"]),
        (&json!(true), &json!(DM))
    );
    let next = json!({"action": "conversations", "limit": 1, "cursor": first["cursor"]});
    w.run(&bob, next).await.unwrap();
    let second = only(&w, &bob);
    assert_eq!(second["conversations"][0]["conversation"], "dm:bob:carol");
    assert_eq!(second["more"], false);
    let bad = json!({"action": "conversations", "cursor": "nonsense"});
    assert_eq!(code(&w, &bob, bad).await, ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_new_group_member_has_nothing_unread_from_before_joining() {
    // GIVEN a group with two messages, then dave added
    let w = World::new();
    w.contacts("alice", "dave");
    let (alice, dave) = (w.connect("alice", "p").await, w.connect("dave", "p").await);
    w.run(
        &alice,
        json!({"action": "create_group", "name": "g", "members": []}),
    )
    .await
    .unwrap();
    let g = w.take(&alice)[0]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..2 {
        let send = json!({"action": "send", "conversation": g, "client_msg_id": format!("a-{i}"), "body": "x"});
        w.run(&alice, send).await.unwrap();
    }
    let add = json!({"action": "add_members", "conversation": g, "users": ["dave"]});
    w.run(&alice, add).await.unwrap();
    let send =
        json!({"action": "send", "conversation": g, "client_msg_id": "a-9", "body": "welcome"});
    w.run(&alice, send).await.unwrap();
    w.take(&dave);
    // WHEN dave opens his inbox, THEN one message is unread: the one after he joined
    w.run(&dave, json!({"action": "conversations"}))
        .await
        .unwrap();
    let page = only(&w, &dave);
    assert_eq!(page["conversations"][0]["unread"], 1);
    assert_eq!(page["conversations"][0]["last"]["text"], "welcome");
}

mod mute {
    use super::*;
    use crate::usecases::disconnect::disconnect;

    async fn offline_with_device(w: &World, user: &str, platform: &str) -> Caller {
        let c = w.connect(user, "phone").await;
        let r =
            json!({"action": "register_push", "platform": platform, "token": format!("{user}-t")});
        w.run(&c, r).await.unwrap();
        assert_eq!(only(w, &c)["type"], "push_registered");
        disconnect(&w.app, &c).await.unwrap();
        c
    }

    #[tokio::test]
    async fn a_muted_conversation_pushes_nothing_until_unmuted_or_the_mute_ends() {
        // GIVEN bob, offline with a registered phone, who muted his conversation with alice
        let start = Utc::now();
        let (w, now) = world_at(start);
        w.contacts("alice", "bob");
        let alice = w.connect("alice", "p").await;
        send_to(&w, &alice, "bob", "c-0", "first").await.unwrap();
        let bob = offline_with_device(&w, "bob", "fcm").await;
        w.pushes();
        let laptop = w.connect("bob", "laptop").await;
        let until = start + chrono::Duration::hours(1);
        let mute = json!({"action": "mute", "conversation": DM, "until": until});
        w.run(&laptop, mute).await.unwrap();
        assert_eq!(only(&w, &laptop)["muted"], true);
        disconnect(&w.app, &laptop).await.unwrap();
        // WHEN alice writes, THEN no push
        send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
        assert!(w.pushes().is_empty());
        // WHEN the hour has passed, THEN she pushes again
        *now.lock().unwrap() = until + chrono::Duration::seconds(1);
        send_to(&w, &alice, "bob", "c-2", "hi").await.unwrap();
        assert_eq!(w.pushes(), [("bob".into(), "phone".into(), 3)]);
        // AND a mute without end holds until unmute
        let phone = w.connect("bob", "phone").await;
        w.run(&phone, json!({"action": "mute", "conversation": DM}))
            .await
            .unwrap();
        assert_eq!(
            only(&w, &phone),
            json!({"type": "muted", "conversation": DM, "muted": true})
        );
        disconnect(&w.app, &phone).await.unwrap();
        *now.lock().unwrap() += chrono::Duration::minutes(2);
        send_to(&w, &alice, "bob", "c-3", "hi").await.unwrap();
        assert!(w.pushes().is_empty());
        let phone = w.connect("bob", "phone").await;
        w.run(&phone, json!({"action": "unmute", "conversation": DM}))
            .await
            .unwrap();
        assert_eq!(only(&w, &phone)["muted"], false);
        disconnect(&w.app, &phone).await.unwrap();
        send_to(&w, &alice, "bob", "c-4", "hi").await.unwrap();
        assert_eq!(w.pushes().len(), 1);
        drop(bob);
        // AND a past end, and a conversation one is not in, are refused
        let past = json!({"action": "mute", "conversation": DM, "until": start});
        assert_eq!(code(&w, &alice, past).await, ErrorCode::BadRequest);
        let carol = w.connect("carol", "p").await;
        let theirs = json!({"action": "mute", "conversation": DM});
        assert_eq!(code(&w, &carol, theirs).await, ErrorCode::Forbidden);
    }

    #[tokio::test]
    async fn an_apns_push_carries_the_total_unread_as_its_badge() {
        // GIVEN bob offline with an iPhone and one unread message from carol
        let w = World::new();
        w.contacts("alice", "bob");
        w.contacts("carol", "bob");
        let (alice, carol) = (w.connect("alice", "p").await, w.connect("carol", "p").await);
        offline_with_device(&w, "bob", "apns").await;
        send_to(&w, &carol, "bob", "c-1", "hey").await.unwrap();
        // WHEN alice writes to him
        send_to(&w, &alice, "bob", "a-1", "hi").await.unwrap();
        // THEN the push for alice's message shows 2 on the icon
        let pushes = w.notifier.pushes.lock().unwrap().clone();
        let badges: Vec<Option<u64>> = pushes.iter().map(|(_, _, n)| n.badge).collect();
        assert_eq!(badges, [Some(1), Some(2)]);
    }
}
