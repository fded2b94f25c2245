//! Test support: an app over the in-memory store with a poster that records every frame, and a
//! notifier that records every push.

use crate::attachments::signed::InMemoryObjects;
use crate::domain::{ConnectionId, DeviceId, UserId};
use crate::memory::InMemoryStore;
use crate::ports::{Notifier, NotifyError, PostError, Poster};
use crate::push::{MessageEvent, Notification, Platform, PushDevice};
use crate::request::{Caller, Request};
use crate::{App, Limits, Stores};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Records posts; connections marked gone answer 410, connections marked failing fail
/// otherwise (a 5xx or a timeout, after the poster's retries).
#[derive(Default)]
pub struct RecordingPoster {
    posts: Mutex<Vec<(ConnectionId, Value)>>,
    gone: Mutex<HashSet<ConnectionId>>,
    failing: Mutex<HashSet<ConnectionId>>,
    /// Connections closed by the service (DeleteConnection), in order.
    pub closed: Mutex<Vec<ConnectionId>>,
}

#[async_trait]
impl Poster for RecordingPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        if self.gone.lock().unwrap().contains(conn) {
            return Err(PostError::Gone);
        }
        if self.failing.lock().unwrap().contains(conn) {
            return Err(PostError::Failed("503 from the management API".into()));
        }
        let v = serde_json::from_str(data).expect("server frames are JSON");
        self.posts.lock().unwrap().push((conn.clone(), v));
        Ok(())
    }

    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        if !self.gone.lock().unwrap().insert(conn.clone()) {
            return Err(PostError::Gone);
        }
        self.closed.lock().unwrap().push(conn.clone());
        Ok(())
    }
}

/// A push platform in memory: endpoints by id, pushes and topic events as sent. A token starting
/// with `dead` stands for one the platform has disabled.
#[derive(Default)]
pub struct RecordingNotifier {
    endpoints: Mutex<HashMap<String, String>>,
    next: Mutex<u32>,
    pub pushes: Mutex<Vec<(UserId, DeviceId, Notification)>>,
    pub events: Mutex<Vec<MessageEvent>>,
    pub reports: Mutex<Vec<crate::moderation::Report>>,
    pub unregistered: Mutex<Vec<String>>,
    /// While set, pushes fail for a passing reason (SNS throttled or 5xx after its retries).
    pub failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn register(
        &self,
        _: Platform,
        token: &str,
        _: &UserId,
        existing: Option<&str>,
    ) -> Result<String, NotifyError> {
        let mut endpoints = self.endpoints.lock().unwrap();
        let id = match existing.filter(|e| endpoints.contains_key(*e)) {
            Some(e) => e.to_owned(),
            None => {
                let mut next = self.next.lock().unwrap();
                *next += 1;
                format!("endpoint-{next}")
            }
        };
        endpoints.insert(id.clone(), token.to_owned());
        Ok(id)
    }

    async fn unregister(&self, endpoint: &str) -> Result<(), NotifyError> {
        self.endpoints.lock().unwrap().remove(endpoint);
        self.unregistered.lock().unwrap().push(endpoint.to_owned());
        Ok(())
    }

    async fn push(&self, device: &PushDevice, n: &Notification) -> Result<(), NotifyError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NotifyError::Failed("SNS throttled".into()));
        }
        let token = self
            .endpoints
            .lock()
            .unwrap()
            .get(&device.endpoint)
            .cloned();
        match token {
            None => Err(NotifyError::NotFound),
            Some(t) if t.starts_with("dead") => Err(NotifyError::Disabled),
            Some(_) => {
                let push = (device.user.clone(), device.device.clone(), n.clone());
                self.pushes.lock().unwrap().push(push);
                Ok(())
            }
        }
    }

    async fn publish(&self, event: &MessageEvent) -> Result<(), NotifyError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn report(&self, report: &crate::moderation::Report) -> Result<(), NotifyError> {
        self.reports.lock().unwrap().push(report.clone());
        Ok(())
    }
}

