//! Contract: per-user rate limits (token buckets).

use super::*;

/// A bucket allows its burst, then refuses with the wait until the next token; other users and
/// other buckets are not affected; after the wait one more is allowed; and concurrent takes
/// never hand out more than the burst.
pub async fn rate_limits_per_user_and_bucket(limiter: Arc<dyn RateLimiter>) {
    let t = tag();
    let (alice, bob) = (user("alice", &t), user("bob", &t));
    // 3 at once, then one a second.
    let rate = Rate {
        burst: 3,
        per_minute: 60,
    };
    let t0 = Utc::now();
    let take = |u: &UserId, bucket, at| {
        let (limiter, u) = (limiter.clone(), u.clone());
        async move { limiter.take(&u, bucket, rate, at).await.unwrap() }
    };
    for _ in 0..3 {
        assert!(matches!(
            take(&alice, Bucket::Send, t0).await,
            Decision::Allowed { .. }
        ));
    }
    assert_eq!(
        take(&alice, Bucket::Send, t0).await,
        Decision::Limited {
            retry_after: Duration::seconds(1)
        }
    );
    assert!(matches!(
        take(&bob, Bucket::Send, t0).await,
        Decision::Allowed { .. }
    ));
    assert!(matches!(
        take(&alice, Bucket::Groups, t0).await,
        Decision::Allowed { .. }
    ));
    let later = t0 + Duration::seconds(1);
    assert!(matches!(
        take(&alice, Bucket::Send, later).await,
        Decision::Allowed { .. }
    ));
    assert!(matches!(
        take(&alice, Bucket::Send, later).await,
        Decision::Limited { .. }
    ));
    // An off rate never limits.
    for _ in 0..5 {
        let off = limiter
            .take(&alice, Bucket::Reads, Rate::OFF, t0)
            .await
            .unwrap();
        assert!(matches!(off, Decision::Allowed { .. }));
    }

    // 12 at once on a fresh bucket with a burst of 5, at one instant: exactly 5 pass.
    let carol = user("carol", &t);
    let rate = Rate {
        burst: 5,
        per_minute: 1,
    };
    let racers: Vec<_> = (0..12)
        .map(|_| {
            let (limiter, carol) = (limiter.clone(), carol.clone());
            tokio::spawn(async move { limiter.take(&carol, Bucket::Send, rate, t0).await.unwrap() })
        })
        .collect();
    let mut allowed = 0;
    for r in racers {
        allowed += usize::from(matches!(r.await.unwrap(), Decision::Allowed { .. }));
    }
    assert_eq!(allowed, 5);
}
