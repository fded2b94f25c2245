//! Application layer: the ports, limits and clock every use case runs against, and the two
//! ways a use case talks to clients: [`App::reply`] and [`App::deliver`]. Both post frames to
//! connections (API Gateway's PostToConnection): that is *delivery*; mobile *push* is the
//! [`Notifier`]'s.

use crate::Error;
use crate::attachments::AttachmentLimits;
use crate::domain::Connection;
use crate::domain::{ConnectionId, UserId};
use crate::memory::InMemoryStore;
use crate::ports::{
    Blocks, Connections, Conversations, MessageLog, NoObjects, Notifier, NotifyError, Objects,
    PostError, Poster, PushDevices, RateLimiter, Reports, WriteReads,
};
use crate::protocol::ServerFrame;
use crate::push::{MessageEvent, Notification, Platform, PushDevice};
use crate::ratelimit::RateLimits;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The current time; injectable so tests control it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Limits of the service (all configurable; defaults fit API Gateway's quotas).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest message body in UTF-8 bytes (`too_large` past it).
    pub max_body_bytes: usize,
    /// Largest serialised `sync`/`history` page. PostToConnection accepts 128 KB; we leave room.
    pub page_bytes: usize,
    /// Most messages in one `sync` page.
    pub page_messages: usize,
    /// Most messages in one `history` page (and the default).
    pub history_max: usize,
    pub history_default: usize,
    /// Most users in one `presence` request.
    pub presence_users: usize,
    /// In a group, a receipt goes to the authors of the messages an ack covers: at most this
    /// many of the newest covered messages are read to find them.
    pub receipt_authors_window: usize,
    /// How long messages are kept (the TTL attribute); `None` keeps them forever.
    pub retention: Option<chrono::Duration>,
    /// How long a connection record lives: API Gateway's 2 h maximum plus a margin.
    pub connection_ttl: chrono::Duration,
    /// How many PostToConnection calls one fan-out makes at once.
    pub post_concurrency: usize,
    /// Most members of a group, creator included.
    pub max_group_members: usize,
    /// Longest group name, in characters.
    pub max_group_name_chars: usize,
    /// Most conversations in one `conversations` page (and the default).
    pub conversations_page: usize,
    /// At most one push per conversation per device within this window, unless it acks.
    pub push_window: chrono::Duration,
    /// Push offline members from the `send` invocation itself, right after the fan-out. Off
    /// when a stream-driven function does it instead.
    pub push_inline: bool,
    /// Files: sizes, types, uploads per minute, URL lifetimes.
    pub attachments: AttachmentLimits,
    /// How long after sending its author may edit a message.
    pub edit_window: chrono::Duration,
    /// Most different emoji on one message.
    pub max_reaction_emoji: usize,
    /// Most reactions on one message (all emoji together): keeps a message item, and a page
    /// holding it, far below DynamoDB's 400 KB item and API Gateway's 128 KB message.
    pub max_reactions: usize,
    /// At most one `typing` per user and conversation is forwarded within this interval (per
    /// process: each Lambda instance keeps its own).
    pub typing_interval: chrono::Duration,
    /// Per-user token buckets (`rate_limited` past them).
    pub rates: RateLimits,
    /// Most live connections of one user: a new one closes the oldest past it.
    pub max_connections_per_user: usize,
    /// Most groups one user may be in (`too_large` for a change that would pass it).
    pub max_groups_per_user: usize,
    /// Most devices registered for push per user: a new one replaces the least recently
    /// registered past it.
    pub max_devices_per_user: usize,
    /// Most user ids in one `create_group`, `add_members` or `remove_members` frame. At most
    /// [`MAX_IDS_PER_FRAME`]: a change and its event are one DynamoDB transaction.
    pub max_ids_per_frame: usize,
    /// Most cursors in one `sync` frame's `since`.
    pub max_sync_cursors: usize,
}

/// The most ids a group-change frame may ever carry: the change, its event and every member's
/// items are one DynamoDB transaction (at most 100 items, two per user and five others).
pub const MAX_IDS_PER_FRAME: usize = 46;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            page_bytes: 100 * 1024,
            page_messages: 100,
            history_max: 100,
            history_default: 20,
            presence_users: 100,
            receipt_authors_window: 100,
            retention: None,
            connection_ttl: chrono::Duration::minutes(125),
            post_concurrency: 32,
            max_group_members: 256,
            max_group_name_chars: 100,
            conversations_page: 100,
            push_window: chrono::Duration::seconds(60),
            push_inline: true,
            attachments: AttachmentLimits::default(),
            edit_window: chrono::Duration::minutes(15),
            max_reaction_emoji: 20,
            max_reactions: 500,
            typing_interval: chrono::Duration::seconds(2),
            rates: RateLimits::default(),
            max_connections_per_user: 10,
            max_groups_per_user: 500,
            max_devices_per_user: 10,
            max_ids_per_frame: 40,
            max_sync_cursors: 1000,
        }
    }
}

