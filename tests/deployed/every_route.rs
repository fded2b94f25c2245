//! Every route of the route table (which `template_routes.rs` holds equal to the template's)
//! through the deployed stack: one scenario per group of routes, and a test that fails when a
//! route was not exercised. A new route gets its scenario here.

use super::message;
use aws_sdk_dynamodb::types::AttributeValue::{self, N, S};
use messenger::domain::{DeviceId, UserId};
use messenger::ports::Connections;
use messenger::routes::Route;
use messenger_e2e::deployed::{DeployedStack, RETENTION_DAYS};
use messenger_e2e::{Client, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

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
        conversation_features(stack, &seen),
        blocking(stack, &seen),
        message_requests(stack, &seen),
        attachments(stack, &seen),
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
    // Its idempotency key lapses after the key window (7 days), or with the message if sooner.
    let key = [("pk", S("I#walk-amy#w-1".into())), ("sk", N("0".into()))];
    let idem = raw_item(stack, "MessagesTableName", key).await;
    let lapses = expires.min(sent_at + messenger::domain::KEY_WINDOW);
    assert_eq!(idem["ttl"], N(ttl_secs(lapses).to_string()), "{idem:?}");
    assert_eq!(idem["seq"], N("1".into()), "{idem:?}");

    // Amy's first message made it a message request to ben: he takes it, so she gets his
    // receipts.
    let r = seen
        .call(&mut ben, json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
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

    // Gus is no contact of zed's: the group is a message request in zed's inbox until he takes
    // it.
    let requests = seen
        .call(
            &mut zed,
            json!({"action":"conversations","folder":"requests"}),
        )
        .await;
    assert_eq!(requests["conversations"][0]["request"], true, "{requests}");
    let r = seen
        .call(&mut zed, json!({"action":"accept","conversation":g}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    let state = seen
        .call(&mut zed, json!({"action":"receipts","conversation":g}))
        .await;
    assert_eq!(
        state["members"],
        json!([{"user":"walk-abe","delivered":0,"read":0},{"user":"walk-zed","delivered":0,"read":0}]),
        "{state}"
    );
    let mut inbox = seen.call(&mut zed, json!({"action":"conversations"})).await;
    let last = inbox["conversations"][0]
        .as_object_mut()
        .and_then(|row| row.remove("last"))
        .unwrap_or_default();
    assert_eq!(
        inbox["conversations"],
        json!([{"conversation":g,"kind":"group","name":"Walkers","role":"admin","last_seq":5,
                "delivered":0,"read":0,"unread":0,"muted":false}]),
        "{inbox}"
    );
    assert_eq!(
        (&last["seq"], &last["event"], &last["from"]),
        (&json!(5), &json!("member_left"), &json!("walk-gus")),
        "{last}"
    );
}

/// `typing` reaches the other member and is never answered; `edit`, `react` and `delete` change
/// a message and deliver the entry that records it; `mute` and `unmute` set and clear the
/// membership's `muted_until`.
async fn conversation_features(stack: &DeployedStack, seen: &Exercised) {
    use messenger::ports::Conversations;
    let dm = "dm:walk-mia:walk-noa";
    let mut mia = stack.connect("walk-mia", "phone").await;
    let mut noa = stack.connect("walk-noa", "phone").await;
    let hi = json!({"action":"send","to":"walk-noa","client_msg_id":"f-1","body":"hi"});
    assert_eq!(seen.call(&mut mia, hi).await["seq"], 1);
    message(&mut noa, 1).await;
    // Noa takes mia's message request (until then her typing would not reach mia).
    let r = noa
        .request(json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    noa.send(json!({"action":"typing","conversation":dm})).await;
    let typing = mia.recv_type("typing").await;
    assert_eq!(
        typing,
        json!({"type":"typing","conversation":dm,"user":"walk-noa"})
    );
    seen.saw(Route::select(Some(r#"{"action":"typing"}"#)));

    let steps = [
        (
            true,
            json!({"action":"edit","conversation":dm,"seq":1,"body":"hi!"}),
            "message_edited",
        ),
        (
            false,
            json!({"action":"react","conversation":dm,"seq":1,"emoji":"👍"}),
            "reaction_added",
        ),
        (
            true,
            json!({"action":"delete","conversation":dm,"seq":1}),
            "message_deleted",
        ),
    ];
    for (seq, (by_mia, frame, event)) in (2..).zip(steps) {
        let (actor, other) = if by_mia {
            (&mut mia, &mut noa)
        } else {
            (&mut noa, &mut mia)
        };
        let reply = seen.call(actor, frame.clone()).await;
        assert_eq!(reply["entry"]["seq"], seq, "{frame} → {reply}");
        let m = message(other, seq).await;
        assert_eq!(
            (&m["event"]["type"], &m["target"]["seq"]),
            (&json!(event), &json!(1)),
            "{m}"
        );
    }

    let store = stack.store().await;
    let (conv, noa_id) = (
        messenger::domain::ConversationId::new(dm).unwrap(),
        UserId::new("walk-noa").unwrap(),
    );
    let muted = seen
        .call(&mut noa, json!({"action":"mute","conversation":dm}))
        .await;
    assert_eq!(muted["muted"], true, "{muted}");
    let m = store.membership(&conv, &noa_id).await.unwrap().unwrap();
    assert_eq!(m.muted_until, Some(messenger::domain::muted_forever()));
    let unmuted = seen
        .call(&mut noa, json!({"action":"unmute","conversation":dm}))
        .await;
    assert_eq!(unmuted["muted"], false, "{unmuted}");
    let m = store.membership(&conv, &noa_id).await.unwrap().unwrap();
    assert_eq!(m.muted_until, None);
}

/// `report` stores a report with the message's copy; `block` stores the record (and is private: the blocked user hears nothing); with it the
/// blocked user's send is refused by fn-send, the blocker reads as never seen through
/// fn-presence, and a group naming the blocker is refused by fn-groups, each reading the record
/// with IAM enforced; `blocked` lists it and `unblock` removes it.
async fn blocking(stack: &DeployedStack, seen: &Exercised) {
    use messenger::ports::Blocks;
    let store = stack.store().await;
    let (ola, pia) = (
        UserId::new("walk-ola").unwrap(),
        UserId::new("walk-pia").unwrap(),
    );
    let mut ola_phone = stack.connect("walk-ola", "phone").await;
    let mut pia_phone = stack.connect("walk-pia", "phone").await;
    let hi = json!({"action":"send","to":"walk-ola","client_msg_id":"b-1","body":"hi"});
    assert_eq!(seen.call(&mut pia_phone, hi).await["seq"], 1);
    message(&mut ola_phone, 1).await;
    // Ola takes pia's message request: what hides ola from pia below is the block alone.
    let r = ola_phone
        .request(json!({"action":"accept","conversation":"dm:walk-ola:walk-pia"}))
        .await;
    assert_eq!(r["state"], "accepted", "{r}");
    // `report` stores the report in the deployed tables (and publishes it: the moderation
    // topic's own test reads it back from a subscriber).
    let report =
        json!({"action":"report","conversation":"dm:walk-ola:walk-pia","seq":1,"reason":"spam"});
    let reported = seen.call(&mut ola_phone, report).await;
    assert_eq!(reported["type"], "reported", "{reported}");
    {
        use messenger::ports::Reports;
        let id = reported["report"].as_str().unwrap().parse().unwrap();
        let stored = store.report(&id).await.unwrap().expect("stored");
        assert_eq!(
            (stored.reporter, stored.message.body.as_deref()),
            (ola.clone(), Some("hi"))
        );
    }

    let blocked = seen
        .call(&mut ola_phone, json!({"action":"block","user":"walk-pia"}))
        .await;
    assert_eq!(
        (&blocked["type"], &blocked["blocked"]),
        (&json!("block_state"), &json!(true)),
        "{blocked}"
    );
    let (list, _) = store.blocked(&ola, None, 10).await.unwrap();
    assert_eq!(list.iter().map(|b| &b.user).collect::<Vec<_>>(), [&pia]);

    let refused = pia_phone.send_to("walk-ola", "b-2", "still there?").await;
    assert_eq!(
        (&refused["code"], &refused["message"]),
        (&json!("forbidden"), &json!("you can't message this user")),
        "{refused}"
    );
    let p = pia_phone
        .request(json!({"action":"presence","users":["walk-ola"]}))
        .await;
    assert_eq!(
        p["users"][0],
        json!({"user":"walk-ola","online":false,"last_seen":null}),
        "{p}"
    );
    let g = pia_phone
        .request(json!({"action":"create_group","name":"No","members":["walk-ola"]}))
        .await;
    assert_eq!(g["code"], "forbidden", "{g}");

    let list = seen.call(&mut ola_phone, json!({"action":"blocked"})).await;
    assert_eq!(list["users"][0]["user"], "walk-pia", "{list}");
    let unblocked = seen
        .call(
            &mut ola_phone,
            json!({"action":"unblock","user":"walk-pia"}),
        )
        .await;
    assert_eq!(unblocked["blocked"], false, "{unblocked}");
    assert!(store.blocked(&ola, None, 10).await.unwrap().0.is_empty());
    let again = json!({"action":"send","to":"walk-ola","client_msg_id":"b-3","body":"hi again"});
    assert_eq!(seen.call(&mut pia_phone, again).await["seq"], 2);
    let m = message(&mut ola_phone, 2).await;
    assert_eq!(m["body"], "hi again");
    assert!(
        !pia_phone
            .backlog()
            .iter()
            .any(|f| f["type"] == "block_state")
    );
}

/// A stranger's first message is a message request: in the recipient's `requests` folder;
/// `decline` (fn-groups, with IAM enforced) stores both standings, and the sender's next send
/// is refused by fn-send; `accept` takes it back and the sender may write again.
async fn message_requests(stack: &DeployedStack, seen: &Exercised) {
    use messenger::domain::{ConversationId, RequestState};
    use messenger::ports::Conversations;
    let store = stack.store().await;
    let dm = "dm:walk-rex:walk-sue";
    let conv = ConversationId::new(dm).unwrap();
    let (rex_id, sue_id) = (
        UserId::new("walk-rex").unwrap(),
        UserId::new("walk-sue").unwrap(),
    );
    let mut rex = stack.connect("walk-rex", "phone").await;
    let mut sue = stack.connect("walk-sue", "phone").await;
    let hi = json!({"action":"send","to":"walk-sue","client_msg_id":"q-1","body":"hi sue"});
    assert_eq!(seen.call(&mut rex, hi).await["seq"], 1);
    message(&mut sue, 1).await;
    let page = sue
        .request(json!({"action":"conversations","folder":"requests"}))
        .await;
    assert_eq!(
        (&page["conversations"][0]["conversation"], &page["requests"]),
        (&json!(dm), &json!(1)),
        "{page}"
    );
    let standing = async |u: &UserId| store.membership(&conv, u).await.unwrap().unwrap().request;
    assert_eq!(standing(&sue_id).await, RequestState::Pending);
    assert_eq!(standing(&rex_id).await, RequestState::Awaiting);

    let declined = seen
        .call(&mut sue, json!({"action":"decline","conversation":dm}))
        .await;
    assert_eq!(declined["state"], "declined", "{declined}");
    assert_eq!(standing(&sue_id).await, RequestState::Declined);
    assert_eq!(standing(&rex_id).await, RequestState::Refused);
    let refused = rex.send_to("walk-sue", "q-2", "hello?").await;
    assert_eq!(
        (&refused["code"], &refused["message"]),
        (&json!("forbidden"), &json!("you can't message this user")),
        "{refused}"
    );

    let accepted = seen
        .call(&mut sue, json!({"action":"accept","conversation":dm}))
        .await;
    assert_eq!(accepted["state"], "accepted", "{accepted}");
    assert_eq!(standing(&sue_id).await, RequestState::Accepted);
    assert_eq!(standing(&rex_id).await, RequestState::Accepted);
    assert_eq!(rex.send_to("walk-sue", "q-3", "hello!").await["seq"], 2);
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

/// `upload` signs a POST form for the stack's bucket, which a real HTTP client posts a 1 MB
/// photo with straight to S3 (MiniStack's, IAM enforced: the form is signed with the send
/// function's role); `send` attaches it and the other member downloads it byte-identical from
/// the live message, `history` and `download`. Refused: another size, another type, a
/// non-member's upload and download, an upload of another conversation. `delete` deletes the
/// object.
async fn attachments(stack: &DeployedStack, seen: &Exercised) {
    use messenger::contract::ObjectClient;
    let http = messenger_aws::testing::HttpObjectClient::default();
    let dm = "dm:walk-ana:walk-bo";
    let mut ana = stack.connect("walk-ana", "phone").await;
    let mut bo = stack.connect("walk-bo", "phone").await;
    let mut cy = stack.connect("walk-cy", "phone").await;
    let file: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let ask = |to: Value, cmid: &str, content_type: &str, size: usize| {
        let mut frame = json!({"action": "upload", "client_msg_id": cmid,
            "content_type": content_type, "size": size, "name": "walk.jpg"});
        for (k, v) in to.as_object().unwrap() {
            frame[k] = v.clone();
        }
        frame
    };
    let fields = |form: &Value| -> Vec<(String, String)> {
        form["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    let ok = |status: u16| (200..300).contains(&status);

    let form = seen
        .call(
            &mut ana,
            ask(json!({"to": "walk-bo"}), "a-1", "image/jpeg", file.len()),
        )
        .await;
    assert_eq!(form["type"], "upload", "{form}");
    let url = form["url"].as_str().unwrap();
    let bucket = stack.output("FilesBucketName");
    assert!(
        url.contains(bucket),
        "{url} is not the stack's bucket {bucket}"
    );
    // Another size, another type: S3 refuses them and stores nothing.
    assert!(!ok(http
        .post_form(url, &fields(&form), file[1..].to_vec())
        .await));
    let mut retyped = fields(&form);
    retyped.retain(|(k, _)| k != "Content-Type");
    retyped.push(("Content-Type".into(), "text/html".into()));
    assert!(!ok(http.post_form(url, &retyped, file.clone()).await));
    let html = ana
        .request(ask(json!({"to": "walk-bo"}), "a-1", "text/html", 10))
        .await;
    assert_eq!(html["code"], "bad_request", "{html}");
    let id = form["attachment"].as_str().unwrap();
    let early = ana
        .request(
            json!({"action": "send", "to": "walk-bo", "client_msg_id": "a-1", "attachments": [id]}),
        )
        .await;
    assert_eq!(early["code"], "not_found", "nothing was stored: {early}");

    let status = http.post_form(url, &fields(&form), file.clone()).await;
    assert!(ok(status), "the upload was refused: {status}");
    let sent = ana
        .request(json!({"action": "send", "to": "walk-bo", "client_msg_id": "a-1", "body": "the view", "attachments": [id]}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let seq = sent["seq"].as_u64().unwrap();
    let live = message(&mut bo, seq).await;
    let got = http
        .get(live["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert!(
        got.status == 200 && got.body == file,
        "live: {}",
        got.status
    );
    let page = bo
        .request(json!({"action": "history", "conversation": dm}))
        .await;
    let got = http
        .get(
            page["messages"][0]["attachments"][0]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert!(
        got.status == 200 && got.body == file,
        "history: {}",
        got.status
    );
    let fresh = seen
        .call(
            &mut bo,
            json!({"action": "download", "conversation": dm, "seq": seq}),
        )
        .await;
    let fresh_url = fresh["attachments"][0]["url"].as_str().unwrap().to_owned();
    let got = http.get(&fresh_url).await;
    assert!(
        got.status == 200 && got.body == file,
        "download: {}",
        got.status
    );

    // A non-member: no form for the conversation, no URLs of its messages.
    let outsider = cy
        .request(ask(json!({"conversation": dm}), "c-1", "image/jpeg", 10))
        .await;
    assert_eq!(outsider["code"], "forbidden", "{outsider}");
    let outsider = cy
        .request(json!({"action": "download", "conversation": dm, "seq": seq}))
        .await;
    assert_eq!(outsider["code"], "forbidden", "{outsider}");
    // An upload of another conversation (ana's 1:1 with cy) cannot be sent here.
    let other = ana
        .request(ask(json!({"to": "walk-cy"}), "a-2", "image/jpeg", 3))
        .await;
    assert!(ok(http
        .post_form(
            other["url"].as_str().unwrap(),
            &fields(&other),
            vec![1, 2, 3]
        )
        .await));
    let elsewhere = ana
        .request(json!({"action": "send", "to": "walk-bo", "client_msg_id": "a-2", "attachments": [other["attachment"]]}))
        .await;
    assert_eq!(elsewhere["code"], "not_found", "{elsewhere}");

    // Deleting the message for everyone deletes the object.
    let deleted = ana
        .request(json!({"action": "delete", "conversation": dm, "seq": seq}))
        .await;
    assert_eq!(deleted["type"], "deleted", "{deleted}");
    assert!(
        !ok(http.get(&fresh_url).await.status),
        "the deleted message's file is served"
    );
}
