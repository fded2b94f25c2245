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
        conns.put(c, 0).await.unwrap();
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
    conns.put(&moved, 0).await.unwrap();
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

/// One record per user holds their connections and last-seen: `put` records the connect
/// instant, `disconnect` the disconnect instant, and last-seen never moves back whatever order
/// they arrive in; a connection past its expiry counts as offline and the user's next `put`
/// drops it; `remove` (a 410) leaves last-seen alone.
pub async fn presence_and_last_seen(conns: Arc<dyn Connections>) {
    let t = tag();
    let (alice, bob, nobody) = (user("alice", &t), user("bob", &t), user("nobody", &t));
    let t0 = Utc::now();
    let conn = |u: &UserId, id: &str, at: DateTime<Utc>, lives: Duration| Connection {
        id: ConnectionId::new(format!("{id}-{t}")).unwrap(),
        user: u.clone(),
        device: DeviceId::new("phone").unwrap(),
        connected_at: at,
        expires_at: at + lives,
    };
    let a1 = conn(&alice, "a1", t0, Duration::hours(2));
    conns.put(&a1, 0).await.unwrap();
    conns
        .disconnect(&alice, &a1.id, t0 + Duration::seconds(10))
        .await
        .unwrap();
    // A late, older disconnect and a connect made earlier than the last disconnect.
    conns
        .disconnect(&alice, &a1.id, t0 + Duration::seconds(5))
        .await
        .unwrap();
    let a2 = conn(&alice, "a2", t0 + Duration::seconds(3), Duration::hours(2));
    conns.put(&a2, 0).await.unwrap();
    conns.remove(&alice, &a2.id).await.unwrap();
    let b_short = conn(&bob, "b0", t0, Duration::seconds(1));
    conns.put(&b_short, 0).await.unwrap();
    let now = t0 + Duration::seconds(30);
    let got = conns
        .presence(&[alice.clone(), bob.clone(), nobody.clone()], now)
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "nobody has no record: {got:?}");
    assert_eq!(got[&alice].connections, vec![]);
    assert_eq!(got[&alice].last_seen, Some(t0 + Duration::seconds(10)));
    assert_eq!(got[&bob].connections, vec![], "expired: offline");
    assert_eq!(got[&bob].last_seen, Some(t0));

    // Bob's next connect drops the expired connection from his record: even read at an instant
    // when it was still live, it is gone.
    let b1 = conn(&bob, "b1", t0 + Duration::seconds(20), Duration::hours(2));
    conns.put(&b1, 0).await.unwrap();
    let got = conns
        .presence(std::slice::from_ref(&bob), t0)
        .await
        .unwrap();
    assert_eq!(got[&bob].connections, vec![b1.clone()]);
    assert_eq!(got[&bob].last_seen, Some(t0 + Duration::seconds(20)));
}

/// Connects and disconnects of one user's devices racing each other (including the very first
/// connect, which creates the user's record) lose nothing: exactly the connections that were
/// not disconnected remain.
pub async fn concurrent_connects_and_disconnects(conns: Arc<dyn Connections>) {
    let t = tag();
    let carol = user("carol", &t);
    let now = Utc::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (conns, carol) = (conns.clone(), carol.clone());
            let c = Connection {
                id: ConnectionId::new(format!("c{i}-{t}")).unwrap(),
                user: carol.clone(),
                device: DeviceId::new(format!("d{i}")).unwrap(),
                connected_at: now,
                expires_at: now + Duration::hours(2),
            };
            tokio::spawn(async move {
                conns.put(&c, 0).await.unwrap();
                if i % 2 == 1 {
                    conns.disconnect(&carol, &c.id, Utc::now()).await.unwrap();
                }
                c.id
            })
        })
        .collect();
    let mut want = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let id = task.await.unwrap();
        if i % 2 == 0 {
            want.push(id);
        }
    }
    let mut got: Vec<ConnectionId> = conns
        .of_users(std::slice::from_ref(&carol), now)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// With a cap of 3 live connections, a fourth drops the oldest from the record and returns it
/// (expired ones do not count and are not returned); the new one is never dropped.
pub async fn connections_past_the_cap_close_the_oldest(conns: Arc<dyn Connections>) {
    let t = tag();
    let dana = user("dana", &t);
    let t0 = Utc::now();
    let conn = |i: i64, lives: Duration| Connection {
        id: ConnectionId::new(format!("d{i}-{t}")).unwrap(),
        user: dana.clone(),
        device: DeviceId::new(format!("dev{i}")).unwrap(),
        connected_at: t0 + Duration::seconds(i),
        expires_at: t0 + Duration::seconds(i) + lives,
    };
    let expired = conn(0, Duration::seconds(1));
    assert_eq!(conns.put(&expired, 3).await.unwrap(), vec![]);
    let live: Vec<Connection> = (1..=3).map(|i| conn(i, Duration::hours(2))).collect();
    for c in &live {
        assert_eq!(conns.put(c, 3).await.unwrap(), vec![], "within the cap");
    }
    let fourth = conn(4, Duration::hours(2));
    assert_eq!(conns.put(&fourth, 3).await.unwrap(), vec![live[0].clone()]);
    let mut left: Vec<ConnectionId> = conns
        .of_users(std::slice::from_ref(&dana), t0 + Duration::seconds(5))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    left.sort();
    let mut want = vec![live[1].id.clone(), live[2].id.clone(), fourth.id.clone()];
    want.sort();
    assert_eq!(left, want);
    // A cap of 1: the newest alone stays.
    let fifth = conn(5, Duration::hours(2));
    let evicted = conns.put(&fifth, 1).await.unwrap();
    assert_eq!(
        evicted.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![live[1].id.clone(), live[2].id.clone(), fourth.id.clone()]
    );
}
