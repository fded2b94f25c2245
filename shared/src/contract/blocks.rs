//! The [`Blocks`] port, and the block records the batched first reads return.

use super::{tag, user};
use crate::domain::{ClientMsgId, ConversationId};
use crate::ports::{BlockState, Blocks, Conversations, GroupKeys, WriteKeys, WriteReads};
use chrono::{Duration, Utc};
use std::collections::HashSet;
use std::sync::Arc;

/// Blocking is per (blocker, blocked), one way, idempotent (the first instant stays), listed in
/// user order in pages, and read back by the batched reads of `send` and group changes; a
/// blocker's block records are not conversations.
pub async fn blocks_one_way_listed_and_read_with_writes<S>(store: Arc<S>)
where
    S: Blocks + WriteReads + Conversations + 'static,
{
    let t = tag();
    let (alice, bob, carol, dave) = (user("a", &t), user("b", &t), user("c", &t), user("d", &t));
    let t0 = Utc::now() - Duration::seconds(10);
    assert!(store.block(&alice, &bob, t0).await.unwrap());
    assert!(
        !store
            .block(&alice, &bob, t0 + Duration::seconds(5))
            .await
            .unwrap(),
        "blocking twice changes nothing"
    );
    assert!(store.block(&alice, &dave, t0).await.unwrap());
    assert!(store.block(&alice, &carol, t0).await.unwrap());

    // Listed in user order, in pages.
    let (page, more) = store.blocked(&alice, None, 2).await.unwrap();
    let names =
        |p: &[crate::ports::BlockedUser]| p.iter().map(|b| b.user.clone()).collect::<Vec<_>>();
    assert_eq!(
        (names(&page), more),
        (vec![bob.clone(), carol.clone()], true)
    );
    assert_eq!(
        page[0].at.timestamp_millis(),
        t0.timestamp_millis(),
        "the first instant"
    );
    let (rest, more) = store.blocked(&alice, Some(&carol), 2).await.unwrap();
    assert_eq!((names(&rest), more), (vec![dave.clone()], false));
    assert!(
        store.blocked(&bob, None, 10).await.unwrap().0.is_empty(),
        "one way"
    );

    // Pairs, one way.
    let pairs = [
        (alice.clone(), bob.clone()),
        (bob.clone(), alice.clone()),
        (alice.clone(), carol.clone()),
    ];
    let standing = store.standing(&pairs).await.unwrap();
    assert_eq!(
        standing,
        HashSet::from([pairs[0].clone(), pairs[2].clone()])
    );

    // The send's first read: both directions of a 1:1.
    let dm = ConversationId::direct(&alice, &bob);
    let now = Utc::now();
    let keys = |me, other| WriteKeys {
        conversation: &dm,
        user: me,
        client_msg_id: None,
        message: None,
        other: Some(other),
    };
    let as_bob = store.read_for_write(keys(&bob, &alice), now).await.unwrap();
    assert_eq!(
        as_bob.blocks,
        BlockState {
            by_me: false,
            by_them: true
        }
    );
    let as_alice = store.read_for_write(keys(&alice, &bob), now).await.unwrap();
    assert_eq!(
        as_alice.blocks,
        BlockState {
            by_me: true,
            by_them: false
        }
    );

    // A group change's first read: who among the users it adds blocked the caller.
    let g = super::conv(&t);
    let cmid = ClientMsgId::new("g-1").unwrap();
    let added = [alice.clone(), carol.clone()];
    let ctx = store
        .read_for_group(
            GroupKeys {
                conversation: &g,
                user: &bob,
                client_msg_id: Some(&cmid),
                counts_of: &added,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(ctx.blocked_by, HashSet::from([alice.clone()]));

    // Block records are not conversations.
    assert!(store.of_user(&alice).await.unwrap().is_empty());

    // Unblocking forgets exactly that pair.
    assert!(store.unblock(&alice, &bob).await.unwrap());
    assert!(!store.unblock(&alice, &bob).await.unwrap());
    let (page, _) = store.blocked(&alice, None, 10).await.unwrap();
    assert_eq!(names(&page), vec![carol.clone(), dave.clone()]);
    let as_bob = store.read_for_write(keys(&bob, &alice), now).await.unwrap();
    assert!(!as_bob.blocks.any());
}

/// A report is stored once per id (a second put writes nothing), read back by id with the
/// message copy as it was, and listed with the other reports of its day.
pub async fn reports_are_stored_once_and_listed_by_day<S>(store: Arc<S>)
where
    S: crate::ports::Reports + 'static,
{
    use crate::moderation::{Report, ReportId, ReportReason};
    use crate::protocol::MessageView;
    let t = tag();
    let (alice, bob) = (user("a", &t), user("b", &t));
    let dm = ConversationId::direct(&alice, &bob);
    // A day of its own (random, within years), so other runs' reports are not in it.
    let day_offset = i64::try_from(getrandom::u64().unwrap() % 20_000).unwrap();
    let at = Utc::now() - Duration::days(day_offset) - Duration::hours(1);
    let message: MessageView = serde_json::from_value(serde_json::json!({
        "conversation": dm, "seq": 3, "from": bob, "sent_at": "2026-11-29T05:58:01.472Z",
        "client_msg_id": "c-3", "body": "buy cheap watches"
    }))
    .unwrap();
    let report = Report {
        id: ReportId::of(&alice, &dm, 3, at),
        reporter: alice.clone(),
        conversation: dm.clone(),
        seq: 3,
        reason: ReportReason::Spam,
        details: Some("again".into()),
        reported_at: at,
        message,
    };
    assert!(store.put_report(&report).await.unwrap());
    let mut again = report.clone();
    again.reason = ReportReason::Other;
    assert!(!store.put_report(&again).await.unwrap(), "one per id");
    let read = store.report(&report.id).await.unwrap().expect("stored");
    assert_eq!(read.reason, ReportReason::Spam, "the first stands");
    assert_eq!(read.message.body.as_deref(), Some("buy cheap watches"));
    assert_eq!(read.reported_at.timestamp_millis(), at.timestamp_millis());
    let second = Report {
        id: ReportId::of(&alice, &dm, 4, at),
        seq: 4,
        reported_at: at + Duration::seconds(1),
        ..report.clone()
    };
    assert!(store.put_report(&second).await.unwrap());
    let day = store.reports_of_day(at.date_naive()).await.unwrap();
    assert_eq!(
        day.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![3, 4],
        "oldest first"
    );
    let other = at.date_naive() + Duration::days(1);
    assert!(
        store
            .reports_of_day(other)
            .await
            .unwrap()
            .iter()
            .all(|r| r.reporter != alice)
    );
}
