//! Contract: Memberships change only with their event (atomically), pointers are monotonic,
//! group reads are consistent, group metadata.

use super::*;

fn users(members: Vec<crate::domain::Member>) -> Vec<(UserId, Role, Seq)> {
    members
        .into_iter()
        .map(|m| (m.user, m.role, m.from_seq))
        .collect()
}

async fn head(log: &dyn MessageLog, c: &ConversationId) -> Seq {
    log.last_seqs(std::slice::from_ref(c)).await.unwrap()[c]
}

/// Pointers only move forward; `advance` says whether one moved; a non-member's never does.
/// Moving `read` records the chat count with it (and a read that does not move keeps it).
pub async fn monotonic_pointers<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, stranger) = (
        conv(&t),
        user("alice", &t),
        user("bob", &t),
        user("stranger", &t),
    );
    create(
        store.as_ref(),
        &c,
        &[(&alice, Role::Admin), (&bob, Role::Member)],
    )
    .await;
    let adv = |k, seq, chats| {
        let (store, c, alice) = (store.clone(), c.clone(), alice.clone());
        async move { store.advance(&c, &alice, k, seq, chats).await.unwrap() }
    };
    assert!(adv(ReceiptKind::Delivered, 5, 0).await);
    assert!(!adv(ReceiptKind::Delivered, 3, 0).await, "never backwards");
    assert!(
        !adv(ReceiptKind::Delivered, 5, 0).await,
        "not to where it is"
    );
    assert!(adv(ReceiptKind::Delivered, 7, 0).await);
    assert!(adv(ReceiptKind::Read, 2, 2).await);
    assert!(!adv(ReceiptKind::Read, 1, 1).await);
    let m = store.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (7, 2, 2));
    // Everyone's pointers, as `receipts` shows them.
    let mut pointers = store.pointers(&c).await.unwrap();
    pointers.sort_by(|a, b| a.user.cmp(&b.user));
    let got: Vec<_> = pointers
        .iter()
        .map(|m| (m.user.clone(), m.delivered, m.read))
        .collect();
    assert_eq!(got, vec![(alice.clone(), 7, 2), (bob, 0, 0)]);
    assert!(adv(ReceiptKind::Read, 6, 4).await);
    let m = store.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (7, 6, 4));
    // Sending reads: both pointers move to the sender's new message (never back).
    assert!(store.read_through(&c, &alice, 9, 5).await.unwrap());
    let m = store.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (9, 9, 5));
    assert!(adv(ReceiptKind::Delivered, 11, 0).await);
    let moved = store.read_through(&c, &alice, 10, 6).await.unwrap();
    assert!(moved, "read moves alone");
    let m = store.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (11, 10, 6));
    assert!(!store.read_through(&c, &alice, 10, 6).await.unwrap());
    assert!(!store.read_through(&c, &stranger, 12, 6).await.unwrap());
    assert!(
        !store
            .advance(&c, &stranger, ReceiptKind::Read, 9, 9)
            .await
            .unwrap()
    );
    assert_eq!(store.membership(&c, &stranger).await.unwrap(), None);
}

/// Muting stores its end on the membership (also "forever"), unmuting removes it; a non-member
/// cannot mute. A member added to a group starts with the log's chat count (nothing unread).
pub async fn mute_and_read_chats<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, stranger) = (
        conv(&t),
        user("alice", &t),
        user("bob", &t),
        user("stranger", &t),
    );
    create(store.as_ref(), &c, &[(&alice, Role::Admin)]).await;
    for i in 0..3 {
        let m = new_message(&c, &alice, &format!("m{i}-{t}"), Utc::now(), None);
        append(store.as_ref(), m).await;
    }
    let add = GroupChange {
        join: vec![(bob.clone(), Role::Member)],
        require: vec![(alice.clone(), Some(Role::Admin))],
        ..GroupChange::default()
    };
    let event = LogEvent::MembersAdded {
        users: vec![bob.clone()],
    };
    let added = appended(change(store.as_ref(), &c, &alice, event, add).await);
    assert_eq!(added.chats, 3, "the event is not a chat message");
    let bobs = store.membership(&c, &bob).await.unwrap().unwrap();
    assert_eq!((bobs.read_chats, bobs.muted_until), (3, None));

    let at = Utc::now();
    let until = at + Duration::hours(8);
    assert!(store.set_muted(&c, &bob, Some(until)).await.unwrap());
    let mine = store.membership(&c, &bob).await.unwrap().unwrap();
    assert_eq!(mine.muted_until, Some(until));
    assert!(mine.muted_at(at) && !mine.muted_at(until));
    let forever = crate::domain::muted_forever();
    assert!(store.set_muted(&c, &bob, Some(forever)).await.unwrap());
    let listed = store.of_user(&bob).await.unwrap();
    assert_eq!(listed[0].muted_until, Some(forever));
    assert!(store.set_muted(&c, &bob, None).await.unwrap());
    let mine = store.membership(&c, &bob).await.unwrap().unwrap();
    assert_eq!((mine.muted_until, mine.read_chats), (None, 3));

    assert!(!store.set_muted(&c, &stranger, Some(until)).await.unwrap());
    assert_eq!(store.membership(&c, &stranger).await.unwrap(), None);
}

