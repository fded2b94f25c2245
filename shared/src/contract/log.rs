//! Contract: The message log: gapless seqs under concurrency and cancellation, idempotency, paging, expiry.

use super::*;

/// What a race test of the log did, for the adapter's test to check that the race happened
/// (the contract itself cannot see inside the adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raced {
    /// [`gapless_concurrent_appends`]: this many appends ran concurrently, each stored once.
    Concurrently { appends: usize },
    /// [`cancelled_appenders_leave_no_hole`].
    Cancelled(CancelStats),
}

/// 8 tasks × 25 concurrent appends to one conversation get 200 distinct seqs, exactly 1..=200,
/// and the log reads back in that order with each message where its append said. Returns how
/// many appends raced.
pub async fn gapless_concurrent_appends(log: Arc<dyn MessageLog>) -> usize {
    let t = tag();
    let c = conv(&t);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (log, c, from) = (log.clone(), c.clone(), user(&format!("u{task}"), &t));
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                let m = new_message(&c, &from, &format!("m{task}-{i}"), Utc::now(), None);
                let m = stored(append(log.as_ref(), m).await);
                got.push((m.seq, m.client_msg_id));
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
    all.len()
}

/// What [`cancelled_appenders_leave_no_hole`] did, so an adapter's test can check that the
/// cuts really hit appends in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelStats {
    /// Appends dropped (timeout) or aborted (task abort) before they finished.
    pub cancelled: usize,
    /// Appends that finished.
    pub completed: usize,
    /// Cancelled appends whose write had landed anyway (their retry was a duplicate): the cut
    /// came after the store had applied the write, before the caller learnt of it.
    pub landed_anyway: usize,
}

/// Appenders cancelled at random points (the future dropped by a timeout, or the task aborted)
/// while others append: whatever landed, the log has no hole and no duplicate, and retrying
/// every cancelled send stores each exactly once. The cuts fall within the first 4× the time
/// an uncontended append takes on this store, so they hit every step of an append.
pub async fn cancelled_appenders_leave_no_hole(log: Arc<dyn MessageLog>) -> CancelStats {
    let t = tag();
    let c = conv(&t);
    let from = user("sender", &t);
    let started = std::time::Instant::now();
    append(
        log.as_ref(),
        new_message(&c, &from, "first", Utc::now(), None),
    )
    .await;
    let window = (started.elapsed().as_micros() as u64 * 4).max(1);
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
        let cut = std::time::Duration::from_micros(getrandom::u64().unwrap() % window);
        // Finished means answered with the stored message: an append cut off, or failed (a
        // store under injected faults), is retried below like a client would.
        let finished = if i % 2 == 0 {
            matches!(tokio::time::timeout(cut, log.append(m)).await, Ok(Ok(_)))
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
        landed_anyway += usize::from(matches!(
            append(log.as_ref(), m).await,
            Append::Duplicate(_)
        ));
    }
    let all = assert_gapless(log.as_ref(), &c).await;
    assert_eq!(all.len(), 1 + 20 + 30, "every send is stored exactly once");
    CancelStats {
        cancelled: cancelled_ids.len(),
        completed,
        landed_anyway,
    }
}

/// A retry with the same `(sender, client_msg_id)` and the same request returns the original
/// and stores nothing; the same key for another request (another body, another conversation)
/// is a conflict that stores nothing; concurrent retries store once; another sender may reuse
/// the id.
pub async fn idempotent_append(log: Arc<dyn MessageLog>) {
    let t = tag();
    let (c, other_conv) = (conv(&t), conv(&format!("{t}-b")));
    let (alice, bob) = (user("alice", &t), user("bob", &t));
    let first = appended(
        append(
            log.as_ref(),
            new_message(&c, &alice, "c-1", Utc::now(), None),
        )
        .await,
    );
    let again = append(
        log.as_ref(),
        new_message(&c, &alice, "c-1", Utc::now(), None),
    )
    .await;
    assert_eq!(
        again,
        Append::Duplicate(first.clone()),
        "the original comes back"
    );
    let mut other_body = new_message(&c, &alice, "c-1", Utc::now(), None);
    other_body.body = "a different body".into();
    other_body.digest = RequestDigest::of("send", &c, &[&other_body.body]);
    let key = crate::domain::SentKey {
        conversation: c.clone(),
        seq: 1,
        digest: Some(first_digest(&c, "c-1")),
    };
    assert_eq!(
        append(log.as_ref(), other_body).await,
        Append::Conflict(key.clone())
    );
    let elsewhere = append(
        log.as_ref(),
        new_message(&other_conv, &alice, "c-1", Utc::now(), None),
    )
    .await;
    assert_eq!(elsewhere, Append::Conflict(key));
    let heads = log
        .last_seqs(&[c.clone(), other_conv.clone()])
        .await
        .unwrap();
    assert_eq!(
        (heads[&c], heads[&other_conv]),
        (1, 0),
        "conflicts store nothing"
    );
    let by_bob = stored(append(log.as_ref(), new_message(&c, &bob, "c-1", Utc::now(), None)).await);
    assert_eq!(by_bob.seq, 2);

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
    assert_eq!(
        results
            .iter()
            .filter(|a| matches!(a, Append::Stored(_)))
            .count(),
        1
    );
    assert!(
        results
            .iter()
            .all(|a| a.message().map(|m| m.seq) == Some(3))
    );
    assert_eq!(assert_gapless(log.as_ref(), &c).await.len(), 3);
}