/// Everything a use case needs, built once per process (a Lambda's init, or the gateway's start).
#[derive(Clone)]
pub struct App {
    pub stores: Stores,
    /// Posts frames to connections (PostToConnection).
    pub poster: Arc<dyn Poster>,
    /// Mobile push and the messages topic.
    pub notifier: Arc<dyn Notifier>,
    /// Where attachments are kept, and who signs the URLs to them.
    pub objects: Arc<dyn Objects>,
    pub limits: Limits,
    pub clock: Clock,
    /// When each (user, conversation) last had a `typing` forwarded: this process's memory.
    pub typing: Arc<crate::usecases::typing::TypingThrottle>,
}

/// A connection younger than this may still be in `$connect` (at most API Gateway's 29-second
/// integration timeout): a 410 from it does not delete its record.
const CONNECTING_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Who a fan-out reached.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Users with at least one live connection that accepted the frame.
    pub online: BTreeSet<UserId>,
    /// Users it reached on no connection (none live, or every one was gone).
    pub offline: BTreeSet<UserId>,
    /// PostToConnection calls made, how many of them found the connection gone (410), and
    /// how many failed otherwise (after the poster's own retries).
    pub posts: usize,
    pub gone: usize,
    pub failed: usize,
}

impl Delivery {
    /// Adds the result of a fan-out of the same entry to other users.
    pub fn merge(&mut self, other: Delivery) {
        self.online.extend(other.online);
        self.offline.extend(other.offline);
        self.offline.retain(|u| !self.online.contains(u));
        self.posts += other.posts;
        self.gone += other.gone;
    }
}

/// The storage ports of an [`App`], usually all backed by one store.
#[derive(Clone)]
pub struct Stores {
    pub connections: Arc<dyn Connections>,
    pub conversations: Arc<dyn Conversations>,
    pub messages: Arc<dyn MessageLog>,
    /// The batched first read of `send` and `ack`.
    pub reads: Arc<dyn WriteReads>,
    pub push_devices: Arc<dyn PushDevices>,
    /// Per-user rate limits.
    pub limiter: Arc<dyn RateLimiter>,
    /// Who blocked whom.
    pub blocks: Arc<dyn Blocks>,
    /// Reports of messages (no client action reads them).
    pub reports: Arc<dyn Reports>,
}

impl Stores {
    /// Every port served by one store.
    pub fn from_one<S>(store: Arc<S>) -> Self
    where
        S: Connections
            + Conversations
            + MessageLog
            + WriteReads
            + PushDevices
            + RateLimiter
            + Blocks
            + Reports
            + 'static,
    {
        Self {
            connections: store.clone(),
            conversations: store.clone(),
            messages: store.clone(),
            reads: store.clone(),
            push_devices: store.clone(),
            limiter: store.clone(),
            blocks: store.clone(),
            reports: store,
        }
    }

    /// A fresh in-memory store.
    pub fn in_memory() -> Self {
        Self::from_one(Arc::new(InMemoryStore::new()))
    }
}

impl App {
    /// An app over `stores`, answering through `poster`, with the real clock.
    pub fn new(stores: Stores, poster: Arc<dyn Poster>, limits: Limits) -> Self {
        Self {
            stores,
            poster,
            notifier: Arc::new(NoNotifier),
            objects: Arc::new(NoObjects),
            limits,
            clock: Arc::new(Utc::now),
            typing: Arc::default(),
        }
    }

    /// The same app, pushing offline members and publishing events through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The same app, keeping attachments in `objects`.
    pub fn with_objects(mut self, objects: Arc<dyn Objects>) -> Self {
        self.objects = objects;
        self
    }