/// A group's creation, additions, removals, promotions and renames take effect with their
/// event: members read from the event that added them, both views (the user's conversations,
/// the group's members) agree at once, and a 1:1 conversation's first message makes its two
/// members (a later one keeps their pointers).
pub async fn memberships_change_with_their_event<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, carol) = (conv(&t), user("a", &t), user("b", &t), user("c", &t));
    let created = create(
        store.as_ref(),
        &c,
        &[(&alice, Role::Admin), (&bob, Role::Member)],
    )
    .await;
    assert_eq!(created.seq, 1);
    assert_eq!(
        users(store.members(&c).await.unwrap()),
        vec![
            (alice.clone(), Role::Admin, 1),
            (bob.clone(), Role::Member, 1)
        ]
    );
    let info = &store.groups(std::slice::from_ref(&c)).await.unwrap()[&c];
    assert_eq!((info.name.as_str(), &info.created_by), ("Group", &alice));
    append(
        store.as_ref(),
        new_message(&c, &bob, "hello", Utc::now(), None),
    )
    .await;

    let add = GroupChange {
        join: vec![(carol.clone(), Role::Member)],
        require: vec![(alice.clone(), Some(Role::Admin))],
        ..GroupChange::default()
    };
    let event = LogEvent::MembersAdded {
        users: vec![carol.clone()],
    };
    let added = stored(change(store.as_ref(), &c, &alice, event, add).await);
    assert_eq!(added.seq, 3);
    let carols = store.membership(&c, &carol).await.unwrap().unwrap();
    assert_eq!((carols.role, carols.from_seq), (Role::Member, 3));
    let mine: Vec<_> = store
        .of_user(&carol)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.conversation)
        .collect();
    assert_eq!(mine, vec![c.clone()]);

    // Alice leaves, the last admin: bob is promoted in the same write.
    let leave = GroupChange {
        leave: vec![alice.clone()],
        promote: vec![bob.clone()],
        ..GroupChange::default()
    };
    let event = LogEvent::MemberLeft {
        promoted: vec![bob.clone()],
    };
    stored(change(store.as_ref(), &c, &alice, event, leave).await);
    assert_eq!(
        users(store.members(&c).await.unwrap()),
        vec![
            (bob.clone(), Role::Admin, 1),
            (carol.clone(), Role::Member, 3)
        ]
    );
    assert_eq!(store.membership(&c, &alice).await.unwrap(), None);
    assert!(store.of_user(&alice).await.unwrap().is_empty());
    assert_eq!(
        store.membership(&c, &bob).await.unwrap().unwrap().role,
        Role::Admin
    );
    let rename = GroupChange {
        rename: Some("Renamed".into()),
        require: vec![(carol.clone(), None)],
        ..GroupChange::default()
    };
    let event = LogEvent::GroupRenamed {
        name: "Renamed".into(),
    };
    stored(change(store.as_ref(), &c, &carol, event, rename).await);
    assert_eq!(
        store.groups(std::slice::from_ref(&c)).await.unwrap()[&c].name,
        "Renamed"
    );

    // 1:1: the first message makes both members; another first-message effect keeps pointers.
    let dm = direct(store.as_ref(), &alice, &bob).await;
    store
        .advance(&dm, &bob, ReceiptKind::Delivered, 1, 0)
        .await
        .unwrap();
    direct(store.as_ref(), &bob, &alice).await;
    let bobs = store.membership(&dm, &bob).await.unwrap().unwrap();
    assert_eq!((bobs.from_seq, bobs.delivered), (1, 1));
    assert_eq!(
        users(store.members(&dm).await.unwrap()),
        vec![(alice.clone(), Role::Member, 1), (bob, Role::Member, 1)]
    );
}

