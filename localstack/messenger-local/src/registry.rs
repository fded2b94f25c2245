//! The live sockets of the gateway, and PostToConnection on them (in-process and over HTTP).
//!
//! Each socket's outbound queue is bounded in bytes ([`Registry::new`]'s `max_queued_bytes`):
//! a post that would overflow it closes the connection as a slow consumer (close code
//! [`SLOW_CONSUMER`]) and answers 410, so a client that stops reading costs at most that much
//! memory, and the posting handler counts its user as not reached (and pushes them).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use messenger::domain::ConnectionId;
use messenger::ports::{self, Poster};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// The close code of a connection whose outbound queue overflowed (RFC 6455 "Try Again
/// Later": the server sheds a client; reconnect after a pause, then sync).
pub const SLOW_CONSUMER: (u16, &str) = (1013, "Slow consumer: outbound queue full");

/// What a queued frame costs beyond its bytes (queue node, string header), so a flood of tiny
/// frames is bounded too.
const FRAME_OVERHEAD: usize = 64;

/// What the gateway writes to a socket.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    /// Close the socket with this code and reason (after the frames queued before it).
    Close(u16, &'static str),
}

impl Outbound {
    /// What this frame counts against the queue's bound (a close costs nothing).
    pub fn cost(&self) -> usize {
        match self {
            Self::Text(t) => FRAME_OVERHEAD + t.len(),
            Self::Binary(b) => FRAME_OVERHEAD + b.len(),
            Self::Close(..) => 0,
        }
    }
}

/// Why a post failed, mapped to the management API's status codes.
#[derive(Debug, PartialEq, Eq)]
pub enum PostError {
    /// 410: no such connection (never existed, closed, still in `$connect`, or just closed as a
    /// slow consumer).
    Gone,
    /// 413: larger than API Gateway's 128 KB message limit.
    TooLarge,
}

/// A socket the gateway decided to close at once (not behind its queued frames): the socket
/// task wakes even in the middle of a write.
#[derive(Debug, Default)]
pub struct Closing {
    wake: Notify,
    why: Mutex<Option<(u16, &'static str)>>,
}

impl Closing {
    /// Closes with this code and reason (the first reason given wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        self.why
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert((code, reason));
        // A stored permit: a task not waiting yet sees it at its next wait.
        self.wake.notify_one();
    }

    /// Waits until the socket is to be closed; the code and reason.
    pub async fn closed(&self) -> (u16, &'static str) {
        loop {
            if let Some(why) = *self.why.lock().unwrap_or_else(|e| e.into_inner()) {
                return why;
            }
            self.wake.notified().await;
        }
    }
}

/// One open socket.
#[derive(Debug, Clone)]
pub struct Entry {
    pub tx: mpsc::UnboundedSender<Outbound>,
    /// Bytes (and per-frame overhead) queued for the socket and not yet written.
    pub queued: Arc<AtomicUsize>,
    pub closing: Arc<Closing>,
    pub connected_at: DateTime<Utc>,
    /// Milliseconds since the epoch of the last frame in either direction.
    pub last_active: Arc<AtomicI64>,
    /// Shared, not copied: an entry is cloned for every post to it.
    pub source_ip: Arc<str>,
    pub user_agent: Option<Arc<str>>,
}

impl Entry {
    /// A new socket's entry, and the receiving end of its queue.
    pub fn new(
        connected_at: DateTime<Utc>,
        source_ip: String,
        user_agent: Option<String>,
    ) -> (Self, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = Self {
            tx,
            queued: Arc::default(),
            closing: Arc::default(),
            connected_at,
            last_active: Arc::new(AtomicI64::new(connected_at.timestamp_millis())),
            source_ip: source_ip.into(),
            user_agent: user_agent.map(Into::into),
        };
        (entry, rx)
    }

    pub fn touch(&self) {
        self.last_active
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_active(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active.load(Ordering::Relaxed))
            .unwrap_or(self.connected_at)
    }

    /// Queues a frame the gateway itself answers with (a two-way route's response), outside
    /// the bound: one per client frame, so the client's own pace bounds them.
    pub fn queue(&self, frame: Outbound) {
        self.queued.fetch_add(frame.cost(), Ordering::Relaxed);
        if let Err(unsent) = self.tx.send(frame) {
            self.dequeued(&unsent.0);
        }
    }

    /// The socket task took `frame` off the queue and wrote it (or gave up on it).
    pub fn dequeued(&self, frame: &Outbound) {
        self.released(frame.cost());
    }

    /// Frames that cost `cost` together ([`Outbound::cost`]) left the queue.
    pub fn released(&self, cost: usize) {
        self.queued.fetch_sub(cost, Ordering::Relaxed);
    }
}

/// Open sockets by connection id (foldhash: every post looks one up; the ids are ours).
type Conns = HashMap<String, Entry, foldhash::fast::RandomState>;

/// The open sockets by connection id.
#[derive(Debug)]
pub struct Registry {
    conns: Mutex<Conns>,
    max_message_bytes: usize,
    max_queued_bytes: usize,
    /// Connections closed as slow consumers so far.
    slow_consumers: AtomicUsize,
}