    /// An app over one fresh in-memory store.
    pub fn in_memory(poster: Arc<dyn Poster>, limits: Limits) -> Self {
        Self::new(Stores::in_memory(), poster, limits)
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Answers the connection that made a request. A reply that cannot be delivered is logged,
    /// not retried: the client re-sends on reconnect, and every request is idempotent.
    pub async fn reply(
        &self,
        conn: &ConnectionId,
        id: Option<&serde_json::Value>,
        frame: &ServerFrame,
    ) {
        match self.poster.post(conn, &frame.to_json(id)).await {
            Ok(()) => {}
            Err(PostError::Gone) => {
                tracing::info!(connection = %conn, "reply to a closed connection dropped")
            }
            Err(e) => tracing::warn!(connection = %conn, error = %e, "reply failed"),
        }
    }

    /// Delivers `frame` to every live connection of `users`, except `skip` (the requesting one).
    /// One batched read of connections, then concurrent posts. A connection that turns out to be
    /// gone (410) is deleted, exactly that one, and does not count its user as reached.
    pub async fn deliver(
        &self,
        users: &[UserId],
        frame: &ServerFrame,
        skip: Option<&ConnectionId>,
    ) -> Result<Delivery, Error> {
        self.deliver_all(users, std::slice::from_ref(frame), skip)
            .await
    }

    /// [`deliver`](Self::deliver) of several frames, in order, after one read of connections.
    pub async fn deliver_all(
        &self,
        users: &[UserId],
        frames: &[ServerFrame],
        skip: Option<&ConnectionId>,
    ) -> Result<Delivery, Error> {
        let now = self.now();
        let conns = self.stores.connections.of_users(users, now).await?;
        let jsons: Vec<String> = frames.iter().map(|f| f.to_json(None)).collect();
        let mut delivery = Delivery::default();
        let targets: Vec<_> = conns
            .iter()
            .filter(|c| {
                let is_skipped = Some(&c.id) == skip;
                if is_skipped {
                    // The requester is online by definition; it got its own reply.
                    delivery.online.insert(c.user.clone());
                }
                !is_skipped
            })
            .collect();
        delivery.posts = targets.len() * jsons.len();
        if let [conn] = targets[..] {
            // One connection (a 1:1 message to a user on one device): nothing to run beside.
            let (conn, result) = self.post_one(conn, &jsons).await;
            self.settle(now, &mut delivery, conn, result).await;
        } else {
            // Bounded concurrency without stream-combinator closures, whose borrowed futures
            // trip the compiler's `Send` inference (rust-lang/rust#102211) when the caller is
            // spawned.
            let mut pending = targets.into_iter();
            let mut in_flight = FuturesUnordered::new();
            loop {
                while in_flight.len() < self.limits.post_concurrency.max(1) {
                    let Some(conn) = pending.next() else { break };
                    in_flight.push(self.post_one(conn, &jsons));
                }
                let Some((conn, result)) = in_flight.next().await else {
                    break;
                };
                self.settle(now, &mut delivery, conn, result).await;
            }
        }
        delivery.offline = users
            .iter()
            .filter(|u| !delivery.online.contains(*u))
            .cloned()
            .collect();
        Ok(delivery)
    }

    /// Counts one connection's posts in `delivery`: its user reached, or the connection gone
    /// (its record deleted unless it may still be connecting), or failed.
    async fn settle(
        &self,
        now: DateTime<Utc>,
        delivery: &mut Delivery,
        conn: &Connection,
        result: Result<(), PostError>,
    ) {
        match result {
            Ok(()) => {
                delivery.online.insert(conn.user.clone());
            }
            Err(PostError::Gone) if now - conn.connected_at < CONNECTING_GRACE => {
                // Still in `$connect`, where API Gateway answers 410 to a socket about to
                // open: deleting its record would leave that device without pushes. It
                // syncs once open; a truly dead one goes with a later post or its TTL.
                delivery.gone += 1;
                tracing::info!(connection = %conn.id, user = %conn.user, "410 from a connection still connecting; record kept");
            }
            Err(PostError::Gone) => {
                delivery.gone += 1;
                tracing::info!(connection = %conn.id, user = %conn.user, "stale connection removed");
                if let Err(e) = self.stores.connections.remove(&conn.user, &conn.id).await {
                    tracing::warn!(connection = %conn.id, error = %e, "could not remove stale connection");
                }
            }
            Err(e) => {
                // Not gone, just failed (throttled, 5xx, timed out, after the poster's
                // retries): this connection did not get the frame, so it does not count its
                // user as reached — a user reached nowhere else gets a push. The message is
                // stored: the device sees the gap in seqs at its next message, or syncs when
                // it reconnects.
                delivery.failed += 1;
                tracing::warn!(connection = %conn.id, user = %conn.user, error = %e, "delivery failed");
            }
        }
    }

    /// Posts `jsons` to one connection in order, stopping at the first failure.
    async fn post_one<'a>(
        &'a self,
        conn: &'a Connection,
        jsons: &'a [String],
    ) -> (&'a Connection, Result<(), PostError>) {
        for json in jsons {
            if let Err(e) = self.poster.post(&conn.id, json).await {
                return (conn, Err(e));
            }
        }
        (conn, Ok(()))
    }
}

/// The notifier of an app configured without push: registrations are refused, nothing is sent.
#[derive(Debug, Clone, Copy)]
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn register(
        &self,
        _: Platform,
        _: &str,
        _: &UserId,
        _: Option<&str>,
    ) -> Result<String, NotifyError> {
        Err(NotifyError::Unsupported(
            "push is not configured for this deployment".into(),
        ))
    }
    async fn unregister(&self, _: &str) -> Result<(), NotifyError> {
        Ok(())
    }
    async fn push(&self, _: &PushDevice, _: &Notification) -> Result<(), NotifyError> {
        Ok(())
    }
    async fn publish(&self, _: &MessageEvent) -> Result<(), NotifyError> {
        Ok(())
    }
    async fn report(&self, _: &crate::moderation::Report) -> Result<(), NotifyError> {
        Ok(())
    }
}