/// A change whose conditions do not hold stores nothing and changes nothing: the caller is not
/// (or no longer) an admin or a member, a joining user already is one, a leaving one is not, the
/// group would be too big, a joining user is in too many groups, or the group exists already.
pub async fn refused_changes_store_nothing<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, carol) = (conv(&t), user("a", &t), user("b", &t), user("c", &t));
    create(
        store.as_ref(),
        &c,
        &[(&alice, Role::Admin), (&bob, Role::Member)],
    )
    .await;
    let before = users(store.members(&c).await.unwrap());
    let added = |u: &UserId| LogEvent::MembersAdded {
        users: vec![u.clone()],
    };
    let refusals = [
        // bob is no admin
        GroupChange {
            join: vec![(carol.clone(), Role::Member)],
            require: vec![(bob.clone(), Some(Role::Admin))],
            ..GroupChange::default()
        },
        // carol is no member
        GroupChange {
            rename: Some("x".into()),
            require: vec![(carol.clone(), None)],
            ..GroupChange::default()
        },
        // bob is a member already
        GroupChange {
            join: vec![(bob.clone(), Role::Member)],
            ..GroupChange::default()
        },
        // carol is not a member
        GroupChange {
            leave: vec![carol.clone()],
            ..GroupChange::default()
        },
        GroupChange {
            promote: vec![carol.clone()],
            ..GroupChange::default()
        },
        // at most 2 members
        GroupChange {
            join: vec![(carol.clone(), Role::Member)],
            max_members: 2,
            ..GroupChange::default()
        },
    ];
    for refused in refusals {
        let got = change(store.as_ref(), &c, &alice, added(&carol), refused.clone()).await;
        assert_eq!(
            got,
            Append::Refused(GroupRefusal::GroupChanged),
            "{refused:?}"
        );
    }
    // carol is in one group already, the most allowed.
    let other = conv(&format!("{t}-other"));
    create(store.as_ref(), &other, &[(&carol, Role::Admin)]).await;
    let join = GroupChange {
        join: vec![(carol.clone(), Role::Member)],
        max_groups_per_user: 1,
        ..GroupChange::default()
    };
    assert_eq!(
        change(store.as_ref(), &c, &alice, added(&carol), join).await,
        Append::Refused(GroupRefusal::TooManyGroups(carol.clone()))
    );
    let again = GroupChange {
        create: Some(GroupInfo {
            conversation: c.clone(),
            name: "Again".into(),
            created_by: carol.clone(),
            created_at: Utc::now(),
        }),
        join: vec![(carol.clone(), Role::Admin)],
        ..GroupChange::default()
    };
    let event = LogEvent::GroupCreated {
        name: "Again".into(),
        members: vec![carol.clone()],
    };
    assert_eq!(
        change(store.as_ref(), &c, &carol, event, again).await,
        Append::Refused(GroupRefusal::GroupExists)
    );
    assert_eq!(head(store.as_ref(), &c).await, 1, "nothing stored");
    assert_eq!(users(store.members(&c).await.unwrap()), before);
    assert_eq!(store.membership(&c, &carol).await.unwrap(), None);
    assert_eq!(
        store.groups(std::slice::from_ref(&c)).await.unwrap()[&c].name,
        "Group"
    );
}

