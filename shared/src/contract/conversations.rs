//! Contract: Memberships: monotonic pointers, idempotent joins, roles, group metadata.

use super::*;

/// Pointers only move forward; `advance` says whether one moved; a non-member's never does.
/// Moving `read` records the chat count with it (and a read that does not move keeps it).
pub async fn monotonic_pointers(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, alice, stranger) = (conv(&t), user("alice", &t), user("stranger", &t));
    assert!(join(convs.as_ref(), &c, &alice, Utc::now()).await);
    let adv = |k, seq, chats| {
        let (convs, c, alice) = (convs.clone(), c.clone(), alice.clone());
        async move { convs.advance(&c, &alice, k, seq, chats).await.unwrap() }
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
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (7, 2, 2));
    // Everyone's pointers, as `receipts` shows them (the member list may lag: eventually).
    let bob = user("bob", &t);
    assert!(join(convs.as_ref(), &c, &bob, Utc::now()).await);
    let mut pointers = Vec::new();
    for _ in 0..50 {
        pointers = convs.pointers(&c).await.unwrap();
        if pointers.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pointers.sort_by(|a, b| a.user.cmp(&b.user));
    let got: Vec<_> = pointers
        .iter()
        .map(|m| (m.user.clone(), m.delivered, m.read))
        .collect();
    assert_eq!(got, vec![(alice.clone(), 7, 2), (bob, 0, 0)]);
    assert!(adv(ReceiptKind::Read, 6, 4).await);
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (7, 6, 4));
    // Sending reads: both pointers move to the sender's new message (never back).
    assert!(convs.read_through(&c, &alice, 9, 5).await.unwrap());
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (9, 9, 5));
    assert!(adv(ReceiptKind::Delivered, 11, 0).await);
    let moved = convs.read_through(&c, &alice, 10, 6).await.unwrap();
    assert!(moved, "read moves alone");
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read, m.read_chats), (11, 10, 6));
    assert!(!convs.read_through(&c, &alice, 10, 6).await.unwrap());
    assert!(!convs.read_through(&c, &stranger, 12, 6).await.unwrap());
    assert!(
        !convs
            .advance(&c, &stranger, ReceiptKind::Read, 9, 9)
            .await
            .unwrap()
    );
    assert_eq!(convs.membership(&c, &stranger).await.unwrap(), None);
}

/// Muting stores its end on the membership (also "forever"), unmuting removes it; a non-member
/// cannot mute. A join keeps its starting chat count; a second join changes nothing.
pub async fn mute_and_read_chats(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, alice, stranger) = (conv(&t), user("alice", &t), user("stranger", &t));
    let at = Utc::now();
    let m = Membership::new(&c, &alice, Role::Member, 5, at).with_read_chats(3);
    assert!(convs.join(&m).await.unwrap());
    let mine = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((mine.read_chats, mine.muted_until), (3, None));

    let until = at + Duration::hours(8);
    assert!(convs.set_muted(&c, &alice, Some(until)).await.unwrap());
    let mine = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!(mine.muted_until, Some(until));
    assert!(mine.muted_at(at) && !mine.muted_at(until));
    let forever = crate::domain::muted_forever();
    assert!(convs.set_muted(&c, &alice, Some(forever)).await.unwrap());
    let listed = convs.of_user(&alice).await.unwrap();
    assert_eq!(listed[0].muted_until, Some(forever));
    assert!(!convs.join(&m.clone().with_read_chats(0)).await.unwrap());
    assert!(convs.set_muted(&c, &alice, None).await.unwrap());
    let mine = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((mine.muted_until, mine.read_chats), (None, 3));

    assert!(!convs.set_muted(&c, &stranger, Some(until)).await.unwrap());
    assert_eq!(convs.membership(&c, &stranger).await.unwrap(), None);
}

/// Joining twice keeps the first join and the pointers; the membership is visible from both
/// sides (the user's conversations, the conversation's members).
pub async fn join_is_idempotent(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, c2, alice, bob) = (
        conv(&t),
        conv(&format!("{t}-2")),
        user("a", &t),
        user("b", &t),
    );
    let t1 = Utc::now();
    assert!(join(convs.as_ref(), &c, &alice, t1).await);
    convs
        .advance(&c, &alice, ReceiptKind::Delivered, 4, 0)
        .await
        .unwrap();
    assert!(!join(convs.as_ref(), &c, &alice, t1 + Duration::seconds(5)).await);
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.joined_at, m.delivered, m.read), (t1, 4, 0));
    assert_eq!((&m.conversation, &m.user), (&c, &alice));
    assert!(join(convs.as_ref(), &c, &bob, t1).await);
    assert!(join(convs.as_ref(), &c2, &alice, t1).await);
    let members: Vec<UserId> = convs
        .members(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user)
        .collect();
    assert_eq!(members, vec![alice.clone(), bob.clone()]);
    let mine: Vec<_> = convs
        .of_user(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.conversation)
        .collect();
    assert_eq!(mine, vec![c.clone(), c2.clone()], "sorted by conversation");
    assert_eq!(convs.membership(&c2, &bob).await.unwrap(), None);
}

/// Roles and join points are kept; `set_role` and `leave` say whether they found a member; a
/// member who left is gone from both views.
pub async fn roles_and_leaving(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, alice, bob) = (conv(&t), user("a", &t), user("b", &t));
    let at = Utc::now();
    assert!(
        convs
            .join(&Membership::new(&c, &alice, Role::Admin, 1, at))
            .await
            .unwrap()
    );
    assert!(
        convs
            .join(&Membership::new(&c, &bob, Role::Member, 7, at))
            .await
            .unwrap()
    );
    assert!(
        !convs
            .join(&Membership::new(&c, &bob, Role::Admin, 9, at))
            .await
            .unwrap(),
        "already in"
    );
    let members = convs.members(&c).await.unwrap();
    let seen: Vec<(UserId, Role, Seq)> = members
        .iter()
        .map(|m| (m.user.clone(), m.role, m.from_seq))
        .collect();
    assert_eq!(
        seen,
        vec![
            (alice.clone(), Role::Admin, 1),
            (bob.clone(), Role::Member, 7)
        ]
    );
    assert_eq!(members[1].joined_at, at);

    assert!(convs.set_role(&c, &bob, Role::Admin).await.unwrap());
    assert_eq!(
        convs.membership(&c, &bob).await.unwrap().unwrap().role,
        Role::Admin
    );
    assert!(convs.leave(&c, &alice).await.unwrap());
    assert!(!convs.leave(&c, &alice).await.unwrap(), "already gone");
    assert!(
        !convs.set_role(&c, &alice, Role::Admin).await.unwrap(),
        "not a member"
    );
    assert_eq!(convs.membership(&c, &alice).await.unwrap(), None);
    assert!(convs.of_user(&alice).await.unwrap().is_empty());
    let users: Vec<UserId> = convs
        .members(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user)
        .collect();
    assert_eq!(users, vec![bob]);
}

/// Group metadata is stored, replaced on rename, and read for the groups that have it.
pub async fn group_metadata(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, other, alice) = (conv(&t), conv(&format!("{t}-x")), user("a", &t));
    let info = GroupInfo {
        conversation: c.clone(),
        name: "Trip".into(),
        created_by: alice,
        created_at: Utc::now(),
    };
    convs.put_group(&info).await.unwrap();
    let renamed = GroupInfo {
        name: "Lisbon trip".into(),
        ..info.clone()
    };
    convs.put_group(&renamed).await.unwrap();
    let found = convs.groups(&[c.clone(), other]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[&c], renamed);
}
