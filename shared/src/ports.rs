//! Ports: the small traits the use cases need from the outside world. Each has an in-memory
//! adapter ([`crate::memory`]) and a production one; both keep the semantics written here.

use crate::domain::DeviceId;
use crate::domain::{
    Amendment, ClientMsgId, Connection, ConnectionId, ConversationId, GroupInfo, Head, Member,
    Membership, Message, NewMessage, ReceiptKind, Refusal, RequestState, Role, SentKey, Seq,
    UserId,
};
use crate::moderation::{Report, ReportId};
use crate::push::{MessageEvent, Notification, Platform, PushClaim, PushDevice};
use crate::ratelimit::{Bucket, Decision, Rate};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{HashMap, HashSet};

/// A storage backend failed (throttled, unreachable, corrupt item). The source is kept for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

/// Live connections and last-seen, one record per user (one item per user in production, so
/// the connections of many users are one batched read).
#[async_trait]
pub trait Connections: Send + Sync {
    /// Registers a connection (`$connect`; overwrites one with the same id) and records the
    /// user as seen at its `connected_at`. The user's expired connections are dropped on the way.
    /// When the user then has more than `max_live` live connections, the oldest others are
    /// dropped from the record too and returned (oldest first), for the caller to close.
    async fn put(&self, conn: &Connection, max_live: usize) -> Result<Vec<Connection>, StoreError>;
    /// Removes the connection and records the user as seen at `at` (`$disconnect`). Last-seen
    /// never moves back; removing an absent connection is not an error.
    async fn disconnect(
        &self,
        user: &UserId,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Removes exactly this connection (a post answered 410); removing an absent one is not an
    /// error. Last-seen is left alone: nobody knows when the socket died.
    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError>;
    /// The live connections (not expired at `now`) and last-seen instant of each of these
    /// users that has a record (one batched read in production).
    async fn presence(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UserId, UserPresence>, StoreError>;
    /// The live connections of these users.
    async fn of_users(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Connection>, StoreError> {
        Ok(self
            .presence(users, now)
            .await?
            .into_values()
            .flat_map(|p| p.connections)
            .collect())
    }
}

/// One user's record: live connections and when they were last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPresence {
    /// Connections not expired at the instant asked about.
    pub connections: Vec<Connection>,
    /// The latest connect or disconnect recorded.
    pub last_seen: Option<DateTime<Utc>>,
}

/// What a write path reads first, in one round trip: the caller's membership, the
/// conversation's head and, for a send, its idempotency key; for an ack, the acked message.
#[derive(Debug, Clone, Copy)]
pub struct WriteKeys<'a> {
    pub conversation: &'a ConversationId,
    pub user: &'a UserId,
    /// `send`: the caller's `client_msg_id` (is it already stored?).
    pub client_msg_id: Option<&'a ClientMsgId>,
    /// `ack`: a seq whose message to read (its author gets the receipt).
    pub message: Option<Seq>,
    /// A 1:1 `send`: the other member, to read whether either of the two blocked the other.
    pub other: Option<&'a UserId>,
}

/// The answer to [`WriteKeys`], read strongly consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteContext {
    pub membership: Option<Membership>,
    /// The conversation's latest seq (0 before its first message).
    pub last_seq: Seq,
    /// How many chat messages the log holds (the head's count, for unread counts).
    pub chats: u64,
    /// What the `client_msg_id` already stored, if anything (and it has not expired at `now`).
    pub sent: Option<SentKey>,
    /// The message asked for, when it exists (and has not expired at `now`).
    pub message: Option<Message>,
    /// The log's chat count up to and including that message (what a `read` pointer there
    /// has read).
    pub message_chats: u64,
    /// Whether [`WriteKeys::other`] and the user block each other.
    pub blocks: BlockState,
}

/// Whether two users block each other, as seen from one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockState {
    /// I blocked them.
    pub by_me: bool,
    /// They blocked me.
    pub by_them: bool,
}

