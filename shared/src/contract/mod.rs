//! Port contract suite: one set of tests every storage adapter must pass, so the embedded mode
//! (in memory) cannot drift from production (DynamoDB). Each function takes the port objects,
//! uses fresh random ids (so many can share one store) and panics on a broken property.
//! [`contract_tests!`](crate::contract_tests) turns the whole suite into `#[tokio::test]`s.

use crate::domain::{
    ClientMsgId, Connection, ConnectionId, ConversationId, DeviceId, GroupInfo, Head, LogEvent,
    Message, NewMessage, ReceiptKind, RequestDigest, Role, Seq, UserId,
};
use crate::ports::{
    Append, Appended, Connections, Conversations, Effects, GroupChange, GroupKeys, GroupRefusal,
    MessageLog, PushDevices, RateLimiter, WriteKeys, WriteReads,
};
use crate::push::{Platform, PushClaim, PushDevice};
use crate::ratelimit::{Bucket, Decision, Rate};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

mod amend;
mod blocks;
mod connections;
mod conversations;
mod devices;
mod limits;
mod log;
mod objects;

pub use amend::*;
pub use blocks::*;
pub use connections::*;
pub use conversations::*;
pub use devices::*;
pub use limits::*;
pub use log::*;
pub use objects::*;

/// A random tag that makes this call's ids unique in a shared store.
pub fn tag() -> String {
    format!("{:012x}", getrandom::u64().expect("OS randomness") >> 16)
}

pub(crate) fn user(name: &str, tag: &str) -> UserId {
    UserId::new(format!("{name}-{tag}")).unwrap()
}

pub(crate) fn conv(tag: &str) -> ConversationId {
    ConversationId::new(format!("g:{tag}")).unwrap()
}

