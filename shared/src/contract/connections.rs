//! Contract: Live connections and last-seen.

use super::*;

/// `of_users` returns the live connections of exactly the given users; expired ones are
/// filtered; `put` overwrites by id; `remove` deletes exactly one and tolerates absent ones.
pub async fn connections_of_users(conns: Arc<dyn Connections>) {
    let t = tag();
    let now = Utc::now();
    let (alice, bob, carol) = (user("alice", &t), user("bob", &t), user("carol", &t));
    let conn = |u: &UserId, id: &str, expires_in: i64| Connection {
        id: ConnectionId::new(format!("{id}-{t}")).unwrap(),
        user: u.clone(),
        device: DeviceId::new(format!("dev-{id}")).unwrap(),
        connected_at: now - Duration::minutes(1),
        expires_at: now + Duration::seconds(expires_in),
    };
    let a1 = conn(&alice, "a1", 3600);
    let a_old = conn(&alice, "a0", -1);
    let b1 = conn(&bob, "b1", 3600);
    let c1 = conn(&carol, "c1", 3600);
    for c in [&a1, &a_old, &b1, &c1] {
        conns.put(c).await.unwrap();
    }
    let got: BTreeMap<_, _> = conns
        .of_users(&[alice.clone(), bob.clone()], now)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let want: BTreeMap<_, _> = [&a1, &b1].map(|c| (c.id.clone(), c.clone())).into();
    assert_eq!(got, want, "live connections of alice and bob, nothing else");
    let mut moved = a1.clone();
    moved.device = DeviceId::new("tablet").unwrap();
    conns.put(&moved).await.unwrap();
    conns.remove(&bob, &b1.id).await.unwrap();
    conns.remove(&bob, &b1.id).await.unwrap();
    let got = conns
        .of_users(&[alice.clone(), bob.clone()], now)
        .await
        .unwrap();
    assert_eq!(got, vec![moved]);
    assert_eq!(
        conns
            .of_users(std::slice::from_ref(&carol), now + Duration::hours(2))
            .await
            .unwrap(),
        vec![],
        "expired by then"
    );
}

/// Last-seen keeps the latest instant whatever order the touches arrive in.
pub async fn last_seen_keeps_the_latest(seen: Arc<dyn LastSeen>) {
    let t = tag();
    let (alice, bob, nobody) = (user("alice", &t), user("bob", &t), user("nobody", &t));
    let t0 = Utc::now();
    seen.touch(&alice, t0 + Duration::seconds(10))
        .await
        .unwrap();
    seen.touch(&alice, t0).await.unwrap();
    seen.touch(&bob, t0).await.unwrap();
    seen.touch(&bob, t0 + Duration::milliseconds(1))
        .await
        .unwrap();
    let got = seen
        .get(&[alice.clone(), bob.clone(), nobody.clone(), alice.clone()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&alice], t0 + Duration::seconds(10));
    assert_eq!(got[&bob], t0 + Duration::milliseconds(1));
}