/// The last two admins leaving at the same moment, each counting on the other to stay: one
/// leaves, the other's write is refused (and would promote someone when decided again).
pub async fn two_last_admins_leaving_at_once_keep_one<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, carol) = (conv(&t), user("a", &t), user("b", &t), user("c", &t));
    create(
        store.as_ref(),
        &c,
        &[
            (&alice, Role::Admin),
            (&bob, Role::Admin),
            (&carol, Role::Member),
        ],
    )
    .await;
    let leave = |me: &UserId, other: &UserId| {
        let (store, c, me) = (store.clone(), c.clone(), me.clone());
        let change_ = GroupChange {
            leave: vec![me.clone()],
            require: vec![(other.clone(), Some(Role::Admin))],
            ..GroupChange::default()
        };
        tokio::spawn(async move {
            let event = LogEvent::MemberLeft { promoted: vec![] };
            change(store.as_ref(), &c, &me, event, change_).await
        })
    };
    let (a, b) = (leave(&alice, &bob), leave(&bob, &alice));
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    let left = outcomes
        .iter()
        .filter(|o| matches!(o, Append::Stored(_)))
        .count();
    assert_eq!(left, 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&Append::Refused(GroupRefusal::GroupChanged)),
        "{outcomes:?}"
    );
    let admins = store
        .members(&c)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::Admin)
        .count();
    assert_eq!(admins, 1);
}

/// A group change's first read: the group's metadata and members, the head, what the caller's
/// key stored, and how many groups the named users are in.
pub async fn reads_for_a_group_change_in_one_go<S>(store: Arc<S>)
where
    S: WriteReads + Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, alice, bob, carol) = (conv(&t), user("a", &t), user("b", &t), user("c", &t));
    let now = Utc::now();
    let cmid = ClientMsgId::new("g-1").unwrap();
    let counted = [bob.clone(), carol.clone()];
    let keys = GroupKeys {
        conversation: &c,
        user: &alice,
        client_msg_id: Some(&cmid),
        counts_of: &counted,
    };
    let empty = store.read_for_group(keys, now).await.unwrap();
    assert_eq!(
        (empty.info, empty.members, empty.last_seq),
        (None, vec![], 0)
    );
    assert_eq!(empty.sent, None);
    assert_eq!((empty.groups_of[&bob], empty.groups_of[&carol]), (0, 0));

    // Created with alice's key g-1.
    let mut m = new_message(&c, &alice, "g-1", now, None);
    m.body = String::new();
    m.digest = RequestDigest::of("create_group", &c, &["Group"]);
    m.event = Some(LogEvent::GroupCreated {
        name: "Group".into(),
        members: vec![alice.clone(), bob.clone()],
    });
    let effects = Effects {
        group: Some(GroupChange {
            create: Some(GroupInfo {
                conversation: c.clone(),
                name: "Group".into(),
                created_by: alice.clone(),
                created_at: now,
            }),
            join: vec![(alice.clone(), Role::Admin), (bob.clone(), Role::Member)],
            ..GroupChange::default()
        }),
        ..Effects::default()
    };
    let digest = m.digest.clone();
    stored(store.append_with(m, &effects, None).await.unwrap());
    let ctx = store.read_for_group(keys, now).await.unwrap();
    assert_eq!(ctx.info.map(|i| i.name), Some("Group".into()));
    assert_eq!(
        users(ctx.members),
        vec![
            (alice.clone(), Role::Admin, 1),
            (bob.clone(), Role::Member, 1)
        ]
    );
    assert_eq!(ctx.last_seq, 1);
    let sent = ctx.sent.expect("the key");
    assert_eq!(sent.seq, 1);
    assert!(sent.is_same_request(&c, &digest));
    assert_eq!((ctx.groups_of[&bob], ctx.groups_of[&carol]), (1, 0));
}

/// Group metadata is created with the group, renamed with its event, and read for the groups
/// that have it.
pub async fn group_metadata<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + 'static,
{
    let t = tag();
    let (c, other, alice) = (conv(&t), conv(&format!("{t}-x")), user("a", &t));
    create(store.as_ref(), &c, &[(&alice, Role::Admin)]).await;
    let rename = GroupChange {
        rename: Some("Lisbon trip".into()),
        ..GroupChange::default()
    };
    let event = LogEvent::GroupRenamed {
        name: "Lisbon trip".into(),
    };
    stored(change(store.as_ref(), &c, &alice, event, rename).await);
    let found = store.groups(&[c.clone(), other]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[&c].name, "Lisbon trip");
    assert_eq!(found[&c].created_by, alice);
}

