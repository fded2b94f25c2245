//! Adapter layer: in-memory implementations of every storage port, for unit tests and the
//! embedded gateway. One lock per store makes each operation atomic, which gives the same
//! guarantees the DynamoDB adapters get from conditional writes and transactions.

use crate::domain::DeviceId;
use crate::domain::{
    Amendment, ClientMsgId, Connection, ConnectionId, ConversationId, GroupInfo, Head, Member,
    Membership, Message, NewMessage, ReceiptKind, RequestState, Role, SentKey, Seq, UserId,
};
use crate::moderation::{Report, ReportId};
use crate::ports::{
    Amended, Append, Appended, BlockState, BlockedUser, Blocks, Connections, Conversations,
    Effects, GroupContext, GroupKeys, GroupRefusal, MessageLog, PushDevices, RateLimiter, Reports,
    StoreError, UserPresence, WriteContext, WriteKeys, WriteReads,
};
use crate::push::{Platform, PushClaim, PushDevice};
use crate::ratelimit::{Bucket, Decision, Rate};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// Every storage port in memory. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

/// The state's hash maps: hashed with foldhash (what hashbrown uses by default), seeded per
/// process. SipHash, std's default, resists hash flooding from untrusted keys at several times
/// the cost per lookup; this store serves one developer's loopback gateway and the tests, and
/// its keys are hashed on every send and ack (docs/benchmarks.md, finding 12).
type Map<K, V> = HashMap<K, V, FoldHash>;
type FoldHash = foldhash::fast::RandomState;

