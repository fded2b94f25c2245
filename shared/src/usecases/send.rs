//! Use case of the `send` route: store first, ack the sender, then fan out.

use super::forbidden;
use super::views::deliver_entry;
use crate::domain::{ConversationId, Membership, Message, NewMessage, Role, Seq, UserId};
use crate::ports::{WriteContext, WriteKeys};
use crate::protocol::{MessageView, QuoteView, SendFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// A message body must be 1 byte to [`crate::Limits::max_body_bytes`].
pub(super) fn check_body(app: &App, body: &str) -> Result<(), Error> {
    let limit = app.limits.max_body_bytes;
    if body.len() > limit {
        return Err(Error::TooLarge(format!(
            "message body is {} bytes; the limit is {limit}",
            body.len()
        )));
    }
    if body.is_empty() {
        return Err(Error::BadRequest("message body must not be empty".into()));
    }
    Ok(())
}

/// `send`: validates the frame, makes sure a 1:1 conversation exists, appends the message
/// (idempotent on `(sender, client_msg_id)`), answers `sent` once it is durable, then delivers
/// it to every live connection of every member except the sending one — also when the send was
/// a retry of a stored one (`duplicate`), since the first attempt may have died before its
/// fan-out finished (docs/reliability.md, "Crash points"). Sending also reads: the sender's
/// read pointer moves to the new message, so their own messages are never unread.
///
/// Requests: one batched read (membership, head, idempotency key, and the message a reply
/// answers), the append transaction, then the connections of every member (one batched read per
/// 100 members; a group also reads its member list first) and, alongside, the sender's read
/// pointer.
pub async fn send(app: &App, req: &Request, frame: SendFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    check_body(app, &frame.body)?;
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
    if frame.reply_to == Some(0) {
        return Err(Error::BadRequest("reply_to must be at least 1".into()));
    }
    let now = app.now();
    let seen = app
        .stores
        .reads
        .read_for_write(
            WriteKeys {
                conversation: &conv,
                user: me,
                client_msg_id: Some(&frame.client_msg_id),
                message: frame.reply_to,
            },
            now,
        )
        .await?;
    let from_seq = match &seen.membership {
        Some(m) => m.from_seq,
        None => {
            join_direct(app, &conv, me).await?;
            1
        }
    };
    // A retry is answered with the original, whatever became of the message it answers.
    let quoted = match frame.reply_to {
        Some(seq) if !seen.already_sent => Some(replied_to(&conv, seq, from_seq, &seen)?),
        _ => None,
    };

    let msg = NewMessage {
        conversation: conv.clone(),
        from: me.clone(),
        client_msg_id: frame.client_msg_id,
        body: frame.body,
        event: None,
        sent_at: now,
        expires_at: app.limits.retention.map(|r| now + r),
        reply_to: frame.reply_to,
    };
    let log = &app.stores.messages;
    let appended = if seen.already_sent {
        // A retry: the append finds the original and answers with it.
        log.append(msg).await?
    } else {
        log.append_seen(msg, seen.last_seq, seen.chats).await?
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
    let mut view = MessageView::from(m);
    // A retry read the message its original answers too: quote it in the fan-out when it still
    // may be shown (the answer above never depended on it).
    let quoted = quoted.or_else(|| {
        m.reply_to
            .filter(|seq| seen.already_sent && Some(*seq) == frame.reply_to)
            .and_then(|seq| replied_to(&conv, seq, from_seq, &seen).ok())
    });
    view.quote = quoted.as_ref().map(QuoteView::from);
    let fan_out = deliver_entry(
        app,
        &m.conversation,
        view,
        m.reply_to,
        &req.caller.connection,
    );
    let read = app
        .stores
        .conversations
        .read_through(&m.conversation, me, m.seq, appended.chats);
    let (delivered, read) = futures_util::future::join(fan_out, read).await;
    if let Err(e) = read {
        tracing::warn!(conversation = %m.conversation, seq = m.seq, error = ?e, "could not move the sender's read pointer");
    }
    match delivered {
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

/// The message a reply answers, as read with the membership: a chat message of `conv` that the
/// sender may see (from `from_seq` on), not deleted.
fn replied_to(
    conv: &ConversationId,
    seq: Seq,
    from_seq: Seq,
    seen: &WriteContext,
) -> Result<Message, Error> {
    match seen.message.as_ref().filter(|_| seq >= from_seq) {
        Some(m) if !m.is_chat() => Err(Error::BadRequest(format!(
            "reply_to {seq} is not a chat message"
        ))),
        Some(m) if m.deleted => Err(Error::NotFound(format!("message {seq} was deleted"))),
        Some(m) => Ok(m.clone()),
        None if seq > seen.last_seq => Err(Error::BadRequest(format!(
            "reply_to {seq} is past the latest message of {conv} ({})",
            seen.last_seq
        ))),
        None => Err(Error::NotFound(format!(
            "no message {seq} you can see in {conv}"
        ))),
    }
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
