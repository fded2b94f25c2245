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

/// A token is held by the device that last registered it: `token_holder` names it, a device
/// that registers another token gives up the old one, `remove` clears its holding, and
/// `remove_if_token` removes a registration only while it still has that token.
pub async fn a_token_has_one_holder(devices: Arc<dyn PushDevices>) {
    let t = tag();
    let (alice, bob) = (user("a", &t), user("b", &t));
    let phone = DeviceId::new("phone").unwrap();
    let (t1, t2) = (format!("tok1-{t}"), format!("tok2-{t}"));
    let now = Utc::now();
    let reg = |u: &UserId, token: &str| PushDevice {
        user: u.clone(),
        device: phone.clone(),
        platform: Platform::Fcm,
        token: token.into(),
        endpoint: format!("endpoint-{token}"),
        preview: false,
        registered_at: now,
    };
    let holder = |token: &str| {
        let (devices, token) = (devices.clone(), token.to_owned());
        async move { devices.token_holder(Platform::Fcm, &token).await.unwrap() }
    };
    assert_eq!(holder(&t1).await, None);
    devices.put(&reg(&alice, &t1)).await.unwrap();
    assert_eq!(holder(&t1).await, Some((alice.clone(), phone.clone())));
    assert_eq!(
        devices.token_holder(Platform::Apns, &t1).await.unwrap(),
        None,
        "per platform"
    );
    // Bob registers the same token: he holds it now. Alice's registration stays until it is
    // removed (register_push removes it with remove_if_token).
    devices.put(&reg(&bob, &t1)).await.unwrap();
    assert_eq!(holder(&t1).await, Some((bob.clone(), phone.clone())));
    assert_eq!(
        devices.remove_if_token(&alice, &phone, &t2).await.unwrap(),
        None,
        "alice's registration has another token"
    );
    assert_eq!(
        devices.remove_if_token(&alice, &phone, &t1).await.unwrap(),
        Some(reg(&alice, &t1))
    );
    assert_eq!(devices.get(&alice, &phone).await.unwrap(), None);
    assert_eq!(
        holder(&t1).await,
        Some((bob.clone(), phone.clone())),
        "still bob's"
    );
    // Bob's device moves to another token: it no longer holds the first.
    devices.put(&reg(&bob, &t2)).await.unwrap();
    assert_eq!(holder(&t1).await, None);
    assert_eq!(holder(&t2).await, Some((bob.clone(), phone.clone())));
    devices.remove(&bob, &phone).await.unwrap();
    assert_eq!(holder(&t2).await, None);
}
