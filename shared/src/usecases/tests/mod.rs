//! Use cases against the in-memory adapters, GIVEN / WHEN / THEN.

mod attachments;
mod features;
mod properties;
mod push;
mod requests;

use super::testkit::World;
use super::{ack::ack, history::history, presence::presence, send::send, sync::sync};
use crate::Limits;
use crate::domain::ConversationId;
use crate::request::Caller;
use serde_json::{Value, json};

const DM: &str = "dm:alice:bob";

async fn send_to(
    w: &World,
    from: &Caller,
    to: &str,
    cmid: &str,
    body: &str,
) -> Result<(), crate::Error> {
    let req = w.request(from, json!({"to": to, "client_msg_id": cmid, "body": body}));
    send(&w.app, &req, req.frame()?).await
}

fn types(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn send_acks_the_sender_then_reaches_every_other_device() {
    // GIVEN alice on two devices and bob on one
    let w = World::new();
    let (alice, alice2, bob) = (
        w.connect("alice", "phone").await,
        w.connect("alice", "laptop").await,
        w.connect("bob", "phone").await,
    );
    // WHEN alice writes to bob
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN alice's phone gets `sent` (and no echo), her laptop and bob get the message
    let mine = w.take(&alice);
    assert_eq!(types(&mine), ["sent"]);
    assert_eq!(
        (mine[0]["seq"].as_u64(), mine[0]["conversation"].as_str()),
        (Some(1), Some(DM))
    );
    for other in [&alice2, &bob] {
        let got = w.take(other);
        assert_eq!(types(&got), ["message"]);
        assert_eq!(got[0]["from"], "alice");
    }
}

#[tokio::test]
async fn a_reused_key_with_another_body_is_a_conflict_and_stores_nothing() {
    // GIVEN a message alice sent with c-1
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    w.take(&bob);
    // WHEN she sends another body with c-1, and c-1 to someone else
    let other = send_to(&w, &alice, "bob", "c-1", "another").await;
    let elsewhere = send_to(&w, &alice, "carol", "c-1", "hi").await;
    // THEN both are conflicts: nothing stored, nothing delivered, no conversation with carol
    for e in [other, elsewhere] {
        assert_eq!(e.unwrap_err().code(), crate::protocol::ErrorCode::Conflict);
    }
    assert!(w.take(&bob).is_empty());
    let carol = crate::domain::UserId::new("carol").unwrap();
    assert!(
        w.app
            .stores
            .conversations
            .of_user(&carol)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn past_the_send_rate_the_error_says_when_to_retry() {
    // GIVEN a send rate of 2 at once, then one a minute
    let mut limits = Limits::default();
    limits.rates.send = crate::ratelimit::Rate {
        burst: 2,
        per_minute: 1,
    };
    let w = World::with_limits(limits);
    let alice = w.connect("alice", "p").await;
    // WHEN alice sends three
    for cmid in ["c-1", "c-2"] {
        send_to(&w, &alice, "bob", cmid, "hi").await.unwrap();
    }
    let third = send_to(&w, &alice, "bob", "c-3", "hi").await.unwrap_err();
    // THEN the third is refused with the wait until the next token (about a minute)
    assert_eq!(third.code(), crate::protocol::ErrorCode::RateLimited);
    let wait = third.retry_after_ms().unwrap();
    assert!((59_000..=60_000).contains(&wait), "{wait}");
    let conv = ConversationId::new(DM).unwrap();
    let heads = w
        .app
        .stores
        .messages
        .last_seqs(std::slice::from_ref(&conv))
        .await
        .unwrap();
    assert_eq!(heads[&conv], 2, "nothing stored");
}

#[tokio::test]
async fn a_retried_send_returns_the_original_and_delivers_it_again_storing_nothing() {
    // GIVEN a message alice already sent
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    w.take(&alice);
    w.take(&bob);
    // WHEN she retries it with the same client_msg_id
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN she gets the original seq, flagged duplicate, and bob gets the same message again
    // (the first attempt may have died before reaching him; his device drops a seq it has)
    let mine = w.take(&alice);
    assert_eq!(
        (mine[0]["seq"].as_u64(), mine[0]["duplicate"].as_bool()),
        (Some(1), Some(true))
    );
    let again = w.take(&bob);
    assert_eq!(types(&again), ["message"]);
    assert_eq!(
        (again[0]["seq"].as_u64(), again[0]["client_msg_id"].as_str()),
        (Some(1), Some("c-1"))
    );
    let conv = ConversationId::new(DM).unwrap();
    assert_eq!(
        w.app
            .stores
            .messages
            .last_seqs(std::slice::from_ref(&conv))
            .await
            .unwrap()[&conv],
        1
    );
}

#[tokio::test]
async fn a_send_retried_after_the_key_window_is_a_new_message() {
    // GIVEN a message alice sent, and a clock we move
    let mut w = World::new();
    let at = w.movable_clock();
    let alice = w.connect("alice", "p").await;
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let seq_dup = |w: &World| {
        let r = w.take(&alice);
        (r[0]["seq"].as_u64(), r[0]["duplicate"] == true)
    };
    assert_eq!(seq_dup(&w), (Some(1), false));
    // WHEN she retries it on the window's last second, and again once it has passed
    at(crate::domain::KEY_WINDOW - chrono::TimeDelta::seconds(1));
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let inside = seq_dup(&w);
    at(crate::domain::KEY_WINDOW);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let after = seq_dup(&w);
    // THEN the first retry is the original, the second a new message (7 days: docs/protocol.md)
    assert_eq!(inside, (Some(1), true));
    assert_eq!(after, (Some(2), false));
    assert_eq!(crate::domain::KEY_WINDOW, chrono::TimeDelta::days(7));
}

#[tokio::test]
async fn a_create_group_retried_after_the_key_window_is_a_conflict() {
    // GIVEN a group alice created with a key, and a clock we move past the key's window
    let mut w = World::new();
    let at = w.movable_clock();
    let alice = w.connect("alice", "p").await;
    let create = || {
        w.request(
            &alice,
            json!({"name": "G", "members": ["bob"], "client_msg_id": "g-1"}),
        )
    };
    let r = create();
    super::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    // WHEN she sends the same create_group once the key has lapsed
    at(crate::domain::KEY_WINDOW);
    let r = create();
    let err = super::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap_err();
    // THEN its key made that group already: conflict (use a new key)
    assert_eq!(err.code(), crate::protocol::ErrorCode::Conflict, "{err:?}");
}

#[tokio::test]
async fn an_oversize_body_is_refused_and_nothing_is_stored() {
    // GIVEN a 5-byte limit
    let w = World::with_limits(Limits {
        max_body_bytes: 5,
        ..Limits::default()
    });
    let alice = w.connect("alice", "p").await;
    // WHEN alice sends 6 bytes
    let err = send_to(&w, &alice, "bob", "c-1", "123456")
        .await
        .unwrap_err();
    // THEN it is too_large and the conversation does not even exist
    assert_eq!(err.code(), crate::protocol::ErrorCode::TooLarge);
    assert!(
        w.app
            .stores
            .conversations
            .of_user(&alice.user)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_non_member_cannot_post_read_or_ack() {
    // GIVEN a conversation between alice and bob
    let w = World::new();
    let (alice, carol) = (w.connect("alice", "p").await, w.connect("carol", "p").await);
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // WHEN carol tries to post, read history and ack in it
    let post = w.request(
        &carol,
        json!({"conversation": DM, "client_msg_id": "x", "body": "hi"}),
    );
    let read = w.request(&carol, json!({"conversation": DM}));
    let acks = w.request(
        &carol,
        json!({"conversation": DM, "seq": 1, "kind": "read"}),
    );
    // THEN every one is forbidden
    let errors = [
        send(&w.app, &post, post.frame().unwrap())
            .await
            .unwrap_err(),
        history(&w.app, &read, read.frame().unwrap())
            .await
            .unwrap_err(),
        ack(&w.app, &acks, acks.frame().unwrap()).await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.code(), crate::protocol::ErrorCode::Forbidden, "{e}");
    }
}

#[tokio::test]
async fn ack_moves_pointers_forward_only_and_receipts_only_on_a_move() {
    // GIVEN three messages from alice to bob
    let w = World::new();
    w.contacts("alice", "bob");
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    for i in 1..=3 {
        send_to(&w, &alice, "bob", &format!("c-{i}"), "m")
            .await
            .unwrap();
    }
    w.take(&alice);
    let do_ack = async |seq: u64, kind: &str| {
        let r = w.request(&bob, json!({"conversation": DM, "seq": seq, "kind": kind}));
        ack(&w.app, &r, r.frame().unwrap()).await
    };
    // WHEN bob reads up to 3, then acks delivered 2 (late, out of order)
    do_ack(3, "read").await.unwrap();
    do_ack(2, "delivered").await.unwrap();
    // THEN alice got delivered+read receipts for 3 once, and nothing for the stale ack
    let receipts: Vec<(u64, String)> = w
        .take(&alice)
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        [(3, "delivered".to_owned()), (3, "read".to_owned())]
    );
    let m = w
        .app
        .stores
        .conversations
        .membership(&ConversationId::new(DM).unwrap(), &bob.user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.delivered, m.read), (3, 3));
    // AND an ack past the latest message, or of seq 0, is a bad request that moves nothing
    for seq in [4, 0] {
        let e = do_ack(seq, "read").await.unwrap_err();
        assert_eq!(
            e.code(),
            crate::protocol::ErrorCode::BadRequest,
            "{seq}: {e}"
        );
    }
    assert!(w.take(&alice).is_empty());
}

#[tokio::test]
async fn a_connection_record_expires_2_h_5_min_after_it_opened() {
    // GIVEN a fixed clock, and a connection whose carrier says when it opened
    let mut w = World::new();
    let now = chrono::Utc::now();
    w.app.clock = std::sync::Arc::new(move || now);
    let opened = now - chrono::Duration::seconds(3);
    let mut phone = w.caller("alice", "phone");
    phone.connected_at = Some(opened);
    // WHEN both connect
    super::connect::connect(&w.app, &phone).await.unwrap();
    let laptop = w.connect("alice", "laptop").await;
    // THEN each record lives API Gateway's 2 h plus 5 min from its opening
    let conns = w
        .app
        .stores
        .connections
        .of_users(std::slice::from_ref(&phone.user), now)
        .await
        .unwrap();
    let ttl = chrono::Duration::minutes(125);
    for (caller, opened) in [(&phone, opened), (&laptop, now)] {
        let c = conns.iter().find(|c| c.id == caller.connection).unwrap();
        assert_eq!((c.connected_at, c.expires_at), (opened, opened + ttl));
    }
}

#[tokio::test]
async fn with_retention_every_stored_message_carries_its_expiry() {
    // GIVEN 30 days of retention and a fixed clock
    let mut w = World::with_limits(Limits {
        retention: Some(chrono::Duration::days(30)),
        ..Limits::default()
    });
    let now = chrono::Utc::now();
    w.app.clock = std::sync::Arc::new(move || now);
    let alice = w.connect("alice", "p").await;
    // WHEN alice sends a message and creates a group (a system message)
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    let r = w.request(&alice, json!({"name": "G", "members": ["bob"]}));
    super::create_group::create_group(&w.app, &r, r.frame().unwrap())
        .await
        .unwrap();
    let g = w.take(&alice)[1]["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    // THEN both expire 30 days after they were sent
    for conv in [DM, g.as_str()] {
        let conv = ConversationId::new(conv).unwrap();
        let log = w
            .app
            .stores
            .messages
            .after(&conv, 0, 10, now)
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "{conv}");
        assert_eq!(
            (log[0].sent_at, log[0].expires_at),
            (now, Some(now + chrono::Duration::days(30)))
        );
    }
}

#[tokio::test]
async fn a_410_from_a_connection_still_connecting_keeps_its_record() {
    // GIVEN bob's device in the middle of $connect: recorded, but not postable yet (410)
    let w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    w.kill(&bob);
    // WHEN alice writes to him
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN his record stays, so the pushes after his socket opens reach him
    let bobs = w
        .app
        .stores
        .connections
        .of_users(std::slice::from_ref(&bob.user), w.app.now())
        .await
        .unwrap();
    assert_eq!(bobs.len(), 1);
}

#[tokio::test]
async fn a_stale_connection_is_removed_on_410_and_its_user_counts_as_offline() {
    // GIVEN bob's only device died without $disconnect, a minute after connecting
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    w.kill(&bob);
    let later = w.app.now() + chrono::TimeDelta::minutes(1);
    w.app.clock = std::sync::Arc::new(move || later);
    // WHEN alice writes to him
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // THEN the message is stored, and bob's connection record is gone
    assert_eq!(w.take(&alice)[0]["type"], "sent");
    assert!(
        w.app
            .stores
            .connections
            .of_users(std::slice::from_ref(&bob.user), w.app.now())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sync_pages_by_count_and_by_size_and_resumes_from_the_returned_cursors() {
    // GIVEN five messages of 1 KB and a page budget of about two of them
    let w = World::with_limits(Limits {
        page_bytes: 2500,
        ..Limits::default()
    });
    let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
    let body = "x".repeat(1000);
    for i in 1..=5 {
        send_to(&w, &alice, "bob", &format!("c-{i}"), &body)
            .await
            .unwrap();
    }
    w.take(&bob);
    // WHEN bob syncs from nothing, following `since` while `more`
    let mut since = json!({});
    let mut pages = Vec::new();
    loop {
        let r = w.request(&bob, json!({"since": since}));
        sync(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let page = w.take(&bob).pop().unwrap();
        pages.push(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
        );
        for (k, v) in page["since"].as_object().unwrap() {
            since[k] = v.clone();
        }
        if page["more"] == false {
            break;
        }
    }
    // THEN the pages hold every message once, in order, two at a time
    assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5]]);
}

#[tokio::test]
async fn presence_is_visible_only_between_people_who_share_a_conversation() {
    // GIVEN alice and bob have talked; carol is a stranger; all online
    let w = World::new();
    let (alice, bob, carol) = (
        w.connect("alice", "p").await,
        w.connect("bob", "p").await,
        w.connect("carol", "p").await,
    );
    send_to(&w, &alice, "bob", "c-1", "hi").await.unwrap();
    // WHEN bob and carol ask about alice
    for who in [&bob, &carol] {
        let r = w.request(who, json!({"users": ["alice"]}));
        presence(&w.app, &r, r.frame().unwrap()).await.unwrap();
    }
    // THEN bob sees her online, carol sees nothing
    let bobs = w.take(&bob).pop().unwrap();
    assert_eq!(bobs["users"][0]["online"], true);
    assert!(bobs["users"][0]["last_seen"].is_string());
    let carols = w.take(&carol).pop().unwrap();
    assert_eq!(
        carols["users"][0],
        json!({"user": "alice", "online": false, "last_seen": null})
    );
}

mod groups {
    use super::super::testkit::World;
    use super::super::{
        ack::ack, add_members::add_members, create_group::create_group, leave_group::leave_group,
        receipts::receipts, send::send,
    };
    use crate::domain::{ConversationId, Role};
    use serde_json::json;

    #[tokio::test]
    async fn a_group_ack_tells_the_authors_it_covers_and_the_pull_shows_everyone() {
        // GIVEN a group of alice (creator), bob and carol, with carol on two devices; dave is
        // added after bob's and alice's messages
        let w = World::new();
        w.contacts("alice", "bob");
        w.contacts("alice", "carol");
        w.contacts("alice", "dave");
        let (alice, bob) = (w.connect("alice", "p").await, w.connect("bob", "p").await);
        let (carol, carol2) = (w.connect("carol", "p").await, w.connect("carol", "t").await);
        let r = w.request(&alice, json!({"name": "G", "members": ["bob", "carol"]}));
        create_group(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let g = w.take(&alice)[0]["conversation"]
            .as_str()
            .unwrap()
            .to_owned();
        for (who, cmid) in [(&bob, "b-1"), (&alice, "a-1")] {
            let r = w.request(
                who,
                json!({"conversation": g, "client_msg_id": cmid, "body": "x"}),
            );
            send(&w.app, &r, r.frame().unwrap()).await.unwrap();
        }
        let r = w.request(&alice, json!({"conversation": g, "users": ["dave"]}));
        add_members(&w.app, &r, r.frame().unwrap()).await.unwrap();
        for c in [&alice, &bob, &carol, &carol2] {
            w.take(c);
        }
        // WHEN carol acks the creation event and bob's message (seqs 1 and 2) without an id
        let r = w.request(
            &carol,
            json!({"conversation": g, "seq": 2, "kind": "delivered"}),
        );
        ack(&w.app, &r, r.frame().unwrap()).await.unwrap();
        // THEN the authors of seqs 1 and 2 (alice, bob) and carol's other device get the receipt;
        // carol gets no reply
        let receipt = json!({"type": "receipt", "conversation": g, "seq": 2,
                             "kind": "delivered", "by": "carol"});
        for c in [&alice, &bob, &carol2] {
            assert_eq!(w.take(c), vec![receipt.clone()]);
        }
        assert!(w.take(&carol).is_empty());
        // AND an ack of alice's message alone reaches alice only
        let r = w.request(
            &carol,
            json!({"conversation": g, "seq": 3, "kind": "delivered"}),
        );
        ack(&w.app, &r, r.frame().unwrap()).await.unwrap();
        assert_eq!(w.take(&alice).len(), 1);
        assert!(w.take(&bob).is_empty());
        // WHEN bob pulls the read state
        let r = w.request(&bob, json!({"conversation": g, "id": 7}));
        receipts(&w.app, &r, r.frame().unwrap()).await.unwrap();
        // THEN he sees every member's pointers (a sender has read through their own message);
        // the aggregate over the others counts dave (added by event 4) as having everything
        // before 4
        let got = w.take(&bob).pop().unwrap();
        assert_eq!(
            got,
            json!({"id": 7, "type": "receipts", "conversation": g,
                   "members": [{"user": "alice", "delivered": 3, "read": 3},
                               {"user": "bob", "delivered": 2, "read": 2},
                               {"user": "carol", "delivered": 3, "read": 0},
                               {"user": "dave", "delivered": 0, "read": 0}],
                   "delivered": 3, "read": 0})
        );
        let r = w.request(&alice, json!({"conversation": g}));
        receipts(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let got = w.take(&alice).pop().unwrap();
        assert_eq!((&got["delivered"], &got["read"]), (&json!(2), &json!(0)));
        // AND once bob has everything, what alice's messages reached is carol's and dave's floor
        let r = w.request(
            &bob,
            json!({"conversation": g, "seq": 4, "kind": "delivered"}),
        );
        ack(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let r = w.request(&alice, json!({"conversation": g}));
        receipts(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let got = w.take(&alice).pop().unwrap();
        assert_eq!(got["delivered"], 3, "{got}");
        // AND outsiders are refused
        let mallory = w.connect("mallory", "p").await;
        let r = w.request(&mallory, json!({"conversation": g}));
        let e = receipts(&w.app, &r, r.frame().unwrap()).await.unwrap_err();
        assert_eq!(e.code(), crate::protocol::ErrorCode::Forbidden, "{e}");
    }

    #[tokio::test]
    async fn the_last_admin_leaving_promotes_the_longest_standing_member() {
        // GIVEN a group created by alice with zoe and yann, then adam (who sorts first) added
        let w = World::new();
        let alice = w.connect("alice", "p").await;
        let r = w.request(&alice, json!({"name": "G", "members": ["zoe", "yann"]}));
        create_group(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let g = ConversationId::new(w.take(&alice)[0]["conversation"].as_str().unwrap()).unwrap();
        let r = w.request(
            &alice,
            json!({"conversation": g.as_str(), "users": ["adam"]}),
        );
        add_members(&w.app, &r, r.frame().unwrap()).await.unwrap();
        // WHEN alice, the only admin, leaves
        let r = w.request(&alice, json!({"conversation": g.as_str()}));
        leave_group(&w.app, &r, r.frame().unwrap()).await.unwrap();
        // THEN a founder is admin, not the later joiner (founders tie: the first user id wins)
        let members = w.app.stores.conversations.members(&g).await.unwrap();
        let mut roles: Vec<(&str, Role)> =
            members.iter().map(|m| (m.user.as_str(), m.role)).collect();
        roles.sort_by_key(|r| r.0);
        assert_eq!(
            roles,
            [
                ("adam", Role::Member),
                ("yann", Role::Admin),
                ("zoe", Role::Member)
            ]
        );
        let left = w.take(&alice);
        assert_eq!(
            (left[1]["type"].as_str(), left[1]["seq"].as_u64()),
            (Some("left"), Some(3))
        );
    }

    #[tokio::test]
    async fn a_group_of_one_can_be_left_and_is_then_empty() {
        // GIVEN a group with only its creator
        let w = World::new();
        let alice = w.connect("alice", "p").await;
        let r = w.request(&alice, json!({"name": "Notes"}));
        create_group(&w.app, &r, r.frame().unwrap()).await.unwrap();
        let g = ConversationId::new(w.take(&alice)[0]["conversation"].as_str().unwrap()).unwrap();
        // WHEN she leaves
        let r = w.request(&alice, json!({"conversation": g.as_str()}));
        leave_group(&w.app, &r, r.frame().unwrap()).await.unwrap();
        // THEN nobody is left and nobody was promoted
        assert!(
            w.app
                .stores
                .conversations
                .members(&g)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
