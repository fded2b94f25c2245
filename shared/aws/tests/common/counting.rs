//! Support for the request-count suites: the real use cases over a store on fresh tables, a
//! poster that records every frame, and the request/capacity counters of the store.

use async_trait::async_trait;
use messenger::domain::{ConnectionId, DeviceId, UserId};
use messenger::ports::{PostError, Poster};
use messenger::request::{Caller, Request};
use messenger::routes::Action;
use messenger::{App, Limits, Stores, usecases};
use messenger_aws::{DynamoStore, Snapshot};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Records every post, so the test can also check who was reached.
#[derive(Default)]
pub struct RecordingPoster(pub Mutex<Vec<(ConnectionId, Value)>>);

#[async_trait]
impl Poster for RecordingPoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        let v = serde_json::from_str(data).expect("frames are JSON");
        self.0.lock().unwrap().push((conn.clone(), v));
        Ok(())
    }

    async fn close(&self, _: &ConnectionId) -> Result<(), PostError> {
        Ok(())
    }
}

impl RecordingPoster {
    /// The posts so far as sorted (connection, frame type) pairs; forgets them.
    pub fn take(&self) -> Vec<(String, String)> {
        let mut posts: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .drain(..)
            .map(|(c, v)| (c.to_string(), v["type"].as_str().unwrap_or("?").to_owned()))
            .collect();
        posts.sort();
        posts
    }
}

/// `user-<tag>` on `device`, connected as `user-device-<tag>`.
pub fn caller(user: &str, device: &str, tag: &str) -> Caller {
    Caller {
        user: UserId::new(format!("{user}-{tag}")).unwrap(),
        device: DeviceId::new(device).unwrap(),
        connection: ConnectionId::new(format!("{user}-{device}-{tag}")).unwrap(),
        connected_at: None,
    }
}

pub fn request(c: &Caller, body: Value) -> Request {
    Request::new(c.clone(), None, "req-count", body)
}

pub fn requests(s: &Snapshot) -> BTreeMap<&str, u64> {
    s.requests()
}

/// A store on fresh tables (default log buckets), an app over it, and the recording poster.
pub async fn world() -> (Arc<DynamoStore>, App, Arc<RecordingPoster>) {
    let store = super::store_with_bucket(messenger_aws::dynamo::DEFAULT_BUCKET).await;
    let poster = Arc::new(RecordingPoster::default());
    let app = App::new(
        Stores::from_one(store.clone()),
        poster.clone(),
        Limits::default(),
    );
    (store, app, poster)
}

/// Runs `f` and returns what it cost.
pub async fn measure(store: &DynamoStore, f: impl AsyncFnOnce()) -> Snapshot {
    let before = store.counters();
    f().await;
    store.counters().since(&before)
}

/// Runs the use case of `body`'s action for `c` and returns what it cost (it must succeed).
pub async fn cost(store: &DynamoStore, app: &App, c: &Caller, body: Value) -> Snapshot {
    let action = Action::from_name(body["action"].as_str().expect("an action")).expect("known");
    let req = request(c, body);
    measure(store, async || {
        usecases::execute(app, &req, action)
            .await
            .expect("the request succeeds")
    })
    .await
}

/// Runs a request as the function serving it would: its action's use case, after the caller's
/// rate limit (which costs requests too).
pub async fn exec(app: &App, req: &Request) {
    let action = Action::from_name(req.action().expect("an action")).expect("a known action");
    usecases::execute(app, req, action)
        .await
        .unwrap_or_else(|e| panic!("{action:?}: {e}"));
}
