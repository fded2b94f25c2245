//! Use case of the `send` route: store first, ack the sender, then fan out.

use super::{attachments, conversation_of, forbidden, members_of};
use crate::domain::{ConversationId, Membership, NewMessage, Role, UserId};
use crate::ports::WriteKeys;
use crate::protocol::{SendFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `send`: validates the frame, makes sure a 1:1 conversation exists, checks its attachments
/// (`usecases/attachments.rs`), appends the message (idempotent on `(sender, client_msg_id)`),
/// answers `sent` once it is durable, then pushes it to every live connection of every member
/// except the sending one.
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
    if frame.body.is_empty() && frame.attachments.is_empty() {
        return Err(Error::BadRequest("message body must not be empty".into()));
    }
    attachments::check_ids(app, &frame.attachments)?;
    let conv = conversation_of(me, frame.to, frame.conversation)?;
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
    // A retry is answered with the original: its files were checked when it was stored.
    let files = match seen.already_sent {
        false => {
            attachments::attach(app, &conv, me, &frame.client_msg_id, &frame.attachments).await?
        }
        true => Vec::new(),
    };

    let msg = NewMessage {
        conversation: conv.clone(),
        from: me.clone(),
        client_msg_id: frame.client_msg_id,
        body: frame.body,
        event: None,
        sent_at: now,
        expires_at: app.limits.retention.map(|r| now + r),
        attachments: files,
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
        tracing::info!(conversation = %m.conversation, seq = m.seq, "duplicate send answered");
        return Ok(());
    }

    // The message is durable and acknowledged: a failing fan-out must not turn into an error
    // for the sender. Recipients that miss the push get the message on their next sync.
    let frame = ServerFrame::Message(attachments::signed_view(app, m).await);
    let members = members_of(app, &m.conversation).await?;
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
