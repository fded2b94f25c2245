//! Test support: faults injected at the ports, for adapters without an SDK under them (the
//! in-memory store, the embedded gateway's poster), and crash points.
//!
//! [`FaultyStore`] wraps every storage port: a fault either fails the call before it reaches
//! the store, or (a lost response) lets it happen and fails it anyway. [`FaultyPoster`] does
//! the same to PostToConnection. [`CrashPoint`] hangs forever on the first post that matches a
//! predicate: the invocation that made it is then abandoned by the gateway's integration
//! timeout, exactly as a Lambda that dies at that point.

use super::plan::{Fault, FaultPlan};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use messenger::Stores;
use messenger::domain::{
    Amendment, Connection, ConnectionId, ConversationId, DeviceId, GroupInfo, Head, Member,
    Membership, Message, NewMessage, ReceiptKind, RequestState, Seq, UserId,
};
use messenger::moderation::{Report, ReportId};
use messenger::ports::{
    Amended, Append, BlockState, BlockedUser, Blocks, Connections, Conversations, Effects,
    GroupContext, GroupKeys, MessageLog, PostError, Poster, PushDevices, RateLimiter, Reports,
    StoreError, UserPresence, WriteContext, WriteKeys, WriteReads,
};
use messenger::push::{Platform, PushClaim, PushDevice};
use messenger::ratelimit::{Bucket, Decision, Rate};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What a fault looks like at a port: the store failed (it is not told why).
const AT_A_PORT: &[Fault] = &[
    Fault::Throttle,
    Fault::ServerError,
    Fault::Timeout,
    Fault::LostResponse,
];

fn injected(op: &str, fault: Fault) -> String {
    format!("injected fault: {fault} on {op}")
}

/// Every storage port of `inner`, with the plan's faults on every call.
pub struct FaultyStore {
    inner: Stores,
    plan: Arc<FaultPlan>,
}

impl FaultyStore {
    /// `inner`'s ports behind faults.
    pub fn wrap(inner: Stores, plan: Arc<FaultPlan>) -> Stores {
        Stores::from_one(Arc::new(Self { inner, plan }))
    }

    async fn guard<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.plan.pick(op, AT_A_PORT, None) {
            None => call.await,
            Some(fault) => {
                if fault.happened_anyway() {
                    let _ = call.await;
                }
                Err(StoreError::Backend(injected(op, fault).into()))
            }
        }
    }
}

