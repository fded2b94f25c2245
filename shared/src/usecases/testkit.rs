//! Test support: an app over the in-memory store with a pusher that records every post.

use crate::apigw::{Caller, Request};
use crate::domain::{ConnectionId, DeviceId, UserId};
use crate::ports::{PushError, Pusher};
use crate::{App, Limits};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Records posts; connections marked gone answer 410.
#[derive(Default)]
pub struct RecordingPusher {
    posts: Mutex<Vec<(ConnectionId, Value)>>,
    gone: Mutex<HashSet<ConnectionId>>,
}

#[async_trait]
impl Pusher for RecordingPusher {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PushError> {
        if self.gone.lock().unwrap().contains(conn) {
            return Err(PushError::Gone);
        }
        let v = serde_json::from_str(data).expect("server frames are JSON");
        self.posts.lock().unwrap().push((conn.clone(), v));
        Ok(())
    }
}

pub struct World {
    pub app: App,
    pub pusher: Arc<RecordingPusher>,
}

impl World {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let pusher = Arc::new(RecordingPusher::default());
        Self {
            app: App::in_memory(pusher.clone(), limits),
            pusher,
        }
    }

    /// Connects `user` on `device` through the `$connect` use case.
    pub async fn connect(&self, user: &str, device: &str) -> Caller {
        let caller = Caller {
            user: UserId::new(user).unwrap(),
            device: DeviceId::new(device).unwrap(),
            connection: ConnectionId::new(format!("{user}-{device}")).unwrap(),
            connected_at: None,
        };
        super::connect::connect(&self.app, &caller).await.unwrap();
        caller
    }

    pub fn request(&self, caller: &Caller, body: Value) -> Request {
        Request::new(caller.clone(), body.get("id").cloned(), "req-test", body)
    }

    /// Marks a connection as gone at the gateway (its socket died without `$disconnect`).
    pub fn kill(&self, caller: &Caller) {
        self.pusher
            .gone
            .lock()
            .unwrap()
            .insert(caller.connection.clone());
    }

    /// Frames posted to this caller's connection, then forgets them.
    pub fn take(&self, caller: &Caller) -> Vec<Value> {
        let mut posts = self.pusher.posts.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) =
            posts.drain(..).partition(|(c, _)| *c == caller.connection);
        *posts = rest;
        mine.into_iter().map(|(_, v)| v).collect()
    }
}
