//! Port contract suite: one set of tests every storage adapter must pass, so the embedded mode
//! (in memory) cannot drift from production (DynamoDB). Each function takes the port objects,
//! uses fresh random ids (so many can share one store) and panics on a broken property.
//! [`contract_tests!`](crate::contract_tests) turns the whole suite into `#[tokio::test]`s.

use crate::domain::{
    ClientMsgId, Connection, ConnectionId, ConversationId, DeviceId, GroupEvent, GroupInfo,
    Membership, Message, NewMessage, ReceiptKind, Role, Seq, UserId,
};
use crate::ports::{Appended, Connections, Conversations, LastSeen, MessageLog, PushDevices};
use crate::push::{Platform, PushClaim, PushDevice};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// A random tag that makes this call's ids unique in a shared store.
pub fn tag() -> String {
    format!("{:012x}", getrandom::u64().expect("OS randomness") >> 16)
}

fn user(name: &str, tag: &str) -> UserId {
    UserId::new(format!("{name}-{tag}")).unwrap()
}

fn conv(tag: &str) -> ConversationId {
    ConversationId::new(format!("g:{tag}")).unwrap()
}

fn new_message(
    conv: &ConversationId,
    from: &UserId,
    cmid: &str,
    sent_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> NewMessage {
    NewMessage {
        conversation: conv.clone(),
        from: from.clone(),
        client_msg_id: ClientMsgId::new(cmid).unwrap(),
        body: format!("body of {cmid}"),
        event: None,
        sent_at,
        expires_at,
    }
}

/// Joins as a plain member reading from seq 1; `false` when already a member.
async fn join(
    convs: &dyn Conversations,
    c: &ConversationId,
    u: &UserId,
    at: DateTime<Utc>,
) -> bool {
    convs
        .join(&Membership::new(c, u, Role::Member, 1, at))
        .await
        .unwrap()
}

async fn append(log: &dyn MessageLog, m: NewMessage) -> Appended {
    log.append(m).await.expect("append")
}

async fn whole_log(log: &dyn MessageLog, conv: &ConversationId) -> Vec<Message> {
    log.after(conv, 0, 100_000, Utc::now())
        .await
        .expect("read the log")
}

fn seqs(ms: &[Message]) -> Vec<Seq> {
    ms.iter().map(|m| m.seq).collect()
}

/// The log holds exactly seqs 1..=head, each once, and the head agrees.
async fn assert_gapless(log: &dyn MessageLog, conv: &ConversationId) -> Vec<Message> {
    let all = whole_log(log, conv).await;
    let head = log.last_seqs(std::slice::from_ref(conv)).await.unwrap()[conv];
    assert_eq!(
        seqs(&all),
        (1..=head).collect::<Vec<_>>(),
        "the log must hold exactly seqs 1..={head}"
    );
    let keys: HashSet<_> = all.iter().map(|m| (&m.from, &m.client_msg_id)).collect();
    assert_eq!(
        keys.len(),
        all.len(),
        "a (sender, client_msg_id) was stored twice"
    );
    all
}

/// 8 tasks × 25 concurrent appends to one conversation get 200 distinct seqs, exactly 1..=200,
/// and the log reads back in that order with each message where its append said.
pub async fn gapless_concurrent_appends(log: Arc<dyn MessageLog>) {
    let t = tag();
    let c = conv(&t);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (log, c, from) = (log.clone(), c.clone(), user(&format!("u{task}"), &t));
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                let m = new_message(&c, &from, &format!("m{task}-{i}"), Utc::now(), None);
                let a = append(log.as_ref(), m).await;
                assert!(!a.duplicate);
                got.push((a.message.seq, a.message.client_msg_id));
            }
            got
        }));
    }
    let mut assigned = BTreeMap::new();
    for task in tasks {
        for (seq, cmid) in task.await.unwrap() {
            assert!(
                assigned.insert(seq, cmid).is_none(),
                "seq {seq} assigned twice"
            );
        }
    }
    assert_eq!(
        assigned.keys().copied().collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    let all = assert_gapless(log.as_ref(), &c).await;
    for m in &all {
        assert_eq!(assigned[&m.seq], m.client_msg_id, "seq {} mismatch", m.seq);
    }
}

/// What [`cancelled_appenders_leave_no_hole`] did, so an adapter's test can check the
/// cancellations really hit in-flight appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelStats {
    /// Appends dropped (timeout) or aborted (task abort) before they finished.
    pub cancelled: usize,
    /// Appends that finished.
    pub completed: usize,
    /// Cancelled appends whose write had landed anyway (their retry was a duplicate).
    pub landed_anyway: usize,
}

