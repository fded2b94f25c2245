//! The stored format of memberships and group metadata, pinned, and their items round-tripped.

use super::*;
use crate::dynamo::codec::tests::{item, t0};

fn conv() -> ConversationId {
    ConversationId::new("g:0123abcd").unwrap()
}

fn membership() -> Membership {
    Membership {
        conversation: conv(),
        user: UserId::new("bob").unwrap(),
        role: Role::Admin,
        joined_at: t0(),
        from_seq: 4,
        delivered: 7,
        read: 5,
        read_chats: 3,
        muted_until: Some(t0()),
        request: RequestState::Pending,
    }
}

#[test]
fn a_membership_round_trips_and_its_format_is_pinned() {
    let m = membership();
    let stored = to_item(&MembershipItem::from(&m)).unwrap();
    assert_eq!(
        stored,
        item([
            ("user", s("bob")),
            ("conv", s("g:0123abcd")),
            ("role", s("admin")),
            ("joined_at", s("2026-11-29T05:45:39.120000000Z")),
            ("from_seq", n(4)),
            ("delivered", n(7)),
            ("read", n(5)),
            ("read_chats", n(3)),
            ("muted_until", s("2026-11-29T05:45:39.120000000Z")),
            ("request", s("pending")),
        ])
    );
    for name in [
        USER,
        CONV,
        ROLE,
        DELIVERED,
        READ,
        READ_CHATS,
        MUTED_UNTIL,
        REQUEST,
    ]
    .into_iter()
    .chain(MEMBER_LIST)
    {
        assert!(stored.contains_key(name), "{name} is an attribute");
    }
    let back: MembershipItem = from_item(stored).unwrap();
    assert_eq!(Membership::from(back), m);
    let plain = Membership {
        role: Role::Member,
        request: RequestState::Accepted,
        ..m
    };
    let stored = to_item(&MembershipItem::from(&plain)).unwrap();
    assert_eq!(stored["role"], s("member"));
    // Accepted (every membership from before message requests) stores no attribute.
    assert!(!stored.contains_key(REQUEST));
    assert_eq!(
        Membership::from(from_item::<MembershipItem>(stored).unwrap()),
        plain
    );
}

#[test]
fn items_from_before_roles_read_as_members_from_seq_1() {
    let old = item([
        ("user", s("bob")),
        ("conv", s("dm:alice:bob")),
        ("joined_at", s("2026-11-29T05:45:39.120000000Z")),
        ("delivered", n(2)),
        ("read", n(1)),
    ]);
    let m = Membership::from(from_item::<MembershipItem>(old.clone()).unwrap());
    assert_eq!(
        (
            m.role,
            m.from_seq,
            m.delivered,
            m.read,
            m.read_chats,
            m.muted_until
        ),
        (Role::Member, 1, 2, 1, 0, None)
    );
    let member = Member::from(from_item::<MemberItem>(old).unwrap());
    assert_eq!((member.role, member.from_seq), (Role::Member, 1));
}

#[test]
fn the_member_list_reads_only_what_the_index_projects() {
    let m = membership();
    // What a Query of `by_conversation` returns: the table's and the index's keys, and
    // MEMBER_LIST.
    let mut projected = to_item(&MembershipItem::from(&m)).unwrap();
    projected.retain(|k, _| k == USER || k == CONV || MEMBER_LIST.contains(&k.as_str()));
    assert_eq!(projected.len(), 5);
    let member = Member::from(from_item::<MemberItem>(projected).unwrap());
    assert_eq!(member, Member::from(&m));
}

#[test]
fn group_metadata_round_trips_and_its_format_is_pinned() {
    let info = GroupInfo {
        conversation: conv(),
        name: "Climbing".into(),
        created_by: UserId::new("alice").unwrap(),
        created_at: t0(),
    };
    let stored = to_item(&GroupItem::from(&info)).unwrap();
    assert_eq!(
        stored,
        item([
            ("pk", s("G#g:0123abcd")),
            ("sk", n(0)),
            ("name", s("Climbing")),
            ("created_by", s("alice")),
            ("created_at", s("2026-11-29T05:45:39.120000000Z")),
        ])
    );
    assert_eq!(
        to_item(&group_key(&conv())).unwrap(),
        item([("pk", s("G#g:0123abcd")), ("sk", n(0))])
    );
    let back: GroupItem = from_item(stored).unwrap();
    assert_eq!(GroupInfo::try_from(back).unwrap(), info);
}

#[test]
fn a_membership_key_names_user_and_conversation() {
    let (user, conv) = (UserId::new("bob").unwrap(), conv());
    assert_eq!(
        to_item(&MembershipKey {
            user: &user,
            conv: &conv
        })
        .unwrap(),
        item([("user", s("bob")), ("conv", s("g:0123abcd"))])
    );
}