pub struct World {
    pub app: App,
    pub store: Arc<InMemoryStore>,
    pub poster: Arc<RecordingPoster>,
    pub notifier: Arc<RecordingNotifier>,
    pub objects: Arc<InMemoryObjects>,
}

impl World {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// Gives the app a clock that reads the instant of this call until moved: the returned
    /// function sets how far past that instant it reads.
    pub fn movable_clock(&mut self) -> impl Fn(chrono::TimeDelta) + use<> {
        use std::sync::atomic::{AtomicI64, Ordering};
        let start = chrono::Utc::now();
        let offset_ms = Arc::new(AtomicI64::new(0));
        let read = offset_ms.clone();
        self.app.clock =
            Arc::new(move || start + chrono::TimeDelta::milliseconds(read.load(Ordering::SeqCst)));
        move |by| offset_ms.store(by.num_milliseconds(), Ordering::SeqCst)
    }

    pub fn with_limits(limits: Limits) -> Self {
        let poster = Arc::new(RecordingPoster::default());
        let notifier = Arc::new(RecordingNotifier::default());
        let objects = Arc::new(InMemoryObjects::in_memory());
        let store = Arc::new(InMemoryStore::new());
        Self {
            store: store.clone(),
            app: App::new(Stores::from_one(store), poster.clone(), limits)
                .with_notifier(notifier.clone())
                .with_objects(objects.clone()),
            poster,
            notifier,
            objects,
        }
    }

    /// Makes the two users contacts (their 1:1 exists and is no message request), as if they
    /// had talked before: the tests that start from people who know each other.
    pub fn contacts(&self, a: &str, b: &str) {
        self.store
            .seed_contacts(&UserId::new(a).unwrap(), &UserId::new(b).unwrap());
    }

    /// Connects `user` on `device` through the `$connect` use case.
    pub async fn connect(&self, user: &str, device: &str) -> Caller {
        let caller = self.caller(user, device);
        super::connect::connect(&self.app, &caller).await.unwrap();
        caller
    }

    /// A caller that has not connected (or whose connection is gone).
    pub fn caller(&self, user: &str, device: &str) -> Caller {
        Caller {
            user: UserId::new(user).unwrap(),
            device: DeviceId::new(device).unwrap(),
            connection: ConnectionId::new(format!("{user}-{device}")).unwrap(),
            connected_at: None,
        }
    }

    pub fn request(&self, caller: &Caller, body: Value) -> Request {
        Request::new(caller.clone(), body.get("id").cloned(), "req-test", body)
    }

    /// Runs the use case of `body`'s `action` for `caller`, as the route would.
    pub async fn run(&self, caller: &Caller, body: Value) -> Result<(), crate::Error> {
        let name = body["action"].as_str().expect("an action").to_owned();
        let action = crate::routes::Action::from_name(&name).expect("a known action");
        let req = self.request(caller, body);
        super::execute(&self.app, &req, action).await
    }

    /// Marks a connection as gone at the gateway (its socket died without `$disconnect`).
    pub fn kill(&self, caller: &Caller) {
        self.poster
            .gone
            .lock()
            .unwrap()
            .insert(caller.connection.clone());
    }

    /// Makes posts to a connection fail without it being gone (throttled, 5xx, timed out).
    pub fn break_posts_to(&self, caller: &Caller) {
        self.poster
            .failing
            .lock()
            .unwrap()
            .insert(caller.connection.clone());
    }

    /// Frames posted to this caller's connection, then forgets them.
    pub fn take(&self, caller: &Caller) -> Vec<Value> {
        let mut posts = self.poster.posts.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) =
            posts.drain(..).partition(|(c, _)| *c == caller.connection);
        *posts = rest;
        mine.into_iter().map(|(_, v)| v).collect()
    }

    /// The pushes sent so far, as (user, device, seq), then forgets them.
    pub fn pushes(&self) -> Vec<(String, String, u64)> {
        self.notifier
            .pushes
            .lock()
            .unwrap()
            .drain(..)
            .map(|(u, d, n)| (u.to_string(), d.to_string(), n.seq))
            .collect()
    }
}
