//! The live sockets of the gateway, and PostToConnection on them (in-process and over HTTP).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use messenger::domain::ConnectionId;
use messenger::ports::{self, Poster};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the gateway writes to a socket.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// Why a post failed, mapped to the management API's status codes.
#[derive(Debug, PartialEq, Eq)]
pub enum PostError {
    /// 410: no such connection (never existed, closed, or still in `$connect`).
    Gone,
    /// 413: larger than API Gateway's 128 KB message limit.
    TooLarge,
}

/// One open socket.
#[derive(Debug, Clone)]
pub struct Entry {
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub connected_at: DateTime<Utc>,
    /// Milliseconds since the epoch of the last frame in either direction.
    pub last_active: Arc<AtomicI64>,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

impl Entry {
    pub fn touch(&self) {
        self.last_active
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_active(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active.load(Ordering::Relaxed))
            .unwrap_or(self.connected_at)
    }
}

/// The open sockets by connection id.
#[derive(Debug)]
pub struct Registry {
    conns: Mutex<HashMap<String, Entry>>,
    max_message_bytes: usize,
}

impl Registry {
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            conns: Mutex::default(),
            max_message_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
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

    /// PostToConnection: queues the data on the socket (text when it is UTF-8).
    pub fn post(&self, id: &str, data: Vec<u8>) -> Result<(), PostError> {
        if data.len() > self.max_message_bytes {
            return Err(PostError::TooLarge);
        }
        let entry = self.get(id).ok_or(PostError::Gone)?;
        let out = match String::from_utf8(data) {
            Ok(text) => Outbound::Text(text),
            Err(e) => Outbound::Binary(e.into_bytes()),
        };
        entry.touch();
        entry.tx.send(out).map_err(|_| PostError::Gone)
    }

    /// DeleteConnection: closes the socket; later posts get 410 at once.
    pub fn close(&self, id: &str, code: u16, reason: &'static str) -> Result<(), PostError> {
        let entry = self.remove(id).ok_or(PostError::Gone)?;
        // The socket task may already be gone; either way the connection is closed.
        let _ = entry.tx.send(Outbound::Close(code, reason));
        Ok(())
    }

    /// Closes every socket (gateway shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        for (_, entry) in self.lock().drain() {
            let _ = entry.tx.send(Outbound::Close(code, reason));
        }
    }
}

/// The in-process PostToConnection the route handlers use in embedded mode.
#[derive(Debug, Clone)]
pub struct LocalPoster(pub Arc<Registry>);

#[async_trait]
impl Poster for LocalPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), ports::PostError> {
        match self.0.post(conn.as_str(), data.as_bytes().to_vec()) {
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
