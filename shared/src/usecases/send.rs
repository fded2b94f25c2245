//! Use case of the `send` route: store first, ack the sender, then fan out.

use super::{conflict, forbidden, members_at, take_token};
use crate::domain::{ConversationId, Message, NewMessage, RequestDigest, UserId};
use crate::ports::{Append, Effects, WriteKeys};
use crate::protocol::{SendFrame, ServerFrame};
use crate::ratelimit::Bucket;
use crate::request::Request;
use crate::{App, Error};

/// `send`: validates the frame, appends the message (idempotent on `(sender, client_msg_id)`
/// for the same request, a `conflict` for another), answers `sent` once it is durable, then
/// delivers it to every live connection of every member except the sending one.
///
/// A 1:1 conversation's memberships are created by its first stored message, in the same
/// atomic write: a send that stores nothing (a conflict, a refusal) leaves no membership.
///
/// Requests: the caller's token (rate limit), one batched read (membership, head, idempotency
/// key), the append transaction; then a group's member list (consistent) and the connections
/// of every member (one batched read per 100 members).
pub async fn send(app: &App, req: &Request, frame: SendFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let limit = app.limits.max_body_bytes;
    if frame.body.len() > limit {
        return Err(Error::TooLarge(format!(
            "message body is {} bytes; the limit is {limit}",
            frame.body.len()
        )));
    }
    if frame.body.is_empty() {
        return Err(Error::BadRequest("message body must not be empty".into()));
    }
    let conv = match (frame.to, frame.conversation) {
        (Some(to), None) => ConversationId::direct(me, &to),
        (None, Some(conv)) => conv,
        (Some(_), Some(_)) => {
            return Err(Error::BadRequest(
                "give either \"to\" or \"conversation\", not both".into(),
            ));
        }
        (None, None) => {
            return Err(Error::BadRequest(
                "missing \"to\" or \"conversation\"".into(),
            ));
        }
    };
    let digest = RequestDigest::of("send", &conv, &[&frame.body]);
    let now = app.now();
    let keys = WriteKeys {
        conversation: &conv,
        user: me,
        client_msg_id: Some(&frame.client_msg_id),
        message: None,
    };
    // The token first: a refused send costs its token's request at most (none when this
    // process already knows the bucket is empty), never the reads behind it.
    take_token(app, me, Bucket::Send).await?;
    let seen = app.stores.reads.read_for_write(keys, now).await?;
    let effects = match (&seen.membership, conv.direct_members()) {
        (Some(_), _) => Effects::default(),
        // A 1:1 conversation springs into existence with its first message, by either user.
        (None, Some((a, b))) if &a == me || &b == me => Effects {
            direct: if a == b { vec![a] } else { vec![a, b] },
            group: None,
        },
        (None, _) => return Err(forbidden(&conv)),
    };
    let cmid = frame.client_msg_id;
    if let Some(sent) = &seen.sent
        && !sent.is_same_request(&conv, &digest)
    {
        return Err(conflict(&cmid));
    }
    let msg = NewMessage {
        conversation: conv.clone(),
        from: me.clone(),
        client_msg_id: cmid.clone(),
        digest,
        body: frame.body,
        event: None,
        sent_at: now,
        expires_at: app.limits.retention.map(|r| now + r),
    };
    // A retry (the key is stored) reads the key again in the append and answers with it.
    let head = seen.sent.is_none().then_some(seen.last_seq);
    let (m, duplicate) = match app.stores.messages.append_with(msg, &effects, head).await? {
        Append::Stored(m) => (m, false),
        Append::Duplicate(m) => (m, true),
        Append::Conflict(_) => return Err(conflict(&cmid)),
        // A 1:1 send's memberships are never refused; nothing else has effects here.
        Append::Refused(r) => {
            return Err(Error::Store(crate::ports::StoreError::Corrupt(format!(
                "a send was refused: {r:?}"
            ))));
        }
    };
    req.reply(
        app,
        &ServerFrame::Sent {
            client_msg_id: m.client_msg_id.clone(),
            conversation: m.conversation.clone(),
            seq: m.seq,
            sent_at: m.sent_at,
            duplicate,
        },
    )
    .await;
    if duplicate {
        tracing::info!(conversation = %m.conversation, seq = m.seq, "duplicate send answered");
        return Ok(());
    }
    fan_out(app, req, &m).await;
    Ok(())
}

/// Delivers a stored message to its members (those it reached are not pushed). The message is
/// durable and acknowledged: a failing fan-out must not turn into an error for the sender.
/// Recipients that miss it get it on their next sync.
async fn fan_out(app: &App, req: &Request, m: &Message) {
    let frame = ServerFrame::Message(m.into());
    let members: Vec<UserId> = match members_at(app, &m.conversation, m.seq).await {
        Ok(members) => members,
        Err(e) => {
            tracing::error!(conversation = %m.conversation, seq = m.seq, error = ?e, "member list unavailable for the fan-out");
            return;
        }
    };
    match app
        .deliver(&members, &frame, Some(&req.caller.connection))
        .await
    {
        Ok(d) => {
            tracing::info!(
                conversation = %m.conversation, seq = m.seq, posts = d.posts, gone = d.gone,
                offline = d.offline.len(), "message stored and fanned out"
            );
            if app.limits.push_inline {
                super::notify::notify(app, m, &d.offline).await;
            }
        }
        Err(e) => {
            tracing::error!(conversation = %m.conversation, seq = m.seq, error = ?e, "fan-out failed")
        }
    }
}