impl BlockState {
    /// Either blocked the other.
    pub fn any(self) -> bool {
        self.by_me || self.by_them
    }
}

/// What a group change reads first, in one round trip.
#[derive(Debug, Clone, Copy)]
pub struct GroupKeys<'a> {
    pub conversation: &'a ConversationId,
    /// The caller, whose `client_msg_id` is looked up.
    pub user: &'a UserId,
    pub client_msg_id: Option<&'a ClientMsgId>,
    /// Users whose number of groups is needed (those the change would add); whether each
    /// blocked the caller is read with it.
    pub counts_of: &'a [UserId],
}

/// The answer to [`GroupKeys`], read strongly consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupContext {
    /// The group's metadata; `None` when no such group exists.
    pub info: Option<GroupInfo>,
    /// Its members now (with roles and join points), in user order.
    pub members: Vec<Member>,
    /// The conversation's latest seq.
    pub last_seq: Seq,
    /// How many chat messages the log holds (the head's count).
    pub chats: u64,
    /// What the caller's `client_msg_id` already stored, if anything.
    pub sent: Option<SentKey>,
    /// How many groups each of [`GroupKeys::counts_of`] is in.
    pub groups_of: HashMap<UserId, usize>,
    /// Those of [`GroupKeys::counts_of`] who blocked the caller.
    pub blocked_by: HashSet<UserId>,
    /// Those of [`GroupKeys::counts_of`] who have a 1:1 conversation with the caller that is
    /// not a request to them (they accepted it, or wrote first): their contacts, for whom a
    /// group the caller adds them to is no message request.
    pub contacts: HashSet<UserId>,
}

impl GroupContext {
    /// The member `user`, if they are one.
    pub fn member(&self, user: &UserId) -> Option<&Member> {
        self.members.iter().find(|m| &m.user == user)
    }
}