/// A 1:1's first message gives its two memberships their request standing (kept by a later
/// first-message effect), a reply's `accept` effect and `set_request` change them (both or
/// neither), a group change marks its requests, and a group change's first read says who has
/// the caller as a contact.
pub async fn message_request_standings<S>(store: Arc<S>)
where
    S: Conversations + MessageLog + WriteReads + 'static,
{
    use crate::domain::RequestState::{Accepted, Awaiting, Declined, Pending, Refused};
    let t = tag();
    let (alice, bob, carol) = (user("a", &t), user("b", &t), user("c", &t));
    let dm = ConversationId::direct(&alice, &bob);
    let now = Utc::now();
    let standing = async |c: &ConversationId, u: &UserId| {
        store.membership(c, u).await.unwrap().map(|m| m.request)
    };
    let first = Effects {
        direct: vec![(alice.clone(), Awaiting), (bob.clone(), Pending)],
        ..Effects::default()
    };
    let m = new_message(&dm, &alice, &format!("r1-{t}"), now, None);
    stored(store.append_with(m, &first, None).await.unwrap());
    assert_eq!(standing(&dm, &alice).await, Some(Awaiting));
    assert_eq!(standing(&dm, &bob).await, Some(Pending));
    // A crossing first message keeps what the first one set.
    let crossing = Effects {
        direct: vec![(bob.clone(), Awaiting), (alice.clone(), Pending)],
        ..Effects::default()
    };
    let m = new_message(&dm, &bob, &format!("r2-{t}"), now, None);
    stored(store.append_with(m, &crossing, None).await.unwrap());
    assert_eq!(standing(&dm, &bob).await, Some(Pending));

    // Decline sets both; with a member missing, neither.
    assert!(
        store
            .set_request(&dm, &bob, Declined, Some((&alice, Refused)))
            .await
            .unwrap()
    );
    assert_eq!(
        (standing(&dm, &bob).await, standing(&dm, &alice).await),
        (Some(Declined), Some(Refused))
    );
    assert!(
        !store
            .set_request(&dm, &bob, Accepted, Some((&carol, Accepted)))
            .await
            .unwrap()
    );
    assert_eq!(standing(&dm, &bob).await, Some(Declined));
    let nobody = ConversationId::direct(&alice, &carol);
    assert!(
        !store
            .set_request(&nobody, &alice, Accepted, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.membership(&nobody, &alice).await.unwrap(),
        None,
        "no item made"
    );

    // Bob's contacts, as a group change by alice reads them: not while he declined her.
    let counted = [bob.clone(), carol.clone()];
    let g = conv(&t);
    let keys = GroupKeys {
        conversation: &g,
        user: &alice,
        client_msg_id: None,
        counts_of: &counted,
    };
    assert!(
        store
            .read_for_group(keys, now)
            .await
            .unwrap()
            .contacts
            .is_empty()
    );
    // A reply accepts both, with its message.
    let reply = Effects {
        accept: vec![bob.clone(), alice.clone()],
        ..Effects::default()
    };
    let m = new_message(&dm, &bob, &format!("r3-{t}"), now, None);
    stored(store.append_with(m, &reply, None).await.unwrap());
    assert_eq!(
        (standing(&dm, &bob).await, standing(&dm, &alice).await),
        (Some(Accepted), Some(Accepted))
    );
    let ctx = store.read_for_group(keys, now).await.unwrap();
    assert_eq!(ctx.contacts, HashSet::from([bob.clone()]));

    // A group change marks its requests; the rest join accepted.
    let effects = Effects {
        group: Some(GroupChange {
            create: Some(GroupInfo {
                conversation: g.clone(),
                name: "G".into(),
                created_by: alice.clone(),
                created_at: now,
            }),
            join: vec![
                (alice.clone(), Role::Admin),
                (bob.clone(), Role::Member),
                (carol.clone(), Role::Member),
            ],
            requests: vec![carol.clone()],
            ..GroupChange::default()
        }),
        ..Effects::default()
    };
    let mut m = new_message(&g, &alice, &format!("g-{t}"), now, None);
    m.body = String::new();
    m.event = Some(LogEvent::GroupCreated {
        name: "G".into(),
        members: vec![alice.clone(), bob.clone(), carol.clone()],
    });
    stored(store.append_with(m, &effects, None).await.unwrap());
    assert_eq!(standing(&g, &bob).await, Some(Accepted));
    assert_eq!(standing(&g, &carol).await, Some(Pending));
    let mine = store.of_user(&carol).await.unwrap();
    assert_eq!(
        mine.iter().map(|m| m.request).collect::<Vec<_>>(),
        [Pending]
    );
}
