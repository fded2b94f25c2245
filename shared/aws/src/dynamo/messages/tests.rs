//! The stored format of the messages table, pinned, and its items round-tripped.

use super::*;
use crate::dynamo::codec::tests::{item, t0};
use aws_sdk_dynamodb::types::AttributeValue;
use messenger::domain::KEY_WINDOW;

fn message(seq: Seq, expires_at: Option<DateTime<Utc>>) -> Message {
    Message {
        conversation: ConversationId::new("dm:alice:bob").unwrap(),
        seq,
        from: UserId::new("alice").unwrap(),
        client_msg_id: ClientMsgId::new("c-1").unwrap(),
        body: "hi bob".into(),
        event: None,
        sent_at: t0(),
        expires_at,
        attachments: Vec::new(),
        reply_to: None,
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        rev: None,
    }
}

fn round_trip(m: &Message, bucket: Seq) -> (Item, Message) {
    let stored = to_item(&MessageItem::new(m, bucket, 6)).unwrap();
    let back = from_item::<MessageItem>(stored.clone()).unwrap();
    (stored, back.into_message(&m.conversation))
}

#[test]
fn a_message_round_trips_and_its_format_is_pinned() {
    let m = message(17, None);
    let (stored, back) = round_trip(&m, 10);
    assert_eq!(back, m);
    assert_eq!(
        stored,
        item([
            ("pk", s("M#dm:alice:bob#1")),
            ("sk", n(17)),
            ("from", s("alice")),
            ("cmid", s("c-1")),
            ("body", s("hi bob")),
            ("sent_at", s("2026-11-29T05:45:39.120000000Z")),
            ("chats", n(6)),
        ])
    );
    assert!(stored.contains_key(PK) && stored.contains_key(SK) && stored.contains_key(CHATS));
    let item = from_item::<MessageItem>(stored).unwrap();
    assert_eq!(item.chats(), 6);
}