#[async_trait]
impl Connections for FaultyStore {
    async fn put(&self, conn: &Connection, max_live: usize) -> Result<Vec<Connection>, StoreError> {
        self.guard(
            "Connections::put",
            self.inner.connections.put(conn, max_live),
        )
        .await
    }
    async fn disconnect(
        &self,
        user: &UserId,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.guard(
            "Connections::disconnect",
            self.inner.connections.disconnect(user, id, at),
        )
        .await
    }
    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError> {
        self.guard(
            "Connections::remove",
            self.inner.connections.remove(user, id),
        )
        .await
    }
    async fn presence(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UserId, UserPresence>, StoreError> {
        self.guard(
            "Connections::presence",
            self.inner.connections.presence(users, now),
        )
        .await
    }
    async fn of_users(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Connection>, StoreError> {
        self.guard(
            "Connections::of_users",
            self.inner.connections.of_users(users, now),
        )
        .await
    }
}

#[async_trait]
impl Conversations for FaultyStore {
    async fn membership(
        &self,
        conv: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        self.guard(
            "Conversations::membership",
            self.inner.conversations.membership(conv, user),
        )
        .await
    }
    async fn members(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError> {
        self.guard(
            "Conversations::members",
            self.inner.conversations.members(conv),
        )
        .await
    }
    async fn pointers(&self, conv: &ConversationId) -> Result<Vec<Membership>, StoreError> {
        self.guard(
            "Conversations::pointers",
            self.inner.conversations.pointers(conv),
        )
        .await
    }
    async fn of_user(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        self.guard(
            "Conversations::of_user",
            self.inner.conversations.of_user(user),
        )
        .await
    }
    async fn advance(
        &self,
        conv: &ConversationId,
        user: &UserId,
        kind: ReceiptKind,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        self.guard(
            "Conversations::advance",
            self.inner
                .conversations
                .advance(conv, user, kind, seq, chats),
        )
        .await
    }
    async fn read_through(
        &self,
        conv: &ConversationId,
        user: &UserId,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        self.guard(
            "Conversations::read_through",
            self.inner
                .conversations
                .read_through(conv, user, seq, chats),
        )
        .await
    }
    async fn set_muted(
        &self,
        conv: &ConversationId,
        user: &UserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.guard(
            "Conversations::set_muted",
            self.inner.conversations.set_muted(conv, user, until),
        )
        .await
    }
    async fn set_request(
        &self,
        conv: &ConversationId,
        user: &UserId,
        state: RequestState,
        peer: Option<(&UserId, RequestState)>,
    ) -> Result<bool, StoreError> {
        self.guard(
            "Conversations::set_request",
            self.inner
                .conversations
                .set_request(conv, user, state, peer),
        )
        .await
    }
    async fn groups(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, GroupInfo>, StoreError> {
        self.guard(
            "Conversations::groups",
            self.inner.conversations.groups(convs),
        )
        .await
    }
}

#[async_trait]
impl MessageLog for FaultyStore {
    async fn append_with(
        &self,
        msg: NewMessage,
        effects: &Effects,
        seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        self.guard(
            "MessageLog::append",
            self.inner.messages.append_with(msg, effects, seen),
        )
        .await
    }
    async fn amend(&self, amendment: &Amendment) -> Result<Amended, StoreError> {
        self.guard("MessageLog::amend", self.inner.messages.amend(amendment))
            .await
    }
    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError> {
        self.guard("MessageLog::heads", self.inner.messages.heads(convs))
            .await
    }
    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        self.guard(
            "MessageLog::last_seqs",
            self.inner.messages.last_seqs(convs),
        )
        .await
    }
    async fn by_seqs(
        &self,
        conv: &ConversationId,
        seqs: &[Seq],
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.guard(
            "MessageLog::by_seqs",
            self.inner.messages.by_seqs(conv, seqs, now),
        )
        .await
    }
    async fn after(
        &self,
        conv: &ConversationId,
        after: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.guard(
            "MessageLog::after",
            self.inner.messages.after(conv, after, limit, now),
        )
        .await
    }
    async fn before(
        &self,
        conv: &ConversationId,
        before: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        self.guard(
            "MessageLog::before",
            self.inner.messages.before(conv, before, limit, now),
        )
        .await
    }
}

#[async_trait]
impl WriteReads for FaultyStore {
    async fn read_for_write(
        &self,
        keys: WriteKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<WriteContext, StoreError> {
        self.guard(
            "WriteReads::read_for_write",
            self.inner.reads.read_for_write(keys, now),
        )
        .await
    }
    async fn read_for_group(
        &self,
        keys: GroupKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<GroupContext, StoreError> {
        self.guard(
            "WriteReads::read_for_group",
            self.inner.reads.read_for_group(keys, now),
        )
        .await
    }
}

#[async_trait]
impl RateLimiter for FaultyStore {
    async fn take(
        &self,
        user: &UserId,
        bucket: Bucket,
        rate: Rate,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        self.guard(
            "RateLimiter::take",
            self.inner.limiter.take(user, bucket, rate, now),
        )
        .await
    }
}

#[async_trait]
impl Blocks for FaultyStore {
    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.guard(
            "Blocks::block",
            self.inner.blocks.block(blocker, blocked, at),
        )
        .await
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool, StoreError> {
        self.guard(
            "Blocks::unblock",
            self.inner.blocks.unblock(blocker, blocked),
        )
        .await
    }

    async fn blocked(
        &self,
        blocker: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<BlockedUser>, bool), StoreError> {
        self.guard(
            "Blocks::blocked",
            self.inner.blocks.blocked(blocker, after, limit),
        )
        .await
    }

    async fn membership_and_blocks(
        &self,
        conv: &ConversationId,
        user: &UserId,
        other: &UserId,
    ) -> Result<(Option<Membership>, BlockState), StoreError> {
        self.guard(
            "Blocks::membership_and_blocks",
            self.inner.blocks.membership_and_blocks(conv, user, other),
        )
        .await
    }

    async fn standing(
        &self,
        pairs: &[(UserId, UserId)],
    ) -> Result<HashSet<(UserId, UserId)>, StoreError> {
        self.guard("Blocks::standing", self.inner.blocks.standing(pairs))
            .await
    }
}

#[async_trait]
impl Reports for FaultyStore {
    async fn put_report(&self, report: &Report) -> Result<bool, StoreError> {
        self.guard("Reports::put_report", self.inner.reports.put_report(report))
            .await
    }

    async fn report(&self, id: &ReportId) -> Result<Option<Report>, StoreError> {
        self.guard("Reports::report", self.inner.reports.report(id))
            .await
    }

    async fn reports_of_day(&self, day: NaiveDate) -> Result<Vec<Report>, StoreError> {
        self.guard(
            "Reports::reports_of_day",
            self.inner.reports.reports_of_day(day),
        )
        .await
    }
}

#[async_trait]
impl PushDevices for FaultyStore {
    async fn put(&self, device: &PushDevice) -> Result<(), StoreError> {
        self.guard("PushDevices::put", self.inner.push_devices.put(device))
            .await
    }
    async fn get(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        self.guard(
            "PushDevices::get",
            self.inner.push_devices.get(user, device),
        )
        .await
    }
    async fn remove(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        self.guard(
            "PushDevices::remove",
            self.inner.push_devices.remove(user, device),
        )
        .await
    }
    async fn token_holder(
        &self,
        platform: Platform,
        token: &str,
    ) -> Result<Option<(UserId, DeviceId)>, StoreError> {
        self.guard(
            "PushDevices::token_holder",
            self.inner.push_devices.token_holder(platform, token),
        )
        .await
    }
    async fn remove_if_token(
        &self,
        user: &UserId,
        device: &DeviceId,
        token: &str,
    ) -> Result<Option<PushDevice>, StoreError> {
        self.guard(
            "PushDevices::remove_if_token",
            self.inner.push_devices.remove_if_token(user, device, token),
        )
        .await
    }
    async fn of_users(&self, users: &[UserId]) -> Result<Vec<PushDevice>, StoreError> {
        self.guard(
            "PushDevices::of_users",
            self.inner.push_devices.of_users(users),
        )
        .await
    }
    async fn claim(&self, claim: &PushClaim) -> Result<bool, StoreError> {
        self.guard("PushDevices::claim", self.inner.push_devices.claim(claim))
            .await
    }
    async fn release(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
    ) -> Result<(), StoreError> {
        self.guard(
            "PushDevices::release",
            self.inner.push_devices.release(user, device, conv),
        )
        .await
    }
}

/// PostToConnection with the plan's faults: not delivered and failed (throttled, 500,
/// timeout), or delivered and failed anyway (a lost response).
pub struct FaultyPoster {
    inner: Arc<dyn Poster>,
    plan: Arc<FaultPlan>,
}

impl FaultyPoster {
    /// `inner` behind faults.
    pub fn wrap(inner: Arc<dyn Poster>, plan: Arc<FaultPlan>) -> Arc<dyn Poster> {
        Arc::new(Self { inner, plan })
    }
}

#[async_trait]
impl Poster for FaultyPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        match self.plan.pick("Poster::post", AT_A_PORT, None) {
            None => self.inner.post(conn, data).await,
            Some(fault) => {
                if fault.happened_anyway() {
                    self.inner.post(conn, data).await?;
                }
                Err(PostError::Failed(injected("Poster::post", fault).into()))
            }
        }
    }
    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        match self.plan.pick("Poster::close", AT_A_PORT, None) {
            None => self.inner.close(conn).await,
            Some(fault) => {
                if fault.happened_anyway() {
                    self.inner.close(conn).await?;
                }
                Err(PostError::Failed(injected("Poster::close", fault).into()))
            }
        }
    }
}

type Matcher = Box<dyn Fn(&ConnectionId, &str) -> bool + Send + Sync>;

#[derive(Default)]
struct CrashState {
    armed: Mutex<Option<Matcher>>,
    crashed: Notify,
}

/// A crash at a chosen post: the first post matching the armed predicate never completes (and
/// is not delivered), so the invocation making it hangs until its integration timeout abandons
/// it — as a Lambda that dies at that point of the use case. Every other post goes through.
/// Clone-cheap: the test keeps one, the gateway's poster ([`CrashPoint::poster`]) another.
#[derive(Clone, Default)]
pub struct CrashPoint(Arc<CrashState>);

impl CrashPoint {
    /// A crash point, not armed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `inner`, dying at this crash point.
    pub fn poster(&self, inner: Arc<dyn Poster>) -> Arc<dyn Poster> {
        Arc::new(CrashingPoster {
            inner,
            state: self.0.clone(),
        })
    }

    /// Crash on the next post for which `matches(connection, frame)` holds (once).
    pub fn arm(&self, matches: impl Fn(&ConnectionId, &str) -> bool + Send + Sync + 'static) {
        *self.0.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(matches));
    }

    /// Waits until the armed crash has happened.
    pub async fn crashed(&self) {
        self.0.crashed.notified().await;
    }
}

struct CrashingPoster {
    inner: Arc<dyn Poster>,
    state: Arc<CrashState>,
}

#[async_trait]
impl Poster for CrashingPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        let crash = {
            let mut armed = self.state.armed.lock().unwrap_or_else(|e| e.into_inner());
            match armed.as_ref() {
                Some(matches) if matches(conn, data) => {
                    *armed = None;
                    true
                }
                _ => false,
            }
        };
        if crash {
            tracing::info!(connection = %conn, "crash point reached: the invocation hangs here");
            self.state.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.post(conn, data).await
    }
    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        self.inner.close(conn).await
    }
}
