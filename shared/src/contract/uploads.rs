//! Contract of [`UploadQuota`]: a fixed allowance per user and calendar minute.

use super::{tag, user};
use crate::ports::UploadQuota;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;

/// The start of a minute well in the future (no other test counts there).
fn minute(tag: &str) -> DateTime<Utc> {
    let spread = i64::from_str_radix(&tag[..6], 16).unwrap_or(0);
    Utc.timestamp_opt((4_000_000_000 / 60 + spread) * 60, 0)
        .unwrap()
}

/// `per_minute` uploads a minute and no more, per user, every minute afresh.
pub async fn uploads_per_minute(q: Arc<dyn UploadQuota>) {
    let t = tag();
    let (alice, bob) = (user("alice", &t), user("bob", &t));
    let m = minute(&t);
    for i in 0..3 {
        let at = m + Duration::seconds(i * 20);
        assert!(q.take_upload(&alice, at, 3).await.unwrap(), "upload {i}");
    }
    assert!(
        !q.take_upload(&alice, m + Duration::seconds(59), 3)
            .await
            .unwrap(),
        "a 4th upload in the minute is refused"
    );
    assert!(
        !q.take_upload(&alice, m + Duration::seconds(59), 3)
            .await
            .unwrap(),
        "a refusal counts nothing, and refuses again"
    );
    assert!(q.take_upload(&bob, m, 3).await.unwrap(), "users are apart");
    assert!(
        q.take_upload(&alice, m + Duration::seconds(60), 3)
            .await
            .unwrap(),
        "the next minute starts afresh"
    );
}

/// Concurrent uploads of one user never get more than the allowance.
pub async fn concurrent_uploads_keep_the_allowance(q: Arc<dyn UploadQuota>) {
    let t = tag();
    let alice = user("alice", &t);
    let at = minute(&t) + Duration::seconds(30);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (q, alice) = (q.clone(), alice.clone());
            tokio::spawn(async move { q.take_upload(&alice, at, 5).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5, "16 racing uploads, an allowance of 5");
}