pub(crate) fn new_message(
    conv: &ConversationId,
    from: &UserId,
    cmid: &str,
    sent_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> NewMessage {
    let body = format!("body of {cmid}");
    NewMessage {
        conversation: conv.clone(),
        from: from.clone(),
        client_msg_id: ClientMsgId::new(cmid).unwrap(),
        digest: RequestDigest::of("send", conv, &[&body]),
        body,
        event: None,
        sent_at,
        expires_at,
        attachments: Vec::new(),
        reply_to: None,
    }
}

pub(crate) async fn append(log: &dyn MessageLog, m: NewMessage) -> Append {
    log.append(m).await.expect("append")
}

/// What an append stored (panics on any other outcome).
pub(crate) fn appended(a: Append) -> Appended {
    match a {
        Append::Stored(a) => a,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

/// The message an append stored (panics on any other outcome).
pub(crate) fn stored(a: Append) -> Message {
    appended(a).message
}

/// A membership event by `actor` in `c` with `change`, appended (its outcome).
pub(crate) async fn change(
    log: &dyn MessageLog,
    c: &ConversationId,
    actor: &UserId,
    event: LogEvent,
    change: GroupChange,
) -> Append {
    let mut m = new_message(c, actor, &format!("sys-{}", tag()), Utc::now(), None);
    m.body = String::new();
    m.event = Some(event);
    let effects = Effects {
        group: Some(change),
        ..Effects::default()
    };
    log.append_with(m, &effects, None).await.expect("append")
}

/// Creates group `c` with these members (the first its creator); returns the created event.
pub(crate) async fn create(
    log: &dyn MessageLog,
    c: &ConversationId,
    members: &[(&UserId, Role)],
) -> Message {
    let creator = members[0].0;
    let create = GroupChange {
        create: Some(GroupInfo {
            conversation: c.clone(),
            name: "Group".into(),
            created_by: creator.clone(),
            created_at: Utc::now(),
        }),
        join: members.iter().map(|(u, r)| ((*u).clone(), *r)).collect(),
        ..GroupChange::default()
    };
    let event = LogEvent::GroupCreated {
        name: "Group".into(),
        members: members.iter().map(|(u, _)| (*u).clone()).collect(),
    };
    stored(change(log, c, creator, event, create).await)
}

/// The 1:1 conversation of `a` and `b`, started by a message from `a` (its seq 1).
pub(crate) async fn direct(log: &dyn MessageLog, a: &UserId, b: &UserId) -> ConversationId {
    let c = ConversationId::direct(a, b);
    let effects = Effects {
        direct: vec![
            (a.clone(), crate::domain::RequestState::Accepted),
            (b.clone(), crate::domain::RequestState::Accepted),
        ],
        ..Default::default()
    };
    let m = new_message(&c, a, &format!("first-{}", tag()), Utc::now(), None);
    stored(log.append_with(m, &effects, None).await.expect("append"));
    c
}

pub(crate) async fn whole_log(log: &dyn MessageLog, conv: &ConversationId) -> Vec<Message> {
    log.after(conv, 0, 100_000, Utc::now())
        .await
        .expect("read the log")
}

pub(crate) fn seqs(ms: &[Message]) -> Vec<Seq> {
    ms.iter().map(|m| m.seq).collect()
}

/// The log holds exactly seqs 1..=head, each once, and the head agrees.
pub(crate) async fn assert_gapless(log: &dyn MessageLog, conv: &ConversationId) -> Vec<Message> {
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

/// Expands to one `#[tokio::test]` per contract function, each calling `$make.await` for a
/// store that implements every storage port (an `Arc` of it). Use it once per adapter.
///
/// `check_races = f` hands `f(&store, Raced)` what each race test of the log did, so an adapter
/// whose appends can really contend or be cut in flight asserts that they were.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!($make, check_races = |_store, _raced| {});
    };
    ($make:expr, check_races = $check:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn gapless_concurrent_appends() {
            let store = $make.await;
            let appends = $crate::contract::gapless_concurrent_appends(store.clone()).await;
            ($check)(&store, $crate::contract::Raced::Concurrently { appends });
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn cancelled_appenders_leave_no_hole() {
            let store = $make.await;
            let stats = $crate::contract::cancelled_appenders_leave_no_hole(store.clone()).await;
            ($check)(&store, $crate::contract::Raced::Cancelled(stats));
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
        async fn mute_and_read_chats() {
            $crate::contract::mute_and_read_chats($make.await).await;
        }
        #[tokio::test]
        async fn amendments_change_the_message_and_append_an_entry() {
            $crate::contract::amendments_change_the_message_and_append_an_entry($make.await).await;
        }
        #[tokio::test]
        async fn heads_preview_membership_changes() {
            $crate::contract::heads_preview_membership_changes($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_amendments_stay_gapless() {
            $crate::contract::concurrent_amendments_stay_gapless($make.await).await;
        }
        #[tokio::test]
        async fn memberships_change_with_their_event() {
            $crate::contract::memberships_change_with_their_event($make.await).await;
        }
        #[tokio::test]
        async fn refused_changes_store_nothing() {
            $crate::contract::refused_changes_store_nothing($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn two_last_admins_leaving_at_once_keep_one() {
            $crate::contract::two_last_admins_leaving_at_once_keep_one($make.await).await;
        }
        #[tokio::test]
        async fn reports_are_stored_once_and_listed_by_day() {
            $crate::contract::reports_are_stored_once_and_listed_by_day($make.await).await;
        }
        #[tokio::test]
        async fn blocks_one_way_listed_and_read_with_writes() {
            $crate::contract::blocks_one_way_listed_and_read_with_writes($make.await).await;
        }
        #[tokio::test]
        async fn reads_for_a_group_change_in_one_go() {
            $crate::contract::reads_for_a_group_change_in_one_go($make.await).await;
        }
        #[tokio::test]
        async fn connections_past_the_cap_close_the_oldest() {
            $crate::contract::connections_past_the_cap_close_the_oldest($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn rate_limits_per_user_and_bucket() {
            $crate::contract::rate_limits_per_user_and_bucket($make.await).await;
        }
        #[tokio::test]
        async fn a_token_has_one_holder() {
            $crate::contract::a_token_has_one_holder($make.await).await;
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
        async fn a_key_stands_for_its_request_for_its_window() {
            $crate::contract::a_key_stands_for_its_request_for_its_window($make.await).await;
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
        async fn group_metadata() {
            $crate::contract::group_metadata($make.await).await;
        }
        #[tokio::test]
        async fn message_request_standings() {
            $crate::contract::message_request_standings($make.await).await;
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
        async fn presence_and_last_seen() {
            $crate::contract::presence_and_last_seen($make.await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_connects_and_disconnects() {
            $crate::contract::concurrent_connects_and_disconnects($make.await).await;
        }
        #[tokio::test]
        async fn reads_for_a_write_in_one_go() {
            $crate::contract::reads_for_a_write_in_one_go($make.await).await;
        }
    };
}