/// The digest [`new_message`] gives `cmid`'s message in `c`.
fn first_digest(c: &ConversationId, cmid: &str) -> RequestDigest {
    new_message(c, &user("x", "x"), cmid, Utc::now(), None).digest
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
        assert_eq!(stored(append(log, m).await).seq, i);
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

/// A `client_msg_id` stands for its request for [`KEY_WINDOW`](crate::domain::KEY_WINDOW)
/// after it was sent: a retry inside the window is the original; at its end the same key is a
/// new request (a new message, which the key then stands for). A message that expires sooner
/// ends its key with it.
pub async fn a_key_stands_for_its_request_for_its_window(log: Arc<dyn MessageLog>) {
    use crate::domain::KEY_WINDOW;
    let t = tag();
    let c = conv(&t);
    let alice = user("alice", &t);
    let send = |cmid: &str, at: DateTime<Utc>, expires: Option<DateTime<Utc>>| {
        let log = log.clone();
        let m = new_message(&c, &alice, cmid, at, expires);
        async move { append(log.as_ref(), m).await }
    };
    let t0 = Utc::now();
    let first = appended(send("c-1", t0, None).await);
    let last_moment = t0 + KEY_WINDOW - Duration::milliseconds(1);
    assert_eq!(
        send("c-1", last_moment, None).await,
        Append::Duplicate(first.clone()),
        "a retry inside the window is the original"
    );
    let second = appended(send("c-1", t0 + KEY_WINDOW, None).await);
    assert_eq!(second.message.seq, 2, "at the window's end the key is free");
    assert_eq!(
        send("c-1", t0 + KEY_WINDOW + Duration::days(1), None).await,
        Append::Duplicate(second),
        "the key now stands for the new message"
    );
    // A message kept for an hour: its key lapses with it, well inside the window.
    let hour = Some(t0 + Duration::hours(1));
    let third = appended(send("c-2", t0, hour).await);
    assert_eq!(
        send("c-2", t0 + Duration::minutes(59), hour).await,
        Append::Duplicate(third)
    );
    let fourth = stored(send("c-2", t0 + Duration::hours(1), None).await);
    assert_eq!(fourth.seq, 4);
    assert_eq!(
        log.last_seqs(std::slice::from_ref(&c)).await.unwrap()[&c],
        4
    );
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

/// System messages keep their membership event through the log.
pub async fn system_events_round_trip(log: Arc<dyn MessageLog>) {
    let t = tag();
    let (c, alice, bob) = (conv(&t), user("a", &t), user("b", &t));
    let mut m = new_message(&c, &alice, "sys-1", Utc::now(), None);
    m.body = String::new();
    m.event = Some(LogEvent::MembersAdded { users: vec![bob] });
    let stored = stored(append(log.as_ref(), m.clone()).await);
    let read = log.after(&c, 0, 10, Utc::now()).await.unwrap();
    assert_eq!(read, vec![stored.clone()]);
    assert_eq!(read[0].event, m.event);
}

/// The batched first read of `send` and `ack` sees what the ports say: the membership, the head,
/// what a `client_msg_id` stored (and for which request), the message at a seq. And an append
/// told a stale head still lands gapless on the real next seq.
pub async fn reads_for_a_write_in_one_go<S>(store: Arc<S>)
where
    S: WriteReads + Conversations + MessageLog + 'static,
{
    let t = tag();
    let (alice, bob) = (user("alice", &t), user("bob", &t));
    let c = ConversationId::direct(&alice, &bob);
    let now = Utc::now();
    let cmid = ClientMsgId::new("c-1").unwrap();
    let keys = |who, cmid, message| WriteKeys {
        conversation: &c,
        user: who,
        client_msg_id: cmid,
        message,
        other: None,
    };
    let empty = store
        .read_for_write(keys(&alice, Some(&cmid), Some(1)), now)
        .await
        .unwrap();
    assert_eq!(empty, Default::default());

    let effects = Effects {
        direct: vec![
            (alice.clone(), crate::domain::RequestState::Accepted),
            (bob.clone(), crate::domain::RequestState::Accepted),
        ],
        ..Default::default()
    };
    let m = new_message(&c, &alice, "c-1", now, None);
    let digest = m.digest.clone();
    let first = stored(store.append_with(m, &effects, None).await.unwrap());
    stored(append(store.as_ref(), new_message(&c, &bob, "c-2", now, None)).await);
    let seen = store
        .read_for_write(keys(&alice, Some(&cmid), Some(1)), now)
        .await
        .unwrap();
    assert_eq!(seen.membership.map(|m| m.user), Some(alice.clone()));
    assert_eq!((seen.last_seq, seen.chats), (2, 2));
    let sent = seen.sent.expect("the key is stored");
    assert_eq!((&sent.conversation, sent.seq), (&c, 1));
    assert!(sent.is_same_request(&c, &digest));
    assert!(!sent.is_same_request(&c, &RequestDigest::of("send", &c, &["other"])));
    assert_eq!(seen.message, Some(first));
    assert_eq!(seen.message_chats, 1, "the chat count at message 1");
    let other = ClientMsgId::new("c-9").unwrap();
    let stranger = user("stranger", &t);
    let seen = store
        .read_for_write(keys(&stranger, Some(&other), Some(7)), now)
        .await
        .unwrap();
    assert_eq!(
        (seen.membership, seen.last_seq, seen.sent, seen.message),
        (None, 2, None, None)
    );

    // Told seq 1 was the latest (it was, a moment ago): the append still takes seq 3.
    let late = store
        .append_with(
            new_message(&c, &bob, "c-3", now, None),
            &Effects::default(),
            Some(Head {
                last_seq: 1,
                chats: 1,
                last: None,
            }),
        )
        .await
        .unwrap();
    let late = appended(late);
    assert_eq!((late.message.seq, late.chats), (3, 3));
    assert_gapless(store.as_ref(), &c).await;
}
