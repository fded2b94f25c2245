//! Use case of the `send` route: store first, ack the sender, then fan out.

use super::views::deliver_entry;
use super::{
    attachments, blocked_error, conflict, conversation_of, forbidden, other_member, take_token,
};
use crate::domain::{ConversationId, Head, Message, NewMessage, RequestDigest, RequestState, Seq};
use crate::ports::{Append, BlockState, Effects, WriteContext, WriteKeys};
use crate::protocol::{QuoteView, SendFrame, ServerFrame};
use crate::ratelimit::Bucket;
use crate::request::Request;
use crate::{App, Error};

/// A message body must be at most [`crate::Limits::max_body_bytes`], and not empty (unless the
/// message has files: `has_files`).
pub(super) fn check_body(app: &App, body: &str, has_files: bool) -> Result<(), Error> {
    let limit = app.limits.max_body_bytes;
    if body.len() > limit {
        return Err(Error::TooLarge(format!(
            "message body is {} bytes; the limit is {limit}",
            body.len()
        )));
    }
    if body.is_empty() && !has_files {
        return Err(Error::BadRequest("message body must not be empty".into()));
    }
    Ok(())
}

/// `send`: validates the frame, appends the message (idempotent on `(sender, client_msg_id)`
/// for the same request, a `conflict` for another), answers `sent` once it is durable, then
/// delivers it to every live connection of every member except the sending one — also when the
/// send was a retry of a stored one (`duplicate`), since the first attempt may have died before
/// its fan-out finished (docs/reliability.md, "Crash points"). Sending also reads: the sender's
/// read pointer moves to the new message, so their own messages are never unread.
///
/// A 1:1 conversation's memberships are created by its first stored message, in the same
/// atomic write: a send that stores nothing (a conflict, a refusal) leaves no membership.
///
/// Between the two users of a 1:1 conversation of whom one blocked the other, a send is
/// `forbidden` and nothing is stored (the blocked user is told only that they can't message
/// this user). So is a send in a 1:1 whose message request the other declined.
///
/// Message requests: a 1:1's first message makes it a request to the recipient (no push, no
/// receipts or presence for the sender) until they accept it — by `accept`, or by replying:
/// a send by the recipient of a request accepts it in the same atomic write.
///
/// Requests: the caller's token (rate limit), one batched read (membership, head, idempotency
/// key, the message a reply answers, and in a 1:1 the two block records), the append transaction; then a group's member list
/// (consistent), the connections of every member (one batched read per 100 members) and,
/// alongside, the sender's read pointer.
pub async fn send(app: &App, req: &Request, frame: SendFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    check_body(app, &frame.body, !frame.attachments.is_empty())?;
    attachments::check_ids(app, &frame.attachments)?;
    let conv = conversation_of(me, frame.to, frame.conversation)?;
    if frame.reply_to == Some(0) {
        return Err(Error::BadRequest("reply_to must be at least 1".into()));
    }
    // The request a key stands for: the conversation, the body, what it answers, its files.
    let reply_to = frame.reply_to.map(|s| s.to_string()).unwrap_or_default();
    let files: Vec<&str> = frame.attachments.iter().map(|a| a.as_str()).collect();
    let files = files.join(",");
    let digest = match files.is_empty() {
        true => RequestDigest::of("send", &conv, &[&frame.body, &reply_to]),
        false => RequestDigest::of("send", &conv, &[&frame.body, &reply_to, &files]),
    };
    let now = app.now();
    // A 1:1: whether either member blocked the other comes with the same batched read.
    let other = other_member(&conv, me);
    let keys = WriteKeys {
        conversation: &conv,
        user: me,
        client_msg_id: Some(&frame.client_msg_id),
        message: frame.reply_to,
        other: other.as_ref(),
    };
    // The token first: a refused send costs its token's request at most (none when this
    // process already knows the bucket is empty), never the reads behind it.
    take_token(app, me, Bucket::Send).await?;
    let seen = app.stores.reads.read_for_write(keys, now).await?;
    let effects = match (&seen.membership, conv.direct_members()) {
        (Some(mine), _) => match mine.request {
            // Declined: the sender may not write until the recipient writes or accepts (a
            // retry of what was stored before is still answered with the original).
            RequestState::Refused if seen.sent.is_none() => {
                return Err(blocked_error(BlockState::default()));
            }
            // Replying to a request accepts it, for both sides of a 1:1.
            RequestState::Pending | RequestState::Declined => Effects {
                accept: [me.clone()].into_iter().chain(other.clone()).collect(),
                ..Effects::default()
            },
            RequestState::Accepted | RequestState::Awaiting | RequestState::Refused => {
                Effects::default()
            }
        },
        // A 1:1 conversation springs into existence with its first message, by either user:
        // a message request to the other until they accept it (docs/protocol.md).
        (None, Some((a, b))) if &a == me || &b == me => Effects {
            direct: match &other {
                None => vec![(me.clone(), RequestState::Accepted)],
                Some(o) => vec![
                    (me.clone(), RequestState::Awaiting),
                    (o.clone(), RequestState::Pending),
                ],
            },
            ..Effects::default()
        },
        (None, _) => return Err(forbidden(&conv)),
    };
    // Between users who block each other, nothing is stored, delivered or pushed.
    if seen.blocks.any() {
        return Err(blocked_error(seen.blocks));
    }
    let cmid = frame.client_msg_id;
    if let Some(sent) = &seen.sent
        && !sent.is_same_request(&conv, &digest)
    {
        return Err(conflict(&cmid));
    }
    let from_seq = seen.membership.as_ref().map_or(1, |m| m.from_seq);
    // A retry is answered with the original, whatever became of the message it answers.
    let quoted = match frame.reply_to {
        Some(seq) if seen.sent.is_none() => Some(replied_to(&conv, seq, from_seq, &seen)?),
        _ => None,
    };
    // A retry is answered with the original: its files were checked when it was stored.
    let files = match seen.sent {
        None => attachments::attach(app, &conv, me, &cmid, &frame.attachments).await?,
        Some(_) => Vec::new(),
    };
    let msg = NewMessage {
        conversation: conv.clone(),
        from: me.clone(),
        client_msg_id: cmid.clone(),
        digest,
        body: frame.body,
        event: None,
        sent_at: now,
        expires_at: app.limits.retention.map(|r| now + r),
        reply_to: frame.reply_to,
        attachments: files,
    };
    // A retry (the key is stored) reads the key again in the append and answers with it.
    let head = seen.sent.is_none().then_some(Head {
        last_seq: seen.last_seq,
        chats: seen.chats,
        last: None,
    });
    let (appended, duplicate) = match app.stores.messages.append_with(msg, &effects, head).await? {
        Append::Stored(a) => (a, false),
        Append::Duplicate(a) => (a, true),
        Append::Conflict(_) => return Err(conflict(&cmid)),
        // A 1:1 send's memberships are never refused; nothing else has effects here.
        Append::Refused(r) => {
            return Err(Error::Store(crate::ports::StoreError::Corrupt(format!(
                "a send was refused: {r:?}"
            ))));
        }
    };
    let m = &appended.message;
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
        // A retry of a stored send. Its first attempt may have died before or during the
        // fan-out, or only its reply may have been lost: nothing here tells which, so the
        // message goes out again. Devices drop a (conversation, seq) they already have, and
        // push claims keep a device from being pushed twice.
        tracing::info!(conversation = %m.conversation, seq = m.seq, "duplicate send answered; fanned out again");
    }

    // The message is durable and acknowledged: a failing fan-out must not turn into an error
    // for the sender. Recipients that miss the push get the message on their next sync.
    let mut view = attachments::signed_view(app, m).await;
    // A retry read the message its original answers too: quote it in the fan-out when it still
    // may be shown (the answer above never depended on it).
    let quoted = quoted.or_else(|| {
        m.reply_to
            .filter(|_| seen.sent.is_some())
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
