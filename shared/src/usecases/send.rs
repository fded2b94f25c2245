//! Use case of the `send` route: store first, ack the sender, then fan out.

use super::{forbidden, members_of};
use crate::domain::{ConversationId, Membership, NewMessage, Role, UserId};
use crate::ports::WriteKeys;
use crate::protocol::{SendFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `send`: validates the frame, makes sure a 1:1 conversation exists, appends the message
/// (idempotent on `(sender, client_msg_id)`), answers `sent` once it is durable, then delivers
/// it to every live connection of every member except the sending one — also when the send was
/// a retry of a stored one (`duplicate`), since the first attempt may have died before its
/// fan-out finished (docs/reliability.md, "Crash points").
///
/// Requests: one batched read (membership, head, idempotency key), the append transaction,
/// then the connections of every member (one batched read per 100 members; a group also reads
/// its member list first).
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
    let now = app.now();
    let seen = app
        .stores
        .reads
        .read_for_write(
            WriteKeys {
                conversation: &conv,
                user: me,
                client_msg_id: Some(&frame.client_msg_id),
                message: None,
            },
            now,
        )
        .await?;
    if seen.membership.is_none() {
        join_direct(app, &conv, me).await?;
    }

    let msg = NewMessage {
        conversation: conv.clone(),
        from: me.clone(),
        client_msg_id: frame.client_msg_id,
        body: frame.body,
        event: None,
        sent_at: now,
        expires_at: app.limits.retention.map(|r| now + r),
    };
    let log = &app.stores.messages;
    let appended = if seen.already_sent {
        // A retry: the append finds the original and answers with it.
        log.append(msg).await?
    } else {
        log.append_seen(msg, seen.last_seq).await?
    };
    let m = &appended.message;
    req.reply(
        app,
        &ServerFrame::Sent {
            client_msg_id: m.client_msg_id.clone(),
            conversation: m.conversation.clone(),
            seq: m.seq,
            sent_at: m.sent_at,
            duplicate: appended.duplicate,
        },
    )
    .await;
    if appended.duplicate {
        // A retry of a stored send. Its first attempt may have died before or during the
        // fan-out, or only its reply may have been lost: nothing here tells which, so the
        // message goes out again. Devices drop a (conversation, seq) they already have, and
        // push claims keep a device from being pushed twice.
        tracing::info!(conversation = %m.conversation, seq = m.seq, "duplicate send answered; fanned out again");
    }

    // The message is durable and acknowledged: a failing fan-out must not turn into an error
    // for the sender. Recipients that miss the push get the message on their next sync.
    let frame = ServerFrame::Message(m.into());
    let members = members_of(app, &m.conversation).await?;
    match app
        .deliver(&members, &frame, Some(&req.caller.connection))
        .await
    {
        Ok(d) => {
            tracing::info!(
                conversation = %m.conversation, seq = m.seq, posts = d.posts, gone = d.gone,
                failed = d.failed, offline = d.offline.len(), "message stored and fanned out"
            );
            // In-line pushes are best effort: logged, never retried (the stream-driven
            // function retries; MESSENGER_PUSH_INLINE=false).
            if app.limits.push_inline {
                let _ = super::notify::notify(app, m, &d.offline).await;
            }
        }
        Err(e) => {
            tracing::error!(conversation = %m.conversation, seq = m.seq, error = ?e, "fan-out failed")
        }
    }
    Ok(())
}

/// A sender who is not a member may still write to a 1:1 conversation they are one of the two
/// users of: it springs into existence the first time either of them writes to it. Anything
/// else is `forbidden`.
async fn join_direct(app: &App, conv: &ConversationId, me: &UserId) -> Result<(), Error> {
    match conv.direct_members() {
        Some((a, b)) if &a == me || &b == me => {
            let now = app.now();
            // The other member first: if we die in between, our own missing membership makes the
            // next send repeat both joins (each is idempotent).
            let other = if &a == me { &b } else { &a };
            for user in [other, me] {
                let membership = Membership::new(conv, user, Role::Member, 1, now);
                app.stores.conversations.join(&membership).await?;
            }
            Ok(())
        }
        _ => Err(forbidden(conv)),
    }
}
