//! Set-up layer: what a topology needs on the server before the clock starts. Groups are
//! created through the public protocol (`create_group`), by each group's first member, and
//! every other member must have seen the `group_created` event before the load begins, so no
//! set-up frame is mistaken for load.

use crate::BenchError;
use crate::client::Ws;
use crate::plan::{Plan, SendTarget};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for one set-up frame: a hang guard, not a timing check.
const WAIT: Duration = Duration::from_secs(60);

/// Creates every group of `plan` (at most `concurrency` at a time), fills in the plan's send
/// targets and reserved seqs, and hands the connections back in plan order.
pub async fn create_groups(
    plan: &mut Plan,
    conns: Vec<Ws>,
    concurrency: usize,
) -> Result<Vec<Ws>, BenchError> {
    let groups = plan.groups_of();
    let mut conns = conns.into_iter();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (k, range) in groups.iter().enumerate() {
        let members: Vec<Ws> = conns.by_ref().take(range.len()).collect();
        let users: Vec<String> = plan.users[range.clone()].to_vec();
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            create_one(k, members, &users).await
        });
    }
    let mut created: Vec<Option<(Vec<Ws>, String, u64)>> =
        (0..groups.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (k, members, conv, seq) = joined??;
        created[k] = Some((members, conv, seq));
    }
    let mut targets = Vec::with_capacity(plan.len());
    let mut ordered = Vec::with_capacity(plan.len());
    for (members, conv, seq) in created.into_iter().map(|c| c.expect("every group created")) {
        targets.extend((0..members.len()).map(|_| SendTarget::Conversation(conv.clone())));
        ordered.extend(members);
        plan.reserved_seqs.insert(conv, seq);
    }
    plan.targets = targets;
    Ok(ordered)
}

/// Group `k`: its first member creates it with everyone else (at most 40 ids a frame: the
/// rest are added 40 at a time); returns the connections, the conversation id and the seq of
/// the last set-up event.
async fn create_one(
    k: usize,
    mut members: Vec<Ws>,
    users: &[String],
) -> Result<(usize, Vec<Ws>, String, u64), BenchError> {
    let fail = |what: String| BenchError::Setup(format!("group {k}: {what}"));
    let mut chunks = users[1..].chunks(IDS_PER_FRAME);
    let mut frame = json!({
        "action": "create_group",
        "id": 0,
        "name": format!("bench {k}"),
        "members": chunks.next().unwrap_or_default(),
        "client_msg_id": format!("bench-group-{k}"),
    });
    let creator = &mut members[0];
    let mut conv = String::new();
    let mut seq = 0;
    for n in 0.. {
        creator
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| fail(format!("sending {}: {e}", frame["action"])))?;
        let reply = next_frame(creator, |v| v["id"] == n)
            .await
            .map_err(|e| fail(format!("waiting for the reply to {}: {e}", frame["action"])))?;
        let (Some("group"), Some(c), Some(s)) = (
            reply["type"].as_str(),
            reply["conversation"].as_str(),
            reply["seq"].as_u64(),
        ) else {
            return Err(fail(format!("{} answered {reply}", frame["action"])));
        };
        (conv, seq) = (c.to_owned(), s);
        let Some(chunk) = chunks.next() else { break };
        frame = json!({"action": "add_members", "id": n + 1, "conversation": conv, "users": chunk});
    }
    for (i, member) in members.iter_mut().enumerate().skip(1) {
        next_frame(member, |v| {
            v["type"] == "message" && v["conversation"] == conv && v["seq"] == seq
        })
        .await
        .map_err(|e| fail(format!("member {i} never saw the last set-up event: {e}")))?;
    }
    Ok((k, members, conv, seq))
}

/// Most user ids in one group-change frame (the server's default limit).
const IDS_PER_FRAME: usize = 40;

/// Reads frames until one matches `wanted` (others are set-up noise and dropped).
async fn next_frame(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no answer within {} s", WAIT.as_secs()))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("a frame that is not JSON ({e}): {text}"))?;
                if wanted(&v) {
                    return Ok(v);
                }
            }
            Some(Ok(Message::Close(c))) => return Err(format!("closed by the server: {c:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("socket error: {e}")),
            None => return Err("socket ended".into()),
        }
    }
}