#[test]
fn an_edited_reply_with_reactions_round_trips_and_its_format_is_pinned() {
    let m = Message {
        body: "hi bob!".into(),
        reply_to: Some(9),
        edited_at: Some(t0() + chrono::Duration::minutes(1)),
        reactions: vec![messenger::domain::Reaction {
            emoji: messenger::domain::Emoji::new("👍").unwrap(),
            users: vec![UserId::new("bob").unwrap()],
        }],
        rev: Some(21),
        ..message(17, None)
    };
    let (stored, back) = round_trip(&m, 10);
    assert_eq!(back, m);
    assert_eq!(stored["reply_to"], n(9));
    assert_eq!(stored["edited_at"], s("2026-11-29T05:46:39.120000000Z"));
    assert_eq!(
        stored["reactions"],
        s(r#"[{"emoji":"👍","users":["bob"]}]"#)
    );
    assert_eq!(stored[REV], n(21));
    assert!(!stored.contains_key("deleted"));
}

#[test]
fn a_deleted_message_has_no_body_attribute() {
    let m = Message {
        body: String::new(),
        deleted: true,
        rev: Some(30),
        ..message(17, None)
    };
    let (stored, back) = round_trip(&m, 10);
    assert_eq!(back, m);
    assert!(!stored.contains_key("body"), "the body is gone, not hidden");
    assert!(!stored.contains_key("reactions"));
    assert_eq!(stored["deleted"], AttributeValue::Bool(true));
}

#[test]
fn entries_written_before_chat_counts_read_as_zero() {
    let old = item([
        ("pk", s("M#dm:alice:bob#1")),
        ("sk", n(17)),
        ("from", s("alice")),
        ("cmid", s("c-1")),
        ("body", s("hi bob")),
        ("sent_at", s("2026-11-29T05:45:39.120000000Z")),
    ]);
    let item = from_item::<MessageItem>(old).unwrap();
    assert_eq!(item.chats(), 0);
    let conv = ConversationId::new("dm:alice:bob").unwrap();
    assert_eq!(item.into_message(&conv), message(17, None));
}

#[test]
fn an_expiring_message_carries_expires_at_and_ttl() {
    let m = message(3, Some(t0() + chrono::Duration::days(30)));
    let (stored, back) = round_trip(&m, 1000);
    assert_eq!(back, m);
    assert_eq!(stored["pk"], s("M#dm:alice:bob#0"));
    assert_eq!(stored["expires_at"], s("2026-12-29T05:45:39.120000000Z"));
    let ttl = (t0() + chrono::Duration::days(30)).timestamp() + 1;
    assert_eq!(stored["ttl"], AttributeValue::N(ttl.to_string()));
    assert!(stored.contains_key(EXPIRES_AT) && stored.contains_key(codec::TTL_ATTR));
}

#[test]
fn a_system_message_stores_its_event_as_json() {
    let m = Message {
        body: String::new(),
        event: Some(LogEvent::MembersAdded {
            users: vec![UserId::new("carol").unwrap()],
        }),
        ..message(4, None)
    };
    let (stored, back) = round_trip(&m, 10);
    assert_eq!(back, m);
    assert_eq!(
        stored["event"],
        s(r#"{"type":"members_added","users":["carol"]}"#)
    );
    assert_eq!(stored["body"], s(""));
}

#[test]
fn the_idempotency_key_is_pinned_and_lapses_after_its_window_or_with_its_message() {
    let m = message(12, None);
    let digest = RequestDigest::of("send", &m.conversation, &[&m.body]);
    let key = IdempotencyItem::new(&m, &digest, "5eed");
    let stored = to_item(&key).unwrap();
    assert_eq!(
        stored,
        item([
            ("pk", s("I#alice#c-1")),
            ("sk", n(0)),
            ("conv", s("dm:alice:bob")),
            ("seq", n(12)),
            ("digest", s(digest.as_str())),
            // A message kept forever: its key stands for it for KEY_WINDOW (7 days).
            ("expires_at", s("2026-12-06T05:45:39.120000000Z")),
            (
                "ttl",
                AttributeValue::N(((t0() + KEY_WINDOW).timestamp() + 1).to_string())
            ),
            ("token", s("5eed")),
        ])
    );
    assert_eq!(
        LogKey::idempotency(&m.from, &m.client_msg_id)
            .item()
            .unwrap(),
        item([("pk", s("I#alice#c-1")), ("sk", n(0))])
    );
    let back: IdempotencyItem = from_item(stored.clone()).unwrap();
    assert!(back.written_by("5eed") && !back.written_by("other"));
    assert_eq!((&back.conv, back.seq), (&m.conversation, 12));
    assert_eq!(
        back.sent_key(),
        SentKey {
            conversation: m.conversation.clone(),
            seq: 12,
            digest: Some(digest.clone())
        }
    );
    // Keys written before the mark existed read back without one.
    let mut unmarked = stored.clone();
    unmarked.remove("token");
    let unmarked: IdempotencyItem = from_item(unmarked).unwrap();
    assert!(!unmarked.written_by("5eed"));
    let lapses = t0() + KEY_WINDOW;
    assert!(key.holds_at(lapses - chrono::Duration::nanoseconds(1)));
    assert!(!key.holds_at(lapses), "lapses at the window's exact end");
    // A key stored before digests existed: it stands for any request in its conversation.
    let mut old = stored;
    old.remove("digest");
    let old: IdempotencyItem = from_item(old).unwrap();
    assert!(old.sent_key().is_same_request(&m.conversation, &digest));
    assert_eq!(old.sent_key().digest, None);

    let expiring = IdempotencyItem::new(&message(12, Some(t0())), &digest, "5eed");
    let stored = to_item(&expiring).unwrap();
    assert_eq!(stored["expires_at"], s("2026-11-29T05:45:39.120000000Z"));
    assert_eq!(
        stored["ttl"],
        AttributeValue::N((t0().timestamp() + 1).to_string())
    );
    let back: IdempotencyItem = from_item(stored).unwrap();
    assert_eq!(
        back.expires_at,
        Some(t0()),
        "to the nanosecond (the TTL only to the second)"
    );
    assert!(expiring.holds_at(t0() - chrono::Duration::nanoseconds(1)));
    assert!(!expiring.holds_at(t0()), "expired at its exact instant");
}

#[test]
fn the_head_and_the_continuation_marker_are_pinned() {
    let conv = ConversationId::new("dm:alice:bob").unwrap();
    let head = LogKey::head(&conv);
    assert_eq!(
        head.item().unwrap(),
        item([("pk", s("H#dm:alice:bob")), ("sk", n(0))])
    );
    let stored = item([
        ("pk", s("H#dm:alice:bob")),
        ("sk", n(0)),
        ("last_seq", n(41)),
    ]);
    let read: HeadItem = from_item(stored.clone()).unwrap();
    assert_eq!((read.pk.clone(), read.last_seq), (head.pk.clone(), 41));
    assert!(stored.contains_key(LAST_SEQ));
    assert_eq!(
        read.head(),
        messenger::domain::Head {
            last_seq: 41,
            chats: 0,
            last: None
        },
        "a head from before chat counts"
    );
    let with_preview = item([
        ("pk", s("H#dm:alice:bob")),
        ("sk", n(0)),
        ("last_seq", n(41)),
        ("chats", n(30)),
        (
            "last",
            s(
                r#"{"seq":40,"from":"alice","sent_at":"2026-11-29T05:45:39.120000000Z","text":"hi","edited":true}"#,
            ),
        ),
    ]);
    let read: HeadItem = from_item(with_preview).unwrap();
    let last = read.head().last.unwrap();
    assert_eq!(read.head().chats, 30);
    assert_eq!(
        (last.seq, last.text.as_deref(), last.edited, last.deleted),
        (40, Some("hi"), true, false)
    );
    assert_eq!(last.sent_at, t0());
    let back = serde_json::to_string(&PreviewItem::from(&last)).unwrap();
    assert_eq!(
        back,
        r#"{"seq":40,"from":"alice","sent_at":"2026-11-29T05:45:39.120000000Z","text":"hi","edited":true}"#
    );
    // Seq 20 opens bucket 2 of 10 seqs: its marker ends bucket 1, under seq 20.
    let marker = to_item(&MarkerItem::new(&conv, 20, 10)).unwrap();
    assert_eq!(
        marker,
        item([
            ("pk", s("M#dm:alice:bob#1")),
            ("sk", n(20)),
            ("continues", AttributeValue::Bool(true)),
        ])
    );
    assert!(marker.contains_key(CONTINUES));
    assert_eq!(
        LogKey::message(&conv, 20, 10),
        LogKey {
            pk: "M#dm:alice:bob#2".into(),
            sk: 20
        }
    );
}

#[test]
fn a_message_key_is_read_back_and_no_other_key_is() {
    let conv = ConversationId::new("dm:alice:bob").unwrap();
    for seq in [1, 9, 10, 17, 20] {
        let key = LogKey::message(&conv, seq, 10);
        assert_eq!(message_at(&key.pk, key.sk, 10), Some((conv.clone(), seq)));
    }
    let marker = MarkerItem::new(&conv, 20, 10);
    assert_eq!(message_at(&marker.pk, marker.sk, 10), None);
    let head = LogKey::head(&conv);
    let idem = LogKey::idempotency(
        &UserId::new("alice").unwrap(),
        &ClientMsgId::new("c-1").unwrap(),
    );
    for key in [head, idem] {
        assert_eq!(message_at(&key.pk, key.sk, 10), None);
    }
}