/// The reads the write paths start with, batched across tables (one BatchGetItem in
/// production): `send` and `ack` ([`read_for_write`](Self::read_for_write)), group changes
/// ([`read_for_group`](Self::read_for_group)).
#[async_trait]
pub trait WriteReads: Send + Sync {
    async fn read_for_write(
        &self,
        keys: WriteKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<WriteContext, StoreError>;

    async fn read_for_group(
        &self,
        keys: GroupKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<GroupContext, StoreError>;
}

/// Membership of conversations (with roles and each member's delivered/read pointers) and
/// group metadata. Memberships change only with an append ([`MessageLog::append_with`] and its
/// [`Effects`]): atomically with the message or event that records the change.
#[async_trait]
pub trait Conversations: Send + Sync {
    /// The user's membership, or `None` when they are not a member.
    async fn membership(
        &self,
        conv: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Every member of the conversation now, with role and join point, in user order; read
    /// strongly consistent, so a member removed by a change that has completed is never in it.
    async fn members(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError>;
    /// Every member's membership, pointers included (the member list, then the items: a pull,
    /// never on the send or ack path).
    async fn pointers(&self, conv: &ConversationId) -> Result<Vec<Membership>, StoreError>;
    /// Every conversation the user belongs to (one query in production).
    async fn of_user(&self, user: &UserId) -> Result<Vec<Membership>, StoreError>;
    /// Moves one pointer forward to `seq`; returns `false` (and changes nothing) when it already
    /// stood at or past `seq`, or when the user is not a member. Pointers never move back.
    /// Moving `read` also records `chats`, the log's chat count at `seq` (for unread counts).
    async fn advance(
        &self,
        conv: &ConversationId,
        user: &UserId,
        kind: ReceiptKind,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError>;
    /// Moves both pointers to `seq` (never back), recording `chats` with `read`: the user has
    /// everything up to their own new message (sending reads). `false` when `read` already stood
    /// there or the user is not a member.
    async fn read_through(
        &self,
        conv: &ConversationId,
        user: &UserId,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError>;
    /// Mutes pushes of the conversation for the user until `until`, or unmutes it (`None`);
    /// `false` when the user is not a member.
    async fn set_muted(
        &self,
        conv: &ConversationId,
        user: &UserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// Sets the user's request standing in the conversation and, with `peer`, the other
    /// member's, together (one transaction); `false` (and nothing changed) when either is not a
    /// member.
    async fn set_request(
        &self,
        conv: &ConversationId,
        user: &UserId,
        state: RequestState,
        peer: Option<(&UserId, RequestState)>,
    ) -> Result<bool, StoreError>;
    /// Metadata of those of `convs` that are groups.
    async fn groups(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, GroupInfo>, StoreError>;
}

/// Membership changes an append makes atomically with its message: all of them and the message,
/// or none of them and nothing. Empty for an ordinary message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The members of a 1:1 conversation, made members from seq 1 with this request standing
    /// unless they are already (never refused): a 1:1 conversation exists from its first stored
    /// message on.
    pub direct: Vec<(UserId, RequestState)>,
    /// Members whose request standing becomes [`RequestState::Accepted`] (a reply to a request
    /// accepts it); each must be a member.
    pub accept: Vec<UserId>,
    /// A group change.
    pub group: Option<GroupChange>,
}

/// What a group's membership event changes. Joining members read from the event's seq on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChange {
    /// The group is created by this event (refused with [`GroupRefusal::GroupExists`] if it exists).
    pub create: Option<GroupInfo>,
    /// Its new name.
    pub rename: Option<String>,
    /// New members and their roles; each must not be a member yet.
    pub join: Vec<(UserId, Role)>,
    /// Those of `join` for whom the group is a message request ([`RequestState::Pending`]).
    pub requests: Vec<UserId>,
    /// Members who leave (or are removed); each must be a member.
    pub leave: Vec<UserId>,
    /// Members made admin; each must be a member.
    pub promote: Vec<UserId>,
    /// Who must be a member (`None`) or an admin (`Some(Role::Admin)`) for the change to apply:
    /// the caller's rights, and the other admin a leaving admin counts on.
    pub require: Vec<(UserId, Option<Role>)>,
    /// With `join`: most members the group may have afterwards.
    pub max_members: usize,
    /// With `join`: most groups each new member may be in afterwards.
    pub max_groups_per_user: usize,
}

impl GroupChange {
    /// The membership this change gives `user`, joining as `role` at the event `seq` (at `at`,
    /// with `chats` chat messages in the log up to it): nothing unread before it, and a message
    /// request when they are one of [`requests`](Self::requests).
    pub fn joining(
        &self,
        conv: &ConversationId,
        user: &UserId,
        role: Role,
        (seq, chats): (Seq, u64),
        at: DateTime<Utc>,
    ) -> Membership {
        let request = match self.requests.contains(user) {
            true => RequestState::Pending,
            false => RequestState::Accepted,
        };
        Membership::new(conv, user, role, seq, at)
            .with_read_chats(chats)
            .with_request(request)
    }
}

/// Why an append with [`Effects`] stored nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRefusal {
    /// A membership condition no longer held (the group changed since it was read): read it
    /// again and decide again.
    GroupChanged,
    /// This user is in the most groups they may be in.
    TooManyGroups(UserId),
    /// The group to create exists already.
    GroupExists,
}

/// A message an append stored (or had stored: the original of a duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub message: Message,
    /// How many chat messages the log holds up to and including this entry.
    pub chats: u64,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Append {
    /// Stored under a new seq, with its effects.
    Stored(Appended),
    /// The `(sender, client_msg_id)` had stored this same request before: the original message;
    /// nothing new was stored or changed.
    Duplicate(Appended),
    /// The `(sender, client_msg_id)` belongs to another request (another action, conversation
    /// or content): nothing was stored or changed.
    Conflict(SentKey),
    /// A condition of the effects did not hold: nothing was stored or changed.
    Refused(GroupRefusal),
}

impl Append {
    /// The message stored, or the original of a duplicate.
    pub fn appended(&self) -> Option<&Appended> {
        match self {
            Self::Stored(a) | Self::Duplicate(a) => Some(a),
            Self::Conflict(_) | Self::Refused(_) => None,
        }
    }

    /// The message stored, or the original of a duplicate.
    pub fn message(&self) -> Option<&Message> {
        self.appended().map(|a| &a.message)
    }
}

/// The result of an amendment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amended {
    /// Recorded as `entry`; `message` is the message as it now is (`rev` = the entry's seq).
    Applied {
        entry: Box<Message>,
        message: Message,
        /// The files the change took off the message (a deletion's): their objects are the
        /// caller's to delete.
        removed: Vec<crate::attachments::Attachment>,
    },
    /// The message already was that way: nothing was written.
    Unchanged { message: Message },
    /// The rules refuse it for the message as it is; nothing was written.
    Refused(Refusal),
    /// No live message has that seq: past the head (`head` is the latest seq), or expired.
    Missing { head: Seq },
}

/// The per-conversation message log.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Stores the message under the conversation's next seq, atomically with `effects`:
    /// concurrent appends get distinct, gapless seqs and a failure leaves no hole. A second
    /// append with the same `(from, client_msg_id)` stores nothing: the original when it is the
    /// same request (same [`RequestDigest`](crate::domain::RequestDigest)), a conflict
    /// otherwise. `seen` is the head (`last_seq` and its `chats` count; the preview is not
    /// needed) a caller has just read with the idempotency key (and found no key,
    /// [`WriteReads`]): the first attempt does not read them again.
    async fn append_with(
        &self,
        msg: NewMessage,
        effects: &Effects,
        seen: Option<Head>,
    ) -> Result<Append, StoreError>;
    /// [`append_with`](Self::append_with) without effects or a known head.
    async fn append(&self, msg: NewMessage) -> Result<Append, StoreError> {
        self.append_with(msg, &Effects::default(), None).await
    }
    /// Applies an amendment (edit, delete, reaction) to its message and appends the entry that
    /// records it, atomically: the entry's seq is the conversation's next (gapless, as for
    /// [`MessageLog::append`]), and the change is computed by [`Amendment::apply`] on the
    /// message's current state, so concurrent amendments of one message never lose each other.
    async fn amend(&self, amendment: &Amendment) -> Result<Amended, StoreError>;
    /// The head of each conversation (a default head for one with no messages); strongly
    /// consistent, one batched read in production.
    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError>;
    /// Latest seq of each conversation (0 for one with no messages).
    async fn last_seqs(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Seq>, StoreError> {
        Ok(self
            .heads(convs)
            .await?
            .into_iter()
            .map(|(c, h)| (c, h.last_seq))
            .collect())
    }
    /// The messages with these seqs that exist and have not expired at `now`, in seq order;
    /// strongly consistent, one batched read per 100 in production.
    async fn by_seqs(
        &self,
        conv: &ConversationId,
        seqs: &[Seq],
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages with seq > `after`, oldest first, strongly consistent, without
    /// messages expired at `now`.
    async fn after(
        &self,
        conv: &ConversationId,
        after: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages with seq < `before`, newest first, without expired ones.
    async fn before(
        &self,
        conv: &ConversationId,
        before: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError>;
}

/// Why a post to a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The connection no longer exists (API Gateway's 410 GoneException).
    #[error("connection is gone")]
    Gone,
    #[error("post failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Delivers a frame to one connection (API Gateway's PostToConnection), or closes it
/// (DeleteConnection).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError>;
    /// Closes the connection; one that is already gone is [`PostError::Gone`].
    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError>;
}

/// Per-user token buckets ([`crate::ratelimit`]), shared by every process that serves the user.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one token from `user`'s `bucket` at `now` (GCRA, [`Rate::decide`]): allowed, or
    /// limited with nothing taken. Concurrent takes never hand out more than the rate allows.
    async fn take(
        &self,
        user: &UserId,
        bucket: Bucket,
        rate: Rate,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError>;
}

/// Someone the user blocked, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedUser {
    pub user: UserId,
    pub at: DateTime<Utc>,
}

/// Who blocked whom: one record per (blocker, blocked) pair, private to the blocker. The
/// checks that matter most read them with other keys ([`WriteReads`]); these are the rest.
#[async_trait]
pub trait Blocks: Send + Sync {
    /// Records that `blocker` blocked `blocked` at `at`; `false` (and the first instant kept)
    /// when they already had.
    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Forgets the block; `false` when there was none.
    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool, StoreError>;
    /// Whom `blocker` blocked, in user id order, after `after`: at most `limit`, and whether
    /// there are more (one query in production).
    async fn blocked(
        &self,
        blocker: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<BlockedUser>, bool), StoreError>;
    /// The user's membership of `conv`, and whether they and `other` block each other: one
    /// batched read in production (what a 1:1's typing and amendments read instead of the
    /// membership alone).
    async fn membership_and_blocks(
        &self,
        conv: &ConversationId,
        user: &UserId,
        other: &UserId,
    ) -> Result<(Option<Membership>, BlockState), StoreError>;
    /// Which of these (blocker, blocked) pairs stand (one batched read in production).
    async fn standing(
        &self,
        pairs: &[(UserId, UserId)],
    ) -> Result<HashSet<(UserId, UserId)>, StoreError>;
}

/// Reports of messages, kept where no client action reads them.
#[async_trait]
pub trait Reports: Send + Sync {
    /// Stores the report unless one with its id exists; `false` (nothing written) when it does.
    async fn put_report(&self, report: &Report) -> Result<bool, StoreError>;
    /// The report with this id.
    async fn report(&self, id: &ReportId) -> Result<Option<Report>, StoreError>;
    /// The reports made on `day`, oldest first (one query per 1 MB in production).
    async fn reports_of_day(&self, day: NaiveDate) -> Result<Vec<Report>, StoreError>;
}

/// Devices registered for push, and the claims that coalesce pushes.
#[async_trait]
pub trait PushDevices: Send + Sync {
    /// Registers (or replaces) a device, and records it as the holder of its token.
    async fn put(&self, device: &PushDevice) -> Result<(), StoreError>;
    async fn get(&self, user: &UserId, device: &DeviceId)
    -> Result<Option<PushDevice>, StoreError>;
    /// Forgets a device; returns what was registered.
    async fn remove(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError>;
    /// Which device last registered this token (as [`put`](Self::put) recorded it), if any.
    async fn token_holder(
        &self,
        platform: Platform,
        token: &str,
    ) -> Result<Option<(UserId, DeviceId)>, StoreError>;
    /// Forgets a device only while it is registered with this token; returns what was removed.
    async fn remove_if_token(
        &self,
        user: &UserId,
        device: &DeviceId,
        token: &str,
    ) -> Result<Option<PushDevice>, StoreError>;
    /// Every registered device of these users.
    async fn of_users(&self, users: &[UserId]) -> Result<Vec<PushDevice>, StoreError>;
    /// Claims the one push allowed for (user, device, conversation) until the user reads on:
    /// `true` (and the claim is recorded) unless a claim stands that was made after
    /// `not_before` for a seq beyond the user's `acked` pointer.
    async fn claim(&self, claim: &PushClaim) -> Result<bool, StoreError>;
    /// Drops the claim (the push failed): the next message pushes again.
    async fn release(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
    ) -> Result<(), StoreError>;
}

/// Why a push-platform call failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The platform no longer accepts the token (SNS `EndpointDisabled`): forget the device.
    #[error("endpoint disabled: the platform rejected the token")]
    Disabled,
    /// The endpoint no longer exists.
    #[error("endpoint not found")]
    NotFound,
    /// This deployment has no platform application for what was asked.
    #[error("{0}")]
    Unsupported(String),
    #[error("push failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Mobile push and the messages topic (SNS on AWS, a recorder when embedded).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Creates the endpoint of a device token, or updates `existing` to this token and
    /// re-enables it; returns the endpoint id.
    async fn register(
        &self,
        platform: Platform,
        token: &str,
        user: &UserId,
        existing: Option<&str>,
    ) -> Result<String, NotifyError>;
    /// Deletes an endpoint; deleting an absent one succeeds.
    async fn unregister(&self, endpoint: &str) -> Result<(), NotifyError>;
    /// Sends one notification to one device.
    async fn push(
        &self,
        device: &PushDevice,
        notification: &Notification,
    ) -> Result<(), NotifyError>;
    /// Publishes a stored message's event to the topic.
    async fn publish(&self, event: &MessageEvent) -> Result<(), NotifyError>;
    /// Publishes a stored report to the moderation topic (nothing when none is configured).
    async fn report(&self, report: &Report) -> Result<(), NotifyError>;
}

/// Why an object-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// This deployment has no object store (no bucket configured).
    #[error("attachments are not enabled on this deployment")]
    NotConfigured,
    #[error("object store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where attachments are kept (S3 on AWS and MiniStack, a directory or memory when embedded),
/// and the signed forms and URLs clients use to reach it directly. Objects are created only
/// through the forms ([`upload_form`](Self::upload_form)), never by the server.
#[async_trait]
pub trait Objects: Send + Sync {
    /// A presigned POST that can create exactly `form`'s object until `form.expires_at` (or
    /// earlier, when the signer's credentials expire sooner: the answer says when), signed at
    /// `now`.
    async fn upload_form(
        &self,
        form: &crate::attachments::UploadForm,
        now: DateTime<Utc>,
    ) -> Result<crate::attachments::PresignedPost, ObjectError>;
    /// A presigned GET of `key`, served with `disposition` as its `Content-Disposition`, signed
    /// at `now` and valid until `expires_at` (whole seconds; earlier when the signer's
    /// credentials expire sooner: the answer says when).
    async fn download_url(
        &self,
        key: &str,
        disposition: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<crate::attachments::SignedUrl, ObjectError>;
    /// What the store holds under `key` (S3's HeadObject), or `None`.
    async fn head(&self, key: &str) -> Result<Option<crate::attachments::ObjectInfo>, ObjectError>;
    /// Marks the object as attached to a message, so it is no longer deleted as an abandoned
    /// upload (S3: its `state=pending` tag is removed). Idempotent.
    async fn mark_attached(&self, key: &str) -> Result<(), ObjectError>;
    /// Deletes the object; deleting an absent one succeeds.
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;
}

/// The object store of a deployment without one: every call is refused.
#[derive(Debug, Clone, Copy)]
pub struct NoObjects;

#[async_trait]
impl Objects for NoObjects {
    async fn upload_form(
        &self,
        _: &crate::attachments::UploadForm,
        _: DateTime<Utc>,
    ) -> Result<crate::attachments::PresignedPost, ObjectError> {
        Err(ObjectError::NotConfigured)
    }
    async fn download_url(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<crate::attachments::SignedUrl, ObjectError> {
        Err(ObjectError::NotConfigured)
    }
    async fn head(&self, _: &str) -> Result<Option<crate::attachments::ObjectInfo>, ObjectError> {
        Err(ObjectError::NotConfigured)
    }
    async fn mark_attached(&self, _: &str) -> Result<(), ObjectError> {
        Err(ObjectError::NotConfigured)
    }
    async fn delete(&self, _: &str) -> Result<(), ObjectError> {
        Err(ObjectError::NotConfigured)
    }
}