/// Appenders cancelled at random points (the future dropped by a timeout, or the task aborted)
/// while others append: whatever landed, the log has no hole and no duplicate, and retrying
/// every cancelled send stores each exactly once.
pub async fn cancelled_appenders_leave_no_hole(log: Arc<dyn MessageLog>) -> CancelStats {
    let t = tag();
    let c = conv(&t);
    let from = user("sender", &t);
    let mut cancelled_ids = Vec::new();
    let mut completed = 0;
    // Steady senders keep the head moving while the others are cut off.
    let steady: Vec<_> = (0..2)
        .map(|k| {
            let (log, c, from) = (log.clone(), c.clone(), from.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    let m = new_message(&c, &from, &format!("steady{k}-{i}"), Utc::now(), None);
                    append(log.as_ref(), m).await;
                }
            })
        })
        .collect();
    for i in 0..30 {
        let cmid = format!("cut-{i}");
        let m = new_message(&c, &from, &cmid, Utc::now(), None);
        let cut = std::time::Duration::from_micros(getrandom::u64().unwrap() % 20_000);
        let finished = if i % 2 == 0 {
            tokio::time::timeout(cut, log.append(m)).await.is_ok()
        } else {
            let log = log.clone();
            let task = tokio::spawn(async move { log.append(m).await });
            tokio::time::sleep(cut).await;
            task.abort();
            matches!(task.await, Ok(Ok(_)))
        };
        if finished {
            completed += 1;
        } else {
            cancelled_ids.push(cmid);
        }
    }
    for s in steady {
        s.await.unwrap();
    }
    assert_gapless(log.as_ref(), &c).await;
    let mut landed_anyway = 0;
    for cmid in &cancelled_ids {
        let m = new_message(&c, &from, cmid, Utc::now(), None);
        landed_anyway += usize::from(append(log.as_ref(), m).await.duplicate);
    }
    let all = assert_gapless(log.as_ref(), &c).await;
    assert_eq!(all.len(), 20 + 30, "every send is stored exactly once");
    CancelStats {
        cancelled: cancelled_ids.len(),
        completed,
        landed_anyway,
    }
}

/// A retry with the same `(sender, client_msg_id)` returns the original (even with another
/// body, even in another conversation) and stores nothing; concurrent retries store once;
/// another sender may reuse the id.
pub async fn idempotent_append(log: Arc<dyn MessageLog>) {
    let t = tag();
    let (c, other_conv) = (conv(&t), conv(&format!("{t}-b")));
    let (alice, bob) = (user("alice", &t), user("bob", &t));
    let first = append(
        log.as_ref(),
        new_message(&c, &alice, "c-1", Utc::now(), None),
    )
    .await;
    assert!(!first.duplicate);
    let mut retry = new_message(&c, &alice, "c-1", Utc::now(), None);
    retry.body = "a different body".into();
    let again = append(log.as_ref(), retry).await;
    assert!(again.duplicate);
    assert_eq!(again.message, first.message, "the original comes back");
    let elsewhere = append(
        log.as_ref(),
        new_message(&other_conv, &alice, "c-1", Utc::now(), None),
    )
    .await;
    assert!(elsewhere.duplicate);
    assert_eq!(elsewhere.message, first.message);
    let heads = log
        .last_seqs(&[c.clone(), other_conv.clone()])
        .await
        .unwrap();
    assert_eq!((heads[&c], heads[&other_conv]), (1, 0));
    let by_bob = append(log.as_ref(), new_message(&c, &bob, "c-1", Utc::now(), None)).await;
    assert!(!by_bob.duplicate);
    assert_eq!(by_bob.message.seq, 2);

    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (log, c, alice) = (log.clone(), c.clone(), alice.clone());
            tokio::spawn(async move {
                append(
                    log.as_ref(),
                    new_message(&c, &alice, "c-race", Utc::now(), None),
                )
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await.unwrap());
    }
    assert_eq!(results.iter().filter(|a| !a.duplicate).count(), 1);
    assert!(results.iter().all(|a| a.message.seq == 3));
    assert_eq!(assert_gapless(log.as_ref(), &c).await.len(), 3);
}

