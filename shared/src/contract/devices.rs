//! Contract: Push registrations and the claims that coalesce pushes.

use super::*;

/// Push registrations per (user, device), and claims that allow one push until the user acks
/// the pushed seq, the claim is released, or the window passes.
pub async fn push_devices_and_claims(devices: Arc<dyn PushDevices>) {
    let t = tag();
    let (alice, bob, c) = (user("a", &t), user("b", &t), conv(&t));
    let (phone, tablet) = (
        DeviceId::new("phone").unwrap(),
        DeviceId::new("tablet").unwrap(),
    );
    let now = Utc::now();
    let reg = |u: &UserId, d: &DeviceId, token: &str| PushDevice {
        user: u.clone(),
        device: d.clone(),
        platform: Platform::Fcm,
        token: token.into(),
        endpoint: format!("endpoint-{token}"),
        preview: false,
        registered_at: now,
    };
    devices.put(&reg(&alice, &phone, "t1")).await.unwrap();
    devices.put(&reg(&alice, &tablet, "t2")).await.unwrap();
    devices.put(&reg(&bob, &phone, "t3")).await.unwrap();
    devices.put(&reg(&alice, &phone, "t4")).await.unwrap();
    assert_eq!(
        devices.get(&alice, &phone).await.unwrap(),
        Some(reg(&alice, &phone, "t4"))
    );
    let mut tokens: Vec<String> = devices
        .of_users(std::slice::from_ref(&alice))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.token)
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["t2", "t4"]);
    assert_eq!(
        devices.remove(&alice, &tablet).await.unwrap(),
        Some(reg(&alice, &tablet, "t2"))
    );
    assert_eq!(devices.remove(&alice, &tablet).await.unwrap(), None);
    assert_eq!(
        devices
            .of_users(&[alice.clone(), bob.clone()])
            .await
            .unwrap()
            .len(),
        2
    );

    let window = Duration::seconds(60);
    let claim = |secs: i64, seq: Seq, acked: Seq| {
        let at = now + Duration::seconds(secs);
        let c = PushClaim {
            user: alice.clone(),
            device: phone.clone(),
            conversation: c.clone(),
            seq,
            at,
            not_before: at - window,
            acked,
        };
        let devices = devices.clone();
        async move { devices.claim(&c).await.unwrap() }
    };
    assert!(claim(0, 1, 0).await, "the first push of a burst");
    assert!(!claim(10, 2, 0).await, "coalesced");
    assert!(claim(11, 3, 1).await, "the user acked the pushed seq");
    assert!(
        !claim(12, 4, 2).await,
        "acked something, but not the pushed seq 3"
    );
    devices.release(&alice, &phone, &c).await.unwrap();
    assert!(claim(13, 5, 2).await, "released after a failed push");
    assert!(claim(74, 6, 2).await, "after the window");
}
