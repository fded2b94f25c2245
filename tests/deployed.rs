//! The IaC template deployed on MiniStack, driven through its API Gateway WebSocket with real
//! clients: the authorizer, routes, integrations, IAM wiring, environment and tables of
//! `infra/template.yaml`, with the real Lambda binaries behind them.
//!
//! Every test shares one stack (deployed on first use by `infra/deploy --target local`) and
//! uses its own users, so the tests run in parallel without seeing each other's messages.
//! `tests/run.sh` runs this target after building the binaries:
//! `cargo test -p messenger-e2e --test deployed` with `MESSENGER_DYNAMODB_ENDPOINT` set.

use aws_sdk_dynamodb::types::AttributeValue::{self, N, S};
use messenger::domain::{Connection, ConnectionId, DeviceId, UserId};
use messenger::ports::Connections;
use messenger::routes::Route;
use messenger_e2e::deployed::{DeployedStack, RETENTION_DAYS, mint, refused_status};
use messenger_e2e::{Client, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

async fn message(client: &mut Client, seq: u64) -> Value {
    client
        .recv_where(|v| v["type"] == "message" && v["seq"] == seq)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_needs_a_valid_token() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let url = stack.url();
    // No identity source at all: API Gateway refuses before running the authorizer.
    assert_eq!(refused_status(url).await, 401);
    // The authorizer runs and denies: garbage, and a well-formed token signed with another
    // secret (messenger-local's development secret, which this stack was not given).
    assert_eq!(refused_status(&format!("{url}?token=not-a-jwt")).await, 403);
    let foreign = mint(messenger::auth::DEV_SECRET, "mallory", "phone");
    assert_eq!(refused_status(&format!("{url}?token={foreign}")).await, 403);

    // A valid token connects, and the authorizer's context names the caller: replies work.
    let mut ok = stack.connect("trudy", "phone").await;
    let reply = ok
        .request(json!({"action":"presence","users":["trudy"]}))
        .await;
    assert_eq!(reply["type"], "presence", "{reply}");
    assert_eq!(reply["users"][0]["user"], "trudy");
    assert_eq!(reply["users"][0]["online"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_reaches_both_devices_and_the_ack_comes_back_as_a_receipt() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let dm = "dm:alice:bob";
    let mut alice = stack.connect("alice", "phone").await;
    let mut bob_phone = stack.connect("bob", "phone").await;
    let mut bob_laptop = stack.connect("bob", "laptop").await;

    let sent = alice.send_to("bob", "c-1", "hi bob").await;
    assert_eq!(
        (&sent["type"], &sent["conversation"], &sent["seq"]),
        (&json!("sent"), &json!(dm), &json!(1)),
        "{sent}"
    );
    for device in [&mut bob_phone, &mut bob_laptop] {
        let m = message(device, 1).await;
        assert_eq!(
            (&m["from"], &m["body"], &m["client_msg_id"]),
            (&json!("alice"), &json!("hi bob"), &json!("c-1"))
        );
        assert_eq!(m["sent_at"], sent["sent_at"]);
    }

    let acked = bob_phone
        .request(json!({"action":"ack","conversation":dm,"seq":1,"kind":"delivered"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    let receipt = alice.recv_type("receipt").await;
    assert_eq!(
        receipt,
        json!({"type":"receipt","conversation":dm,"seq":1,"kind":"delivered","by":"bob"})
    );

    // $default answers an unknown action with an error frame echoing the request id.
    let unknown = alice.request(json!({"action":"dance"})).await;
    assert_eq!(
        (&unknown["type"], &unknown["code"]),
        (&json!("error"), &json!("unknown_action")),
        "{unknown}"
    );
    assert!(
        alice.backlog().iter().all(|v| v["type"] != "message"),
        "the sender's own connection gets no echo"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_recipient_gets_what_it_missed_by_sync_after_reconnecting() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let dm = "dm:carol:dave";
    let mut carol = stack.connect("carol", "phone").await;
    let mut dave = stack.connect("dave", "phone").await;
    carol.send_to("dave", "c-1", "one").await;
    message(&mut dave, 1).await;
    dave.close().await;

    // While dave is away (his $disconnect may still be running: a post to his closed
    // connection then gets 410, which counts him offline too), two more messages.
    for (i, body) in [(2, "two"), (3, "three")] {
        let sent = carol.send_to("dave", &format!("c-{i}"), body).await;
        assert_eq!(sent["seq"], i, "{sent}");
    }

    let mut dave = stack.connect("dave", "phone").await;
    let page = dave
        .request(json!({"action":"sync","since":{ dm: 1 }}))
        .await;
    assert_eq!(page["type"], "sync", "{page}");
    let got: Vec<(u64, &str)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["body"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(2, "two"), (3, "three")], "{page}");
    assert_eq!(page["more"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_connection_answering_410_is_deleted_by_the_send() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let store = stack.store().await;
    let erin = UserId::new("erin").unwrap();
    // A record whose socket does not exist (its $disconnect never ran): API Gateway answers
    // PostToConnection with 410 Gone. It sits in the deployed table like a real one.
    let now = chrono::Utc::now();
    let stale = Connection {
        id: ConnectionId::new("StaleConnId00=").unwrap(),
        user: erin.clone(),
        device: DeviceId::new("old-phone").unwrap(),
        connected_at: now - chrono::Duration::hours(1),
        expires_at: now + chrono::Duration::hours(2),
    };
    store.put(&stale).await.unwrap();
    let before = store
        .of_users(std::slice::from_ref(&erin), now)
        .await
        .unwrap();
    assert_eq!(before.len(), 1, "the stale record is in place: {before:?}");

    let mut frank = stack.connect("frank", "phone").await;
    let sent = frank.send_to("erin", "c-1", "are you there?").await;
    assert_eq!(sent["type"], "sent", "{sent}");

    // The send's fan-out posts to the stale id, gets 410 and deletes exactly that record.
    eventually("the stale connection record is deleted", async || {
        store
            .of_users(std::slice::from_ref(&erin), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    // And the message waits in the log for erin's next sync.
    let mut erin_now = stack.connect("erin", "phone").await;
    let page = erin_now.request(json!({"action":"sync","since":{}})).await;
    assert_eq!(page["messages"][0]["body"], "are you there?", "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_device_is_pushed_from_the_stream_and_the_topic_gets_the_event() {
    use messenger::ports::PushDevices;
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let sdk = messenger_aws::sdk::for_endpoint(&stack.endpoint).await;
    // An SQS subscriber of the stack's topic, as an analytics consumer would be.
    let queue =
        messenger_aws::testing::subscribed_queue(&sdk, stack.output("MessagesTopicArn")).await;

    let mut grace = stack.connect("grace", "phone").await;
    let r = grace
        .request(json!({"action":"register_push","platform":"fcm","token":"grace-fcm-token"}))
        .await;
    assert_eq!(r["type"], "push_registered", "{r}");
    grace.close().await;
    // fn-notify counts as online whoever has a connection record: wait for grace's
    // $disconnect (on the emulator it runs after the socket closes, not before).
    let store = stack.store().await;
    let grace_id = UserId::new("grace").unwrap();
    eventually(
        "grace's $disconnect has removed her connection",
        async || {
            let now = chrono::Utc::now();
            Connections::of_users(&store, std::slice::from_ref(&grace_id), now)
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;

    let mut heidi = stack.connect("heidi", "phone").await;
    assert_eq!(heidi.send_to("grace", "c-1", "dinner?").await["seq"], 1);

    // fn-notify, fed by the messages stream, publishes the event after deciding the pushes.
    let mut event = Value::Null;
    eventually(
        "the message event reaches the topic's subscriber",
        async || {
            let events = messenger_aws::testing::received_events(&sdk, &queue).await;
            match events
                .into_iter()
                .find(|(m, _)| m["conversation"] == "dm:grace:heidi")
            {
                Some((m, _)) => {
                    event = m;
                    true
                }
                None => false,
            }
        },
    )
    .await;
    assert_eq!(
        (event["seq"].as_u64(), event["from"].as_str()),
        (Some(1), Some("heidi"))
    );
    assert_eq!(event["offline"], json!(["grace"]));

    // fn-notify pushed grace's phone and SNS accepted it: the push's coalescing claim for seq 1
    // stands (a failed push releases it). MiniStack keeps nothing of platform publishes to read
    // back (docs/infra.md); what SNS receives is read back on moto in fn-notify's own test.
    let now = chrono::Utc::now();
    let claim = messenger::push::PushClaim {
        user: UserId::new("grace").unwrap(),
        device: DeviceId::new("phone").unwrap(),
        conversation: messenger::domain::ConversationId::new("dm:grace:heidi").unwrap(),
        seq: 1,
        at: now,
        not_before: now - chrono::Duration::seconds(60),
        acked: 0,
    };
    assert!(
        !store.claim(&claim).await.unwrap(),
        "grace's phone was pushed for seq 1"
    );
}

// ------------------------------------------------------------------ Identity=cognito

/// A connection attempt's outcome: the handshake's HTTP refusal, or 101.
async fn status_of(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cognito_users_chat_signed_in_with_an_id_token_and_an_access_token() {
    let stack = DeployedStack::cognito();
    let [alice, bob] = stack.pool_users(["alice@example.com", "bob@example.com"]);
    let mut alice_phone = stack.connect_with(&alice.id_token, "phone", "alice").await;
    let mut bob_laptop = stack.connect_with(&bob.access_token, "laptop", "bob").await;

    // User ids are the pool's `sub`s.
    let sent = alice_phone.send_to(&bob.sub, "c-1", "hi bob").await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let m = message(&mut bob_laptop, 1).await;
    assert_eq!(
        (&m["from"], &m["body"]),
        (&json!(alice.sub), &json!("hi bob"))
    );
    let acked = bob_laptop
        .request(json!({"action":"ack","conversation":sent["conversation"],"seq":1,"kind":"read"}))
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    let read = alice_phone
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
        .await;
    assert_eq!(read["by"], json!(bob.sub));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cognito_stack_refuses_every_bad_token_with_403() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let stack = DeployedStack::cognito();
    let [carol] = stack.pool_users(["carol@example.com"]);
    let url = |token: &str| format!("{}?token={token}&device=phone", stack.url());

    // Forged tokens start from Carol's genuine ID token and change one thing.
    let genuine: jsonwebtoken::TokenData<Value> =
        jsonwebtoken::dangerous::insecure_decode(&carol.id_token).expect("a JWT");
    let pool_key = stack.pool_signing_key("id");
    let resign = |claims: &Value| encode(&genuine.header, claims, &pool_key).unwrap();
    // The control: re-signed unchanged, it is accepted, so each refusal below is its change's.
    assert_eq!(status_of(&url(&resign(&genuine.claims))).await, 101);

    let now = chrono::Utc::now().timestamp();
    let with = |claim: &str, value: Value| {
        let mut c = genuine.claims.clone();
        c[claim] = value;
        c
    };
    let expired = resign(&with("exp", json!(now - 3600)));
    let wrong_audience = resign(&with("aud", json!("another-app-client")));
    let pool = stack.output("UserPoolId");
    let other_pool = format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}x");
    let wrong_issuer = resign(&with("iss", json!(other_pool)));
    let refresh_use = resign(&with("token_use", json!("refresh")));
    // Tampered: Carol's signature over someone else's claims.
    let parts: Vec<&str> = carol.id_token.split('.').collect();
    let claims = serde_json::to_vec(&with("sub", json!("mallory"))).unwrap();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims),
        parts[2]
    );
    // A key the pool does not publish, under a kid it does not publish.
    let unknown_kid =
        messenger::auth::testing::TestKey::rs256("not-the-pools-key").sign(&genuine.claims);
    // HS256 keyed with the pool's public key, under the pool key's kid.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = genuine.header.kid.clone();
    let public_pem = stack.pool_public_key_pem("id");
    let hs256 = encode(
        &hs_header,
        &genuine.claims,
        &EncodingKey::from_secret(public_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    // messenger-local's development token: not accepted by a Cognito stack.
    let dev = mint(messenger::auth::DEV_SECRET, &carol.sub, "phone");
    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("wrong issuer", wrong_issuer),
        ("a refresh token", refresh_use),
        ("tampered", tampered),
        ("unknown kid", unknown_kid),
        ("HS256 with the public key", hs256),
        ("a development token", dev),
    ] {
        assert_eq!(refused_status(&url(&token)).await, 403, "{what}");
    }
    assert_eq!(refused_status(stack.url()).await, 401, "no token");
    assert_eq!(
        refused_status(&format!(
            "{}?token={}&device=a%20b",
            stack.url(),
            carol.id_token
        ))
        .await,
        403,
        "a bad device name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_only_client_stays_connected_and_invokes_nothing() {
    let stack = DeployedStack::get();
    // Alone on the stack, so that no other test's frames run functions meanwhile.
    // ($disconnect of earlier tests' sockets and the stream-fed fn-notify may still run; a
    // heartbeat frame could never reach either.)
    let _alone = stack.exclusive().await;
    let frame_routes = [
        "authorizer",
        "connect",
        "default",
        "send",
        "ack",
        "sync",
        "presence",
        "groups",
        "devices",
    ];
    let mut ivan = stack.connect("ivan", "phone").await;
    let before = stack.invocations(&frame_routes);
    // The count sees invocations at all: ivan's own handshake ran these two.
    assert!(
        before["authorizer"] > 0 && before["connect"] > 0,
        "{before:?}"
    );
    for _ in 0..5 {
        ivan.send(json!({"action":"heartbeat"})).await;
    }
    // MiniStack handles a socket's frames one after another: once this request is answered,
    // the heartbeats before it have been handled.
    let reply = ivan
        .request(json!({"action":"presence","users":["ivan"]}))
        .await;
    assert_eq!(reply["users"][0]["online"], true, "{reply}");
    assert!(
        ivan.backlog().is_empty(),
        "nothing answers a heartbeat: {:?}",
        ivan.backlog()
    );
    let mut after = BTreeMap::new();
    eventually("fn-presence's invocation is logged", async || {
        after = stack.invocations(&frame_routes);
        after["presence"] > before["presence"]
    })
    .await;
    let mut expected = before.clone();
    *expected.get_mut("presence").unwrap() += 1;
    assert_eq!(
        after, expected,
        "the only invocation is the presence request's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_receipt_reaches_the_author_and_the_read_state_is_pulled() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let mut judy = stack.connect("judy", "phone").await;
    let mut kim = stack.connect("kim", "phone").await;
    let mut leo = stack.connect("leo", "phone").await;
    let group = judy
        .request(json!({"action":"create_group","name":"Crew","members":["kim","leo"]}))
        .await;
    let g = group["conversation"].as_str().expect("a group").to_owned();
    let sent = kim
        .request(json!({"action":"send","conversation":g,"client_msg_id":"k-1","body":"hey"}))
        .await;
    let seq = sent["seq"].as_u64().expect("a seq");
    message(&mut leo, seq).await;

    // An ack without an id: no reply; the receipt goes to kim, the message's author.
    leo.send(json!({"action":"ack","conversation":g,"seq":seq,"kind":"read"}))
        .await;
    let r = kim
        .recv_where(|v| v["type"] == "receipt" && v["kind"] == "read")
        .await;
    assert_eq!((&r["seq"], &r["by"]), (&json!(seq), &json!("leo")));
    let state = judy
        .request(json!({"action":"receipts","conversation":g}))
        .await;
    assert_eq!(state["type"], "receipts", "{state}");
    let leo_state = state["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "leo")
        .cloned();
    assert_eq!(
        leo_state,
        Some(json!({"user":"leo","delivered":seq,"read":seq}))
    );
    assert!(
        leo.backlog().iter().all(|v| v["type"] != "acked"),
        "{:?}",
        leo.backlog()
    );
}

// ------------------------------------------------------------------ every route of the template

/// The route keys that worked through the deployed stack: a frame's route when its reply was
/// its result (for `$default`, the `unknown_action` error it exists for), and the lifecycle
/// routes whose effect a scenario checked.
#[derive(Clone, Default)]
struct Exercised(Arc<Mutex<BTreeSet<&'static str>>>);

impl Exercised {
    /// Sends `frame` on `client` and returns the reply, recording its route if it worked.
    async fn call(&self, client: &mut Client, frame: Value) -> Value {
        let route = Route::select(Some(&frame.to_string()));
        let reply = client.request(frame).await;
        let worked = match route {
            Route::Default => reply["code"] == "unknown_action",
            _ => reply["type"] != "error",
        };
        if worked {
            self.saw(route);
        }
        reply
    }

    /// A route whose effect the scenario has just checked.
    fn saw(&self, route: Route) {
        self.0.lock().unwrap().insert(route.key());
    }
}

/// Every route of the table (which `template_routes.rs` holds equal to the template's) works
/// through the deployed stack, with IAM enforced: the scenarios below drive them with real
/// clients and check their effect in the deployed tables and SNS. A route that no scenario
/// exercised fails this test: give a new route its scenario here.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_of_the_template_works_through_the_deployed_stack() {
    let stack = DeployedStack::get();
    let _gate = stack.shared().await;
    let seen = Exercised::default();
    tokio::join!(
        lifecycle_presence_and_heartbeat(stack, &seen),
        chat_sync_and_history(stack, &seen),
        group_management_and_the_inbox(stack, &seen),
        push_registration(stack, &seen),
    );
    let seen = seen.0.lock().unwrap().clone();
    let missing: Vec<&str> = Route::all()
        .map(Route::key)
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "routes of the template that no deployed scenario exercised: {missing:?}"
    );
}

/// `$connect` records the connection (counted live for 2 h 5 min after it opened), `presence`
/// sees it, a `heartbeat` keeps the socket open and is never answered, `$disconnect` removes
/// the connection and records when it was last seen.
async fn lifecycle_presence_and_heartbeat(stack: &DeployedStack, seen: &Exercised) {
    let store = stack.store().await;
    let lara = UserId::new("walk-lara").unwrap();
    let before = chrono::Utc::now();
    let mut client = stack.connect("walk-lara", "phone").await;
    let conns = store
        .of_users(std::slice::from_ref(&lara), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(conns.len(), 1, "{conns:?}");
    let conn = &conns[0];
    assert_eq!(
        conn.expires_at - conn.connected_at,
        chrono::Duration::minutes(125)
    );
    seen.saw(Route::Connect);

    client
        .send(json!({"action":"heartbeat","id":"walk-heartbeat"}))
        .await;
    let p = seen
        .call(
            &mut client,
            json!({"action":"presence","users":["walk-lara"]}),
        )
        .await;
    assert_eq!(p["users"][0]["online"], true, "{p}");
    // MiniStack handles a socket's frames in order: the heartbeat was handled before the
    // presence request, and nothing answered it (an unknown action would get an error).
    assert!(
        client.backlog().is_empty(),
        "a heartbeat is never answered: {:?}",
        client.backlog()
    );
    seen.saw(Route::select(Some(r#"{"action":"heartbeat"}"#)));

    client.close().await;
    eventually("$disconnect removes the connection", async || {
        store
            .of_users(std::slice::from_ref(&lara), chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let presence = store
        .presence(std::slice::from_ref(&lara), chrono::Utc::now())
        .await
        .unwrap();
    let last_seen = presence[&lara].last_seen;
    assert!(last_seen.is_some_and(|t| t >= before), "{presence:?}");
    seen.saw(Route::Disconnect);
}

/// `send` stores (with the retention TTL), delivers and answers; `ack` moves the pointers (a
/// `read` past `delivered` gives two receipts); `sync` and `history` read the log back;
/// `$default` answers an unknown action.
async fn chat_sync_and_history(stack: &DeployedStack, seen: &Exercised) {
    let dm = "dm:walk-amy:walk-ben";
    let mut amy = stack.connect("walk-amy", "phone").await;
    let mut ben = stack.connect("walk-ben", "phone").await;
    let mut sent = Vec::new();
    for i in 1..=3 {
        let frame = json!({"action":"send","to":"walk-ben","client_msg_id":format!("w-{i}"),"body":format!("m{i}")});
        let reply = seen.call(&mut amy, frame).await;
        assert_eq!(
            (&reply["type"], &reply["seq"]),
            (&json!("sent"), &json!(i)),
            "{reply}"
        );
        assert_eq!(message(&mut ben, i).await["body"], format!("m{i}"));
        sent.push(reply);
    }
    let sent_at: chrono::DateTime<chrono::Utc> =
        sent[0]["sent_at"].as_str().unwrap().parse().unwrap();
    let key = [("pk", S(format!("M#{dm}#0"))), ("sk", N("1".into()))];
    let item = raw_item(stack, "MessagesTableName", key).await;
    let expires = sent_at + chrono::Duration::days(RETENTION_DAYS);
    assert_eq!(item["ttl"], N(ttl_secs(expires).to_string()), "{item:?}");

    let acked = seen
        .call(
            &mut ben,
            json!({"action":"ack","conversation":dm,"seq":2,"kind":"read"}),
        )
        .await;
    assert_eq!(acked["type"], "acked", "{acked}");
    for kind in ["delivered", "read"] {
        let r = amy.recv_type("receipt").await;
        assert_eq!(
            r,
            json!({"type":"receipt","conversation":dm,"seq":2,"kind":kind,"by":"walk-ben"})
        );
    }

    let page = seen
        .call(&mut ben, json!({"action":"sync","since":{dm: 1}}))
        .await;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!((seqs, &page["more"]), (vec![2, 3], &json!(false)), "{page}");
    let page = seen
        .call(
            &mut ben,
            json!({"action":"history","conversation":dm,"before":3,"limit":1}),
        )
        .await;
    assert_eq!(page["messages"][0]["body"], "m2", "{page}");
    assert_eq!(page["more"], true);

    let unknown = seen.call(&mut amy, json!({"action":"dance"})).await;
    assert_eq!(unknown["code"], "unknown_action", "{unknown}");
}

/// The group routes, each with its event on members' sockets; the last admin leaving promotes
/// the longest-standing member (a founder, though a later joiner sorts first); the inbox lists
/// the group as it now is.
async fn group_management_and_the_inbox(stack: &DeployedStack, seen: &Exercised) {
    let mut gus = stack.connect("walk-gus", "phone").await;
    let mut zed = stack.connect("walk-zed", "phone").await;
    let created = seen
        .call(
            &mut gus,
            json!({"action":"create_group","name":"Walk","members":["walk-zed","walk-ivy"]}),
        )
        .await;
    assert_eq!(
        (&created["type"], &created["seq"]),
        (&json!("group"), &json!(1)),
        "{created}"
    );
    let g = created["conversation"].as_str().unwrap().to_owned();
    let steps = [
        (
            json!({"action":"add_members","conversation":g,"users":["walk-abe"]}),
            "members_added",
        ),
        (
            json!({"action":"rename_group","conversation":g,"name":"Walkers"}),
            "group_renamed",
        ),
        (
            json!({"action":"remove_members","conversation":g,"users":["walk-ivy"]}),
            "members_removed",
        ),
        (
            json!({"action":"leave_group","conversation":g}),
            "member_left",
        ),
    ];
    for (seq, (frame, event)) in (2..).zip(steps) {
        let reply = seen.call(&mut gus, frame.clone()).await;
        assert_eq!(reply["seq"], seq, "{frame} → {reply}");
        let m = message(&mut zed, seq).await;
        assert_eq!(m["event"]["type"], event, "{m}");
        if event == "member_left" {
            assert_eq!(m["event"]["promoted"], json!(["walk-zed"]), "{m}");
        }
    }

    let state = seen
        .call(&mut zed, json!({"action":"receipts","conversation":g}))
        .await;
    assert_eq!(
        state["members"],
        json!([{"user":"walk-abe","delivered":0,"read":0},{"user":"walk-zed","delivered":0,"read":0}]),
        "{state}"
    );
    let inbox = seen.call(&mut zed, json!({"action":"conversations"})).await;
    assert_eq!(
        inbox["conversations"],
        json!([{"conversation":g,"kind":"group","name":"Walkers","role":"admin","last_seq":5,"delivered":0,"read":0}]),
        "{inbox}"
    );
}

/// `register_push` creates the device's SNS endpoint with its token and records the device;
/// `unregister_push` deletes both.
async fn push_registration(stack: &DeployedStack, seen: &Exercised) {
    use messenger::ports::PushDevices;
    let store = stack.store().await;
    let sns = aws_sdk_sns::Client::new(&stack.sdk().await);
    let (kim, phone) = (
        UserId::new("walk-kim").unwrap(),
        DeviceId::new("phone").unwrap(),
    );
    let token = format!("walk-kim-{}", messenger::contract::tag());
    let mut client = stack.connect("walk-kim", "phone").await;
    let r = seen
        .call(
            &mut client,
            json!({"action":"register_push","platform":"fcm","token":token}),
        )
        .await;
    assert_eq!(
        r,
        json!({"id":r["id"],"type":"push_registered","device":"phone","platform":"fcm","preview":false})
    );
    let device = PushDevices::get(&store, &kim, &phone)
        .await
        .unwrap()
        .expect("the device is recorded");
    let attrs = sns
        .get_endpoint_attributes()
        .endpoint_arn(&device.endpoint)
        .send()
        .await
        .expect("the endpoint exists");
    assert_eq!(attrs.attributes.unwrap()["Token"], token);

    let r = seen
        .call(&mut client, json!({"action":"unregister_push"}))
        .await;
    assert_eq!(r["type"], "push_unregistered", "{r}");
    assert_eq!(PushDevices::get(&store, &kim, &phone).await.unwrap(), None);
    let gone = sns
        .get_endpoint_attributes()
        .endpoint_arn(&device.endpoint)
        .send()
        .await;
    assert!(
        gone.as_ref().is_err_and(|e| e
            .as_service_error()
            .is_some_and(|e| e.is_not_found_exception())),
        "the endpoint is deleted: {gone:?}"
    );
}

/// One item of a deployed table, read as stored.
async fn raw_item<const K: usize>(
    stack: &DeployedStack,
    table: &str,
    key: [(&str, AttributeValue); K],
) -> HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(&stack.sdk().await)
        .get_item()
        .table_name(stack.output(table))
        .set_key(Some(
            key.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no such item in {table}"))
}

/// The TTL attribute of an item expiring at `t`: epoch seconds, rounded up.
fn ttl_secs(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}