impl Registry {
    /// Posts larger than `max_message_bytes` are refused (413); a socket with more than
    /// `max_queued_bytes` waiting to be written is closed as a slow consumer.
    pub fn new(max_message_bytes: usize, max_queued_bytes: usize) -> Self {
        Self {
            conns: Mutex::default(),
            max_message_bytes,
            max_queued_bytes,
            slow_consumers: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, id: String, entry: Entry) {
        self.lock().insert(id, entry);
    }

    pub fn remove(&self, id: &str) -> Option<Entry> {
        self.lock().remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Entry> {
        self.lock().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes queued on every open socket together.
    pub fn queued_bytes(&self) -> usize {
        self.lock()
            .values()
            .map(|e| e.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections closed as slow consumers since the gateway started.
    pub fn slow_consumers(&self) -> usize {
        self.slow_consumers.load(Ordering::Relaxed)
    }

    /// PostToConnection: queues the data on the socket (text when it is UTF-8). A post that
    /// would take the socket's queue past its bound closes the socket as a slow consumer
    /// instead, and is answered 410 like any post to a closed connection.
    pub fn post(&self, id: &str, data: Vec<u8>) -> Result<(), PostError> {
        if data.len() > self.max_message_bytes {
            return Err(PostError::TooLarge);
        }
        let out = match String::from_utf8(data) {
            Ok(text) => Outbound::Text(text),
            Err(e) => Outbound::Binary(e.into_bytes()),
        };
        self.post_frame(id, out)
    }

    /// [`post`](Self::post) of a frame already known to be text or binary (the in-process
    /// poster's frames are text).
    fn post_frame(&self, id: &str, out: Outbound) -> Result<(), PostError> {
        let len = match &out {
            Outbound::Text(t) => t.len(),
            Outbound::Binary(b) => b.len(),
            Outbound::Close(..) => 0,
        };
        if len > self.max_message_bytes {
            return Err(PostError::TooLarge);
        }
        // Looked up and queued under the lock, not cloned out of it: queuing never waits.
        let mut conns = self.lock();
        let entry = conns.get(id).ok_or(PostError::Gone)?;
        let cost = out.cost();
        let before = entry.queued.fetch_add(cost, Ordering::Relaxed);
        if before + cost > self.max_queued_bytes {
            entry.queued.fetch_sub(cost, Ordering::Relaxed);
            let entry = conns.remove(id);
            drop(conns);
            if let Some(entry) = entry {
                self.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connection = id, queued = before, "slow consumer closed");
                let (code, reason) = SLOW_CONSUMER;
                entry.closing.close(code, reason);
            }
            return Err(PostError::Gone);
        }
        entry.touch();
        entry.tx.send(out).map_err(|_| PostError::Gone)
    }

    /// DeleteConnection: closes the socket after what is queued; later posts get 410 at once.
    pub fn close(&self, id: &str, code: u16, reason: &'static str) -> Result<(), PostError> {
        let entry = self.remove(id).ok_or(PostError::Gone)?;
        // The socket task may already be gone; either way the connection is closed.
        let _ = entry.tx.send(Outbound::Close(code, reason));
        Ok(())
    }

    /// Closes every socket at once (gateway shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        for (_, entry) in self.lock().drain() {
            entry.closing.close(code, reason);
        }
    }
}

/// The in-process PostToConnection the route handlers use in embedded mode.
#[derive(Debug, Clone)]
pub struct LocalPoster(pub Arc<Registry>);

#[async_trait]
impl Poster for LocalPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), ports::PostError> {
        match self
            .0
            .post_frame(conn.as_str(), Outbound::Text(data.to_owned()))
        {
            Ok(()) => Ok(()),
            Err(PostError::Gone) => Err(ports::PostError::Gone),
            Err(PostError::TooLarge) => Err(ports::PostError::Failed(
                format!("{} bytes exceed the 128 KB message limit", data.len()).into(),
            )),
        }
    }

    /// DeleteConnection, as the management API's DELETE does it.
    async fn close(&self, conn: &ConnectionId) -> Result<(), ports::PostError> {
        self.0
            .close(conn.as_str(), CLOSED_BY_SERVICE.0, CLOSED_BY_SERVICE.1)
            .map_err(|_| ports::PostError::Gone)
    }
}

/// The close code and reason of a connection closed with DeleteConnection.
pub const CLOSED_BY_SERVICE: (u16, &str) = (1000, "Connection closed by the service");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_post_past_the_queue_bound_closes_the_socket_as_a_slow_consumer() {
        // GIVEN a socket whose queue holds 1,000 bytes, and nobody writing it out
        let registry = Registry::new(128 * 1024, 1_000);
        let (entry, mut rx) = Entry::new(Utc::now(), "127.0.0.1".into(), None);
        registry.insert("c1".into(), entry.clone());
        // WHEN 300-byte frames are posted
        let frame = vec![b'x'; 300];
        let results: Vec<_> = (0..4).map(|_| registry.post("c1", frame.clone())).collect();
        // THEN two are queued (364 bytes each with the overhead), the third, which would pass
        // 1,000, closes the socket with 1013 and is answered 410, and later posts find it gone
        assert_eq!(results[..2], [Ok(()), Ok(())]);
        assert_eq!(results[2], Err(PostError::Gone));
        assert_eq!(results[3], Err(PostError::Gone));
        assert_eq!(entry.closing.closed().await, SLOW_CONSUMER);
        assert_eq!(registry.slow_consumers(), 1);
        assert!(registry.get("c1").is_none());
        // … and what was queued is bounded: the two frames accepted, nothing else
        assert_eq!(
            entry.queued.load(Ordering::Relaxed),
            2 * (300 + FRAME_OVERHEAD)
        );
        let first = rx.recv().await.unwrap();
        entry.dequeued(&first);
        assert_eq!(entry.queued.load(Ordering::Relaxed), 300 + FRAME_OVERHEAD);
    }
}