/// Pointers only move forward; `advance` says whether one moved; a non-member's never does.
pub async fn monotonic_pointers(convs: Arc<dyn Conversations>) {
    let t = tag();
    let (c, alice, stranger) = (conv(&t), user("alice", &t), user("stranger", &t));
    assert!(join(convs.as_ref(), &c, &alice, Utc::now()).await);
    let adv = |k, seq| {
        let (convs, c, alice) = (convs.clone(), c.clone(), alice.clone());
        async move { convs.advance(&c, &alice, k, seq).await.unwrap() }
    };
    assert!(adv(ReceiptKind::Delivered, 5).await);
    assert!(!adv(ReceiptKind::Delivered, 3).await, "never backwards");
    assert!(!adv(ReceiptKind::Delivered, 5).await, "not to where it is");
    assert!(adv(ReceiptKind::Delivered, 7).await);
    assert!(adv(ReceiptKind::Read, 2).await);
    let m = convs.membership(&c, &alice).await.unwrap().unwrap();
    assert_eq!((m.delivered, m.read), (7, 2));
    assert!(
        !convs
            .advance(&c, &stranger, ReceiptKind::Read, 9)
            .await
            .unwrap()
    );
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
        .advance(&c, &alice, ReceiptKind::Delivered, 4)
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

/// `of_users` returns the live connections of exactly the given users; expired ones are
/// filtered; `put` overwrites by id; `remove` deletes exactly one and tolerates absent ones.
pub async fn connections_of_users(conns: Arc<dyn Connections>) {
    let t = tag();
    let now = Utc::now();
    let (alice, bob, carol) = (user("alice", &t), user("bob", &t), user("carol", &t));
    let conn = |u: &UserId, id: &str, expires_in: i64| Connection {
        id: ConnectionId::new(format!("{id}-{t}")).unwrap(),
        user: u.clone(),
        device: DeviceId::new(format!("dev-{id}")).unwrap(),
        connected_at: now - Duration::minutes(1),
        expires_at: now + Duration::seconds(expires_in),
    };
    let a1 = conn(&alice, "a1", 3600);
    let a_old = conn(&alice, "a0", -1);
    let b1 = conn(&bob, "b1", 3600);
    let c1 = conn(&carol, "c1", 3600);
    for c in [&a1, &a_old, &b1, &c1] {
        conns.put(c).await.unwrap();
    }
    let got: BTreeMap<_, _> = conns
        .of_users(&[alice.clone(), bob.clone()], now)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let want: BTreeMap<_, _> = [&a1, &b1].map(|c| (c.id.clone(), c.clone())).into();
    assert_eq!(got, want, "live connections of alice and bob, nothing else");
    let mut moved = a1.clone();
    moved.device = DeviceId::new("tablet").unwrap();
    conns.put(&moved).await.unwrap();
    conns.remove(&bob, &b1.id).await.unwrap();
    conns.remove(&bob, &b1.id).await.unwrap();
    let got = conns
        .of_users(&[alice.clone(), bob.clone()], now)
        .await
        .unwrap();
    assert_eq!(got, vec![moved]);
    assert_eq!(
        conns
            .of_users(std::slice::from_ref(&carol), now + Duration::hours(2))
            .await
            .unwrap(),
        vec![],
        "expired by then"
    );
}

/// Appends `n` messages to a new conversation and returns it.
async fn filled(
    log: &dyn MessageLog,
    n: u64,
    expires: impl Fn(Seq) -> Option<DateTime<Utc>>,
) -> ConversationId {
    let t = tag();
    let (c, from) = (conv(&t), user("writer", &t));
    for i in 1..=n {
        let m = new_message(&c, &from, &format!("m{i}"), Utc::now(), expires(i));
        assert_eq!(append(log, m).await.message.seq, i);
    }
    c
}

/// `after` pages oldest first and `before` newest first, by seq, with exact limits; 30
/// messages cross bucket boundaries for any bucket size up to 29.
pub async fn paging_after_and_before(log: Arc<dyn MessageLog>) {
    let log = log.as_ref();
    let c = &filled(log, 30, |_| None).await;
    let now = Utc::now();
    let after = |a, l| async move { seqs(&log.after(c, a, l, now).await.unwrap()) };
    assert_eq!(after(0, 7).await, (1..=7).collect::<Vec<_>>());
    assert_eq!(after(7, 7).await, (8..=14).collect::<Vec<_>>());
    assert_eq!(after(8, 15).await, (9..=23).collect::<Vec<_>>());
    assert_eq!(after(20, 100).await, (21..=30).collect::<Vec<_>>());
    assert_eq!(after(30, 5).await, Vec::<Seq>::new());
    let before = |b, l| async move { seqs(&log.before(c, b, l, now).await.unwrap()) };
    assert_eq!(before(Seq::MAX, 5).await, vec![30, 29, 28, 27, 26]);
    assert_eq!(before(23, 15).await, (8..=22).rev().collect::<Vec<_>>());
    assert_eq!(before(3, 10).await, vec![2, 1]);
    assert_eq!(before(1, 10).await, Vec::<Seq>::new());
    assert_eq!(before(0, 10).await, Vec::<Seq>::new());
    let page = log.after(c, 0, 2, now).await.unwrap();
    assert_eq!(page[1].client_msg_id.as_str(), "m2");
    assert_eq!(page[1].body, "body of m2");
}

/// Messages whose retention ended are never returned, and do not count against a page's
/// limit, even when whole buckets before the live ones have expired.
pub async fn expired_messages_are_filtered(log: Arc<dyn MessageLog>) {
    let log = log.as_ref();
    let now = Utc::now() + Duration::hours(1);
    // Seqs 1..=24 expire before `now`, except 5 and 12; 25..=30 live (and 29 never expires).
    let c = filled(log, 30, |i| match i {
        29 => None,
        5 | 12 | 25.. => Some(now + Duration::days(1)),
        _ => Some(now - Duration::seconds(1)),
    })
    .await;
    let c = &c;
    let after = |a, l| async move { seqs(&log.after(c, a, l, now).await.unwrap()) };
    assert_eq!(after(0, 3).await, vec![5, 12, 25]);
    assert_eq!(after(12, 3).await, vec![25, 26, 27]);
    assert_eq!(after(0, 100).await, vec![5, 12, 25, 26, 27, 28, 29, 30]);
    let before = |b, l| async move { seqs(&log.before(c, b, l, now).await.unwrap()) };
    assert_eq!(before(25, 5).await, vec![12, 5]);
    assert_eq!(before(Seq::MAX, 7).await, vec![30, 29, 28, 27, 26, 25, 12]);
    let m = log.after(c, 28, 1, now).await.unwrap();
    assert_eq!(m[0].expires_at, None);
    let m = log.after(c, 29, 1, now).await.unwrap();
    assert_eq!(m[0].expires_at, Some(now + Duration::days(1)));
    // Before their expiry everything is there.
    assert_eq!(log.after(c, 0, 100, Utc::now()).await.unwrap().len(), 30);
}

/// `last_seqs` answers every asked conversation, 0 for one without messages.
pub async fn last_seqs_of_conversations(log: Arc<dyn MessageLog>) {
    let c = filled(log.as_ref(), 3, |_| None).await;
    let empty = conv(&tag());
    let heads = log
        .last_seqs(&[c.clone(), empty.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!((heads[&c], heads[&empty]), (3, 0));
    assert!(log.last_seqs(&[]).await.unwrap().is_empty());
}

/// Last-seen keeps the latest instant whatever order the touches arrive in.
pub async fn last_seen_keeps_the_latest(seen: Arc<dyn LastSeen>) {
    let t = tag();
    let (alice, bob, nobody) = (user("alice", &t), user("bob", &t), user("nobody", &t));
    let t0 = Utc::now();
    seen.touch(&alice, t0 + Duration::seconds(10))
        .await
        .unwrap();
    seen.touch(&alice, t0).await.unwrap();
    seen.touch(&bob, t0).await.unwrap();
    seen.touch(&bob, t0 + Duration::milliseconds(1))
        .await
        .unwrap();
    let got = seen
        .get(&[alice.clone(), bob.clone(), nobody.clone(), alice.clone()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&alice], t0 + Duration::seconds(10));
    assert_eq!(got[&bob], t0 + Duration::milliseconds(1));
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

/// System messages keep their membership event through the log.
pub async fn system_events_round_trip(log: Arc<dyn MessageLog>) {
    let t = tag();
    let (c, alice, bob) = (conv(&t), user("a", &t), user("b", &t));
    let mut m = new_message(&c, &alice, "sys-1", Utc::now(), None);
    m.body = String::new();
    m.event = Some(GroupEvent::MembersAdded { users: vec![bob] });
    let stored = append(log.as_ref(), m.clone()).await.message;
    let read = log.after(&c, 0, 10, Utc::now()).await.unwrap();
    assert_eq!(read, vec![stored.clone()]);
    assert_eq!(read[0].event, m.event);
}

/// Push registrations per (user, device), and claims that allow one push until the user acks
/// the pushed seq, the claim is released, or the window passes.
pub async fn push_devices_and_claims(devices: Arc<dyn PushDevices>) {
    let t = tag();
    let (alice, bob, c) = (user("a", &t), user("b", &t), conv(&t));
    let (phone, tablet) = (
        DeviceId::new("phone").unwrap(),
        DeviceId::new("tablet").unwrap(),
    );
    let now = Utc::now();
    let reg = |u: &UserId, d: &DeviceId, token: &str| PushDevice {
        user: u.clone(),
        device: d.clone(),
        platform: Platform::Fcm,
        token: token.into(),
        endpoint: format!("endpoint-{token}"),
        preview: false,
        registered_at: now,
    };
    devices.put(&reg(&alice, &phone, "t1")).await.unwrap();
    devices.put(&reg(&alice, &tablet, "t2")).await.unwrap();
    devices.put(&reg(&bob, &phone, "t3")).await.unwrap();
    devices.put(&reg(&alice, &phone, "t4")).await.unwrap();
    assert_eq!(
        devices.get(&alice, &phone).await.unwrap(),
        Some(reg(&alice, &phone, "t4"))
    );
    let mut tokens: Vec<String> = devices
        .of_users(std::slice::from_ref(&alice))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.token)
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["t2", "t4"]);
    assert_eq!(
        devices.remove(&alice, &tablet).await.unwrap(),
        Some(reg(&alice, &tablet, "t2"))
    );
    assert_eq!(devices.remove(&alice, &tablet).await.unwrap(), None);
    assert_eq!(
        devices
            .of_users(&[alice.clone(), bob.clone()])
            .await
            .unwrap()
            .len(),
        2
    );

    let window = Duration::seconds(60);
    let claim = |secs: i64, seq: Seq, acked: Seq| {
        let at = now + Duration::seconds(secs);
        let c = PushClaim {
            user: alice.clone(),
            device: phone.clone(),
            conversation: c.clone(),
            seq,
            at,
            not_before: at - window,
            acked,
        };
        let devices = devices.clone();
        async move { devices.claim(&c).await.unwrap() }
    };
    assert!(claim(0, 1, 0).await, "the first push of a burst");
    assert!(!claim(10, 2, 0).await, "coalesced");
    assert!(claim(11, 3, 1).await, "the user acked the pushed seq");
    assert!(
        !claim(12, 4, 2).await,
        "acked something, but not the pushed seq 3"
    );
    devices.release(&alice, &phone, &c).await.unwrap();
    assert!(claim(13, 5, 2).await, "released after a failed push");
    assert!(claim(74, 6, 2).await, "after the window");
}

/// Expands to one `#[tokio::test]` per contract function, each calling `$make.await` for a
/// store that implements every storage port (an `Arc` of it). Use it once per adapter.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn gapless_concurrent_appends() {
            $crate::contract::gapless_concurrent_appends($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn cancelled_appenders_leave_no_hole() {
            $crate::contract::cancelled_appenders_leave_no_hole($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn idempotent_append() {
            $crate::contract::idempotent_append($make.await).await;
        }
        #[tokio::test]
        async fn monotonic_pointers() {
            $crate::contract::monotonic_pointers($make.await).await;
        }
        #[tokio::test]
        async fn join_is_idempotent() {
            $crate::contract::join_is_idempotent($make.await).await;
        }
        #[tokio::test]
        async fn connections_of_users() {
            $crate::contract::connections_of_users($make.await).await;
        }
        #[tokio::test]
        async fn paging_after_and_before() {
            $crate::contract::paging_after_and_before($make.await).await;
        }
        #[tokio::test]
        async fn expired_messages_are_filtered() {
            $crate::contract::expired_messages_are_filtered($make.await).await;
        }
        #[tokio::test]
        async fn last_seqs_of_conversations() {
            $crate::contract::last_seqs_of_conversations($make.await).await;
        }
        #[tokio::test]
        async fn roles_and_leaving() {
            $crate::contract::roles_and_leaving($make.await).await;
        }
        #[tokio::test]
        async fn group_metadata() {
            $crate::contract::group_metadata($make.await).await;
        }
        #[tokio::test]
        async fn system_events_round_trip() {
            $crate::contract::system_events_round_trip($make.await).await;
        }
        #[tokio::test]
        async fn push_devices_and_claims() {
            $crate::contract::push_devices_and_claims($make.await).await;
        }
        #[tokio::test]
        async fn last_seen_keeps_the_latest() {
            $crate::contract::last_seen_keeps_the_latest($make.await).await;
        }
    };
}