#[derive(Debug, Default)]
struct State {
    /// user → their record: live connections and last-seen (one item per user on DynamoDB)
    users: Map<UserId, UserRecord>,
    /// conversation → user → membership (hashed by conversation: every send and ack looks one
    /// up; a user's conversations are sorted when listed)
    members: Map<ConversationId, BTreeMap<UserId, Membership>>,
    logs: Map<ConversationId, Log>,
    /// (sender, client_msg_id) → where the message was stored, for which request, and until
    /// when the key stands for it (`Message::key_expires_at`)
    sent: Map<(UserId, ClientMsgId), (SentKey, DateTime<Utc>)>,
    groups: Map<ConversationId, GroupInfo>,
    push_devices: Map<UserId, BTreeMap<DeviceId, PushDevice>>,
    /// (platform, token) → the device that last registered it
    token_holders: Map<(Platform, String), (UserId, DeviceId)>,
    /// (user, device, conversation) → when the standing push claim was made, and for which seq
    push_claims: Map<(UserId, DeviceId, ConversationId), (DateTime<Utc>, Seq)>,
    /// (user, bucket) → when that token bucket is full again
    buckets: Map<(UserId, Bucket), DateTime<Utc>>,
    /// blocker → blocked → since when
    blocks: Map<UserId, BTreeMap<UserId, DateTime<Utc>>>,
    /// every report, by id
    reports: BTreeMap<ReportId, Report>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `a` and `b` contacts — the accepted 1:1 of two users who already talk — without
    /// the messages that made them so (for tests that start from there).
    #[cfg(test)]
    pub(crate) fn seed_contacts(&self, a: &UserId, b: &UserId) {
        let conv = ConversationId::direct(a, b);
        let at = chrono::DateTime::UNIX_EPOCH;
        let mut s = self.lock();
        let members = s.members.entry(conv.clone()).or_default();
        for u in [a, b] {
            members.insert(u.clone(), Membership::new(&conv, u, Role::Member, 1, at));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied operation behind (every
        // operation mutates after its checks), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Whether `blocker` blocked `blocked`.
    fn blocks(&self, blocker: &UserId, blocked: &UserId) -> bool {
        self.blocks
            .get(blocker)
            .is_some_and(|b| b.contains_key(blocked))
    }

    /// What the key (sender, `client_msg_id`) stands for at `at`: nothing once its window has
    /// passed or its message has expired (the DynamoDB store's key item says the same).
    fn sent_key(&self, key: &(UserId, ClientMsgId), at: DateTime<Utc>) -> Option<SentKey> {
        let (sent, until) = self.sent.get(key)?;
        (*until > at).then(|| sent.clone())
    }

    /// How many groups `user` is in.
    fn groups_of(&self, user: &UserId) -> usize {
        self.members
            .iter()
            .filter(|(c, m)| c.is_group() && m.contains_key(user))
            .count()
    }

    /// Why `effects` cannot apply to `conv` now, if they cannot.
    fn refusal(&self, conv: &ConversationId, effects: &Effects) -> Option<GroupRefusal> {
        let change = effects.group.as_ref()?;
        let empty = BTreeMap::new();
        let roster = self.members.get(conv).unwrap_or(&empty);
        if change.create.is_some() && (self.groups.contains_key(conv) || !roster.is_empty()) {
            return Some(GroupRefusal::GroupExists);
        }
        // Any other change needs the group (its roster, on DynamoDB) to exist.
        if change.create.is_none() && !self.groups.contains_key(conv) {
            return Some(GroupRefusal::GroupChanged);
        }
        let holds = change.require.iter().all(|(u, role)| match roster.get(u) {
            Some(m) => role.is_none_or(|r| m.role == r),
            None => false,
        }) && change.join.iter().all(|(u, _)| !roster.contains_key(u))
            && change
                .leave
                .iter()
                .chain(&change.promote)
                .all(|u| roster.contains_key(u));
        let size = roster.len() + change.join.len() - change.leave.len().min(roster.len());
        if !holds
            || (change.max_members > 0 && !change.join.is_empty() && size > change.max_members)
        {
            return Some(GroupRefusal::GroupChanged);
        }
        let max = change.max_groups_per_user;
        change
            .join
            .iter()
            .find(|(u, _)| max > 0 && self.groups_of(u) >= max)
            .map(|(u, _)| GroupRefusal::TooManyGroups(u.clone()))
    }

    /// Applies `effects` of the message stored as `seq`, with `chats` chat messages in the log up
    /// to it (their conditions hold). New group members have nothing unread before it.
    fn apply(
        &mut self,
        conv: &ConversationId,
        effects: &Effects,
        seq: Seq,
        chats: u64,
        at: DateTime<Utc>,
    ) {
        let members = self.members.entry(conv.clone()).or_default();
        for (u, request) in &effects.direct {
            members.entry(u.clone()).or_insert_with(|| {
                Membership::new(conv, u, Role::Member, 1, at).with_request(*request)
            });
        }
        for u in &effects.accept {
            if let Some(m) = members.get_mut(u) {
                m.request = RequestState::Accepted;
            }
        }
        let Some(change) = &effects.group else {
            return;
        };
        for u in &change.leave {
            members.remove(u);
        }
        for (u, role) in &change.join {
            let m = change.joining(conv, u, *role, (seq, chats), at);
            members.insert(u.clone(), m);
        }
        for u in &change.promote {
            if let Some(m) = members.get_mut(u) {
                m.role = Role::Admin;
            }
        }
        if let Some(info) = &change.create {
            self.groups.insert(conv.clone(), info.clone());
        }
        if let (Some(name), Some(info)) = (&change.rename, self.groups.get_mut(conv)) {
            info.name = name.clone();
        }
    }
}

/// One user's connections and last-seen instant.
#[derive(Debug, Default)]
struct UserRecord {
    connections: BTreeMap<ConnectionId, Connection>,
    last_seen: Option<DateTime<Utc>>,
}

impl UserRecord {
    fn seen(&mut self, at: DateTime<Utc>) {
        self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
    }
}

/// One conversation's log: entry `seq` at index `seq - 1`, with the chat count at each entry.
#[derive(Debug, Default)]
struct Log {
    entries: Vec<Message>,
    chats: Vec<u64>,
    head: Head,
}

impl Log {
    fn push(&mut self, m: Message) -> u64 {
        self.head = self.head.appended(&m);
        self.entries.push(m);
        self.chats.push(self.head.chats);
        self.head.chats
    }

    fn get(&self, seq: Seq) -> Option<&Message> {
        self.entries.get(usize::try_from(seq).ok()?.checked_sub(1)?)
    }
}

fn live(m: &Message, now: DateTime<Utc>) -> bool {
    m.expires_at.is_none_or(|t| t > now)
}

#[async_trait]
impl Connections for InMemoryStore {
    async fn put(&self, conn: &Connection, max_live: usize) -> Result<Vec<Connection>, StoreError> {
        let mut s = self.lock();
        let record = s.users.entry(conn.user.clone()).or_default();
        record
            .connections
            .retain(|_, c| c.expires_at > conn.connected_at);
        record.connections.insert(conn.id.clone(), conn.clone());
        record.seen(conn.connected_at);
        let over = record.connections.len().saturating_sub(max_live);
        if max_live == 0 || over == 0 {
            return Ok(Vec::new());
        }
        let mut others: Vec<Connection> = record
            .connections
            .values()
            .filter(|c| c.id != conn.id)
            .cloned()
            .collect();
        others.sort_by(|a, b| (a.connected_at, &a.id).cmp(&(b.connected_at, &b.id)));
        others.truncate(over);
        for c in &others {
            record.connections.remove(&c.id);
        }
        Ok(others)
    }

    async fn disconnect(
        &self,
        user: &UserId,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        let record = s.users.entry(user.clone()).or_default();
        record.connections.remove(id);
        record.seen(at);
        Ok(())
    }

    async fn remove(&self, user: &UserId, id: &ConnectionId) -> Result<(), StoreError> {
        if let Some(record) = self.lock().users.get_mut(user) {
            record.connections.remove(id);
        }
        Ok(())
    }

    async fn presence(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UserId, UserPresence>, StoreError> {
        let s = self.lock();
        Ok(users
            .iter()
            .filter_map(|u| s.users.get(u).map(|r| (u, r)))
            .map(|(u, r)| {
                let connections = r
                    .connections
                    .values()
                    .filter(|c| c.expires_at > now)
                    .cloned()
                    .collect();
                let presence = UserPresence {
                    connections,
                    last_seen: r.last_seen,
                };
                (u.clone(), presence)
            })
            .collect())
    }

    /// As the port's default, without building each user's presence first (every fan-out
    /// asks this).
    async fn of_users(
        &self,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Connection>, StoreError> {
        let s = self.lock();
        // Each user once, as the port's default (a map by user) has it.
        let mut seen = HashSet::with_capacity_and_hasher(users.len(), FoldHash::default());
        Ok(users
            .iter()
            .filter(|u| seen.insert(*u))
            .filter_map(|u| s.users.get(u))
            .flat_map(|r| r.connections.values())
            .filter(|c| c.expires_at > now)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl WriteReads for InMemoryStore {
    async fn read_for_write(
        &self,
        keys: WriteKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<WriteContext, StoreError> {
        let s = self.lock();
        let conv = keys.conversation;
        let empty = Log::default();
        let log = s.logs.get(conv).unwrap_or(&empty);
        let sent = keys
            .client_msg_id
            .and_then(|cmid| s.sent_key(&(keys.user.clone(), cmid.clone()), now));
        let at = keys.message.and_then(|seq| Some((seq, log.get(seq)?)));
        let message = at.map(|(_, m)| m).filter(|m| live(m, now)).cloned();
        let message_chats = at.map_or(0, |(seq, _)| log.chats[(seq - 1) as usize]);
        let blocks = keys
            .other
            .map_or_else(BlockState::default, |other| BlockState {
                by_me: s.blocks(keys.user, other),
                by_them: s.blocks(other, keys.user),
            });
        Ok(WriteContext {
            blocks,
            membership: s.members.get(conv).and_then(|m| m.get(keys.user)).cloned(),
            last_seq: log.head.last_seq,
            chats: log.head.chats,
            sent,
            message,
            message_chats,
        })
    }

    async fn read_for_group(
        &self,
        keys: GroupKeys<'_>,
        now: DateTime<Utc>,
    ) -> Result<GroupContext, StoreError> {
        let s = self.lock();
        let conv = keys.conversation;
        Ok(GroupContext {
            info: s.groups.get(conv).cloned(),
            members: s
                .members
                .get(conv)
                .map(|m| m.values().map(Member::from).collect())
                .unwrap_or_default(),
            last_seq: s.logs.get(conv).map_or(0, |l| l.head.last_seq),
            chats: s.logs.get(conv).map_or(0, |l| l.head.chats),
            sent: keys
                .client_msg_id
                .and_then(|cmid| s.sent_key(&(keys.user.clone(), cmid.clone()), now)),
            groups_of: keys
                .counts_of
                .iter()
                .map(|u| (u.clone(), s.groups_of(u)))
                .collect(),
            blocked_by: keys
                .counts_of
                .iter()
                .filter(|u| s.blocks(u, keys.user))
                .cloned()
                .collect(),
            contacts: keys
                .counts_of
                .iter()
                .filter(|u| {
                    let direct = ConversationId::direct(u, keys.user);
                    s.members
                        .get(&direct)
                        .and_then(|m| m.get(*u))
                        .is_some_and(|m| !m.request.is_incoming())
                })
                .cloned()
                .collect(),
        })
    }
}

#[async_trait]
impl Conversations for InMemoryStore {
    async fn membership(
        &self,
        conv: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(self
            .lock()
            .members
            .get(conv)
            .and_then(|m| m.get(user))
            .cloned())
    }

    async fn members(&self, conv: &ConversationId) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .lock()
            .members
            .get(conv)
            .map(|m| m.values().map(Member::from).collect())
            .unwrap_or_default())
    }

    async fn pointers(&self, conv: &ConversationId) -> Result<Vec<Membership>, StoreError> {
        Ok(self
            .lock()
            .members
            .get(conv)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn of_user(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        let mut mine: Vec<Membership> = self
            .lock()
            .members
            .values()
            .filter_map(|m| m.get(user))
            .cloned()
            .collect();
        // In conversation order, as the DynamoDB query returns them.
        mine.sort_unstable_by(|a, b| a.conversation.cmp(&b.conversation));
        Ok(mine)
    }

    async fn advance(
        &self,
        conv: &ConversationId,
        user: &UserId,
        kind: ReceiptKind,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(m) = s.members.get_mut(conv).and_then(|m| m.get_mut(user)) else {
            return Ok(false);
        };
        let pointer = match kind {
            ReceiptKind::Delivered => &mut m.delivered,
            ReceiptKind::Read => &mut m.read,
        };
        if *pointer >= seq {
            return Ok(false);
        }
        *pointer = seq;
        if kind == ReceiptKind::Read {
            m.read_chats = chats;
        }
        Ok(true)
    }

    async fn read_through(
        &self,
        conv: &ConversationId,
        user: &UserId,
        seq: Seq,
        chats: u64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(m) = s.members.get_mut(conv).and_then(|m| m.get_mut(user)) else {
            return Ok(false);
        };
        m.delivered = m.delivered.max(seq);
        if m.read >= seq {
            return Ok(false);
        }
        m.read = seq;
        m.read_chats = chats;
        Ok(true)
    }

    async fn set_muted(
        &self,
        conv: &ConversationId,
        user: &UserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.members.get_mut(conv).and_then(|m| m.get_mut(user)) {
            Some(m) => {
                m.muted_until = until;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_request(
        &self,
        conv: &ConversationId,
        user: &UserId,
        state: RequestState,
        peer: Option<(&UserId, RequestState)>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(members) = s.members.get_mut(conv) else {
            return Ok(false);
        };
        let changes: Vec<(&UserId, RequestState)> =
            [(user, state)].into_iter().chain(peer).collect();
        if changes.iter().any(|(u, _)| !members.contains_key(*u)) {
            return Ok(false);
        }
        for (u, state) in changes {
            members.get_mut(u).expect("checked").request = state;
        }
        Ok(true)
    }

    async fn groups(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, GroupInfo>, StoreError> {
        let s = self.lock();
        Ok(convs
            .iter()
            .filter_map(|c| s.groups.get(c).map(|g| (c.clone(), g.clone())))
            .collect())
    }
}

#[async_trait]
impl MessageLog for InMemoryStore {
    async fn append_with(
        &self,
        msg: NewMessage,
        effects: &Effects,
        _seen: Option<Head>,
    ) -> Result<Append, StoreError> {
        let mut s = self.lock();
        let key = (msg.from.clone(), msg.client_msg_id.clone());
        if let Some(sent) = s.sent_key(&key, msg.sent_at) {
            if !sent.is_same_request(&msg.conversation, &msg.digest) {
                return Ok(Append::Conflict(sent));
            }
            let log = s.logs.get(&sent.conversation);
            let original = log.and_then(|l| l.get(sent.seq)).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("{}#{} missing", sent.conversation, sent.seq))
            })?;
            let chats = log.map_or(0, |l| l.chats[(sent.seq - 1) as usize]);
            return Ok(Append::Duplicate(Appended {
                message: original,
                chats,
            }));
        }
        if let Some(refusal) = s.refusal(&msg.conversation, effects) {
            return Ok(Append::Refused(refusal));
        }
        let conv = msg.conversation.clone();
        let seq = s.logs.get(&conv).map_or(0, |l| l.head.last_seq) + 1;
        let (digest, at) = (msg.digest.clone(), msg.sent_at);
        let message = msg.stored_as(seq);
        let key_until = message.key_expires_at();
        let chats = s
            .logs
            .entry(conv.clone())
            .or_default()
            .push(message.clone());
        s.apply(&conv, effects, seq, chats, at);
        let sent = SentKey {
            conversation: conv,
            seq,
            digest: Some(digest),
        };
        s.sent.insert(key, (sent, key_until));
        Ok(Append::Stored(Appended { message, chats }))
    }

    async fn amend(&self, a: &Amendment) -> Result<Amended, StoreError> {
        let mut s = self.lock();
        let Some(log) = s.logs.get_mut(&a.conversation) else {
            return Ok(Amended::Missing { head: 0 });
        };
        let now = a.at;
        let Some(current) = log.get(a.seq).filter(|m| live(m, now)) else {
            return Ok(Amended::Missing {
                head: log.head.last_seq,
            });
        };
        let (mut message, event) = match a.apply(current) {
            Err(refusal) => return Ok(Amended::Refused(refusal)),
            Ok(None) => {
                return Ok(Amended::Unchanged {
                    message: current.clone(),
                });
            }
            Ok(Some(change)) => change,
        };
        let removed = current.files_removed_by(&message);
        let entry = a.entry(event, log.head.last_seq + 1);
        message.rev = Some(entry.seq);
        let head = log.head.amended(&entry, &message);
        log.push(entry.clone());
        log.head = head;
        log.entries[(a.seq - 1) as usize] = message.clone();
        Ok(Amended::Applied {
            entry: Box::new(entry),
            removed,
            message,
        })
    }

    async fn heads(
        &self,
        convs: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Head>, StoreError> {
        let s = self.lock();
        Ok(convs
            .iter()
            .map(|c| {
                let head = s.logs.get(c).map(|l| l.head.clone()).unwrap_or_default();
                (c.clone(), head)
            })
            .collect())
    }

    async fn by_seqs(
        &self,
        conv: &ConversationId,
        seqs: &[Seq],
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.lock();
        let Some(log) = s.logs.get(conv) else {
            return Ok(Vec::new());
        };
        let mut wanted: Vec<Seq> = seqs.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        Ok(wanted
            .into_iter()
            .filter_map(|seq| log.get(seq))
            .filter(|m| live(m, now))
            .cloned()
            .collect())
    }

    async fn after(
        &self,
        conv: &ConversationId,
        after: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.lock();
        let log = s
            .logs
            .get(conv)
            .map(|l| l.entries.as_slice())
            .unwrap_or_default();
        let start = (after as usize).min(log.len());
        Ok(log[start..]
            .iter()
            .filter(|m| live(m, now))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn before(
        &self,
        conv: &ConversationId,
        before: Seq,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.lock();
        let log = s
            .logs
            .get(conv)
            .map(|l| l.entries.as_slice())
            .unwrap_or_default();
        let end = (before.saturating_sub(1) as usize).min(log.len());
        Ok(log[..end]
            .iter()
            .rev()
            .filter(|m| live(m, now))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl PushDevices for InMemoryStore {
    async fn put(&self, device: &PushDevice) -> Result<(), StoreError> {
        let mut s = self.lock();
        let devices = s.push_devices.entry(device.user.clone()).or_default();
        let old = devices.insert(device.device.clone(), device.clone());
        let holder = (device.user.clone(), device.device.clone());
        if let Some(old) =
            old.filter(|o| (o.platform, &o.token) != (device.platform, &device.token))
        {
            let old_key = (old.platform, old.token);
            if s.token_holders.get(&old_key) == Some(&holder) {
                s.token_holders.remove(&old_key);
            }
        }
        s.token_holders
            .insert((device.platform, device.token.clone()), holder);
        Ok(())
    }

    async fn get(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        Ok(self
            .lock()
            .push_devices
            .get(user)
            .and_then(|d| d.get(device))
            .cloned())
    }

    async fn remove(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Option<PushDevice>, StoreError> {
        let mut s = self.lock();
        let removed = s.push_devices.get_mut(user).and_then(|d| d.remove(device));
        if let Some(d) = &removed {
            let key = (d.platform, d.token.clone());
            if s.token_holders.get(&key) == Some(&(user.clone(), device.clone())) {
                s.token_holders.remove(&key);
            }
        }
        Ok(removed)
    }

    async fn token_holder(
        &self,
        platform: Platform,
        token: &str,
    ) -> Result<Option<(UserId, DeviceId)>, StoreError> {
        Ok(self
            .lock()
            .token_holders
            .get(&(platform, token.to_owned()))
            .cloned())
    }

    async fn remove_if_token(
        &self,
        user: &UserId,
        device: &DeviceId,
        token: &str,
    ) -> Result<Option<PushDevice>, StoreError> {
        let mut s = self.lock();
        let devices = s.push_devices.get_mut(user);
        let removed = match devices {
            Some(d) if d.get(device).is_some_and(|d| d.token == token) => d.remove(device),
            _ => None,
        };
        if let Some(d) = &removed {
            let key = (d.platform, d.token.clone());
            if s.token_holders.get(&key) == Some(&(user.clone(), device.clone())) {
                s.token_holders.remove(&key);
            }
        }
        Ok(removed)
    }

    async fn of_users(&self, users: &[UserId]) -> Result<Vec<PushDevice>, StoreError> {
        let s = self.lock();
        Ok(users
            .iter()
            .filter_map(|u| s.push_devices.get(u))
            .flat_map(|d| d.values().cloned())
            .collect())
    }

    async fn claim(&self, c: &PushClaim) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let key = (c.user.clone(), c.device.clone(), c.conversation.clone());
        match s.push_claims.get(&key) {
            Some((at, seq)) if *at > c.not_before && *seq > c.acked => Ok(false),
            _ => {
                s.push_claims.insert(key, (c.at, c.seq));
                Ok(true)
            }
        }
    }

    async fn release(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
    ) -> Result<(), StoreError> {
        self.lock()
            .push_claims
            .remove(&(user.clone(), device.clone(), conv.clone()));
        Ok(())
    }
}

#[async_trait]
impl Blocks for InMemoryStore {
    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let mine = s.blocks.entry(blocker.clone()).or_default();
        if mine.contains_key(blocked) {
            return Ok(false);
        }
        mine.insert(blocked.clone(), at);
        Ok(true)
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool, StoreError> {
        let mut s = self.lock();
        Ok(s.blocks
            .get_mut(blocker)
            .is_some_and(|b| b.remove(blocked).is_some()))
    }

    async fn blocked(
        &self,
        blocker: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<BlockedUser>, bool), StoreError> {
        let s = self.lock();
        let Some(mine) = s.blocks.get(blocker) else {
            return Ok((Vec::new(), false));
        };
        let mut rest = mine
            .iter()
            .filter(|(u, _)| after.is_none_or(|a| *u > a))
            .map(|(u, at)| BlockedUser {
                user: u.clone(),
                at: *at,
            });
        let page: Vec<BlockedUser> = rest.by_ref().take(limit).collect();
        Ok((page, rest.next().is_some()))
    }

    async fn membership_and_blocks(
        &self,
        conv: &ConversationId,
        user: &UserId,
        other: &UserId,
    ) -> Result<(Option<Membership>, BlockState), StoreError> {
        let s = self.lock();
        let membership = s.members.get(conv).and_then(|m| m.get(user)).cloned();
        let blocks = BlockState {
            by_me: s.blocks(user, other),
            by_them: s.blocks(other, user),
        };
        Ok((membership, blocks))
    }

    async fn standing(
        &self,
        pairs: &[(UserId, UserId)],
    ) -> Result<HashSet<(UserId, UserId)>, StoreError> {
        let s = self.lock();
        Ok(pairs
            .iter()
            .filter(|(a, b)| s.blocks(a, b))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Reports for InMemoryStore {
    async fn put_report(&self, report: &Report) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.reports.contains_key(&report.id) {
            return Ok(false);
        }
        s.reports.insert(report.id.clone(), report.clone());
        Ok(true)
    }

    async fn report(&self, id: &ReportId) -> Result<Option<Report>, StoreError> {
        Ok(self.lock().reports.get(id).cloned())
    }

    async fn reports_of_day(&self, day: NaiveDate) -> Result<Vec<Report>, StoreError> {
        let mut of_day: Vec<Report> = self
            .lock()
            .reports
            .values()
            .filter(|r| r.id.day == day)
            .cloned()
            .collect();
        of_day.sort_by(|a, b| (a.reported_at, &a.id).cmp(&(b.reported_at, &b.id)));
        Ok(of_day)
    }
}

#[async_trait]
impl RateLimiter for InMemoryStore {
    async fn take(
        &self,
        user: &UserId,
        bucket: Bucket,
        rate: Rate,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        if rate.is_off() {
            return Ok(Decision::Allowed { until: now });
        }
        let mut s = self.lock();
        let key = (user.clone(), bucket);
        let decision = rate.decide(s.buckets.get(&key).copied(), now);
        if let Decision::Allowed { until } = decision {
            s.buckets.insert(key, until);
        }
        Ok(decision)
    }
}
