//! Adapter layer: in-memory implementations of every storage port, for unit tests and the
//! embedded gateway. One lock per store makes each operation atomic, which gives the same
//! guarantees the DynamoDB adapters get from conditional writes and transactions.

use crate::domain::DeviceId;
use crate::domain::{
    Amendment, ClientMsgId, Connection, ConnectionId, ConversationId, GroupInfo, Head, Member,
    Membership, Message, NewMessage, ReceiptKind, Role, Seq, UserId,
};
use crate::ports::{
    Amended, Appended, Connections, Conversations, MessageLog, PushDevices, StoreError,
    UserPresence, WriteContext, WriteKeys, WriteReads,
};
use crate::push::{PushClaim, PushDevice};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Every storage port in memory. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// user → their record: live connections and last-seen (one item per user on DynamoDB)
    users: HashMap<UserId, UserRecord>,
    /// conversation → user → membership
    members: BTreeMap<ConversationId, BTreeMap<UserId, Membership>>,
    logs: HashMap<ConversationId, Log>,
    /// (sender, client_msg_id) → where the message was stored
    sent: HashMap<(UserId, ClientMsgId), (ConversationId, Seq)>,
    groups: HashMap<ConversationId, GroupInfo>,
    push_devices: HashMap<UserId, BTreeMap<DeviceId, PushDevice>>,
    /// (user, device, conversation) → when the standing push claim was made, and for which seq
    push_claims: HashMap<(UserId, DeviceId, ConversationId), (DateTime<Utc>, Seq)>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied operation behind (every
        // operation mutates after its checks), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
    async fn put(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut s = self.lock();
        let record = s.users.entry(conn.user.clone()).or_default();
        record
            .connections
            .retain(|_, c| c.expires_at > conn.connected_at);
        record.connections.insert(conn.id.clone(), conn.clone());
        record.seen(conn.connected_at);
        Ok(())
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
        let already_sent = keys
            .client_msg_id
            .is_some_and(|cmid| s.sent.contains_key(&(keys.user.clone(), cmid.clone())));
        let at = keys.message.and_then(|seq| Some((seq, log.get(seq)?)));
        let message = at.map(|(_, m)| m).filter(|m| live(m, now)).cloned();
        let message_chats = at.map_or(0, |(seq, _)| log.chats[(seq - 1) as usize]);
        Ok(WriteContext {
            membership: s.members.get(conv).and_then(|m| m.get(keys.user)).cloned(),
            last_seq: log.head.last_seq,
            chats: log.head.chats,
            already_sent,
            message,
            message_chats,
        })
    }
}

#[async_trait]
impl Conversations for InMemoryStore {
    async fn join(&self, membership: &Membership) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let members = s
            .members
            .entry(membership.conversation.clone())
            .or_default();
        if members.contains_key(&membership.user) {
            return Ok(false);
        }
        members.insert(membership.user.clone(), membership.clone());
        Ok(true)
    }

    async fn leave(&self, conv: &ConversationId, user: &UserId) -> Result<bool, StoreError> {
        let mut s = self.lock();
        Ok(s.members
            .get_mut(conv)
            .is_some_and(|m| m.remove(user).is_some()))
    }

    async fn set_role(
        &self,
        conv: &ConversationId,
        user: &UserId,
        role: Role,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.members.get_mut(conv).and_then(|m| m.get_mut(user)) {
            Some(m) => {
                m.role = role;
                Ok(true)
            }
            None => Ok(false),
        }
    }

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
        Ok(self
            .lock()
            .members
            .values()
            .filter_map(|m| m.get(user))
            .cloned()
            .collect())
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

    async fn put_group(&self, info: &GroupInfo) -> Result<(), StoreError> {
        self.lock()
            .groups
            .insert(info.conversation.clone(), info.clone());
        Ok(())
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
    async fn append(&self, msg: NewMessage) -> Result<Appended, StoreError> {
        let mut s = self.lock();
        let key = (msg.from.clone(), msg.client_msg_id.clone());
        if let Some((conv, seq)) = s.sent.get(&key) {
            let log = s.logs.get(conv);
            let original = log
                .and_then(|l| l.get(*seq))
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("{conv}#{seq} missing")))?;
            let chats = log.map_or(0, |l| l.chats[(*seq - 1) as usize]);
            return Ok(Appended {
                message: original,
                duplicate: true,
                chats,
            });
        }
        let log = s.logs.entry(msg.conversation.clone()).or_default();
        let message = msg.stored_as(log.entries.len() as Seq + 1);
        let chats = log.push(message.clone());
        s.sent
            .insert(key, (message.conversation.clone(), message.seq));
        Ok(Appended {
            message,
            duplicate: false,
            chats,
        })
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
        let entry = a.entry(event, log.head.last_seq + 1);
        message.rev = Some(entry.seq);
        let head = log.head.amended(&entry, &message);
        log.push(entry.clone());
        log.head = head;
        log.entries[(a.seq - 1) as usize] = message.clone();
        Ok(Amended::Applied {
            entry: Box::new(entry),
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
        devices.insert(device.device.clone(), device.clone());
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
        Ok(self
            .lock()
            .push_devices
            .get_mut(user)
            .and_then(|d| d.remove(device)))
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
