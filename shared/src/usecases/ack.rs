//! Use case of the `ack` route: move a delivered/read pointer forward and tell who needs to know.

use super::{forbidden, members_of};
use crate::domain::{ConversationId, Message, ReceiptKind, Seq, UserId};
use crate::ports::WriteKeys;
use crate::protocol::{AckFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::BTreeSet;

/// `ack`: the caller has everything up to `seq` (`delivered`) or has seen it (`read`, which
/// implies delivered). Pointers only move forward. When one moves, a `receipt` goes to:
/// - in a 1:1 conversation, every other connection of both members;
/// - in a group, the authors of the messages the ack covers and the caller's other devices
///   (not the whole group: that would make every group message cost O(N²) posts). Members
///   pull everyone's pointers with `receipts`.
///
/// An ack without an `id` gets no `acked` reply (errors are still answered): receipts are
/// fire-and-forget for clients, and the reply would cost an API Gateway message per ack.
///
/// Requests: one batched read (membership, head; in a group, or for `read`, also the acked
/// message), the pointer update(s), then the receipt's connections (one batched read). A group
/// ack that covers several messages also reads their authors (one Query).
pub async fn ack(app: &App, req: &Request, frame: AckFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    if frame.seq == 0 {
        return Err(Error::BadRequest("seq must be at least 1".into()));
    }
    let now = app.now();
    let seen = app
        .stores
        .reads
        .read_for_write(
            WriteKeys {
                conversation: conv,
                user: me,
                client_msg_id: None,
                // A group's receipt goes to the acked message's author; a `read` pointer records
                // the chat count at it.
                message: (conv.is_group() || frame.kind == ReceiptKind::Read).then_some(frame.seq),
                other: None,
            },
            now,
        )
        .await?;
    let membership = seen.membership.ok_or_else(|| forbidden(conv))?;
    if frame.seq > seen.last_seq {
        return Err(Error::BadRequest(format!(
            "seq {} is past the latest message of {conv} ({})",
            frame.seq, seen.last_seq
        )));
    }

    // A `read` implies `delivered`. A pointer the membership (read strongly consistent just now)
    // shows at or past `seq` cannot move: no write for it. The conditional update decides the
    // rest, so concurrent acks of the same user still move each pointer once.
    let kinds = match frame.kind {
        ReceiptKind::Read => vec![ReceiptKind::Delivered, ReceiptKind::Read],
        ReceiptKind::Delivered => vec![ReceiptKind::Delivered],
    };
    // What the read pointer counts as read, for unread counts (read with the membership).
    let chats = if frame.seq == seen.last_seq {
        seen.chats
    } else {
        seen.message_chats
    };
    let mut moved = Vec::with_capacity(2);
    for kind in kinds {
        if membership.pointer(kind) < frame.seq
            && app
                .stores
                .conversations
                .advance(conv, me, kind, frame.seq, chats)
                .await?
        {
            moved.push(kind);
        }
    }
    if req.id.is_some() {
        req.reply(
            app,
            &ServerFrame::Acked {
                conversation: conv.clone(),
                seq: frame.seq,
                kind: frame.kind,
            },
        )
        .await;
    }
    if moved.is_empty() {
        return Ok(());
    }
    // The recipient of a request that is not accepted keeps their read state to themselves:
    // only their own other devices learn it.
    let targets = if membership.request.is_incoming() {
        vec![me.clone()]
    } else if conv.is_group() {
        let covered_from = moved
            .iter()
            .map(|k| membership.pointer(*k))
            .min()
            .unwrap_or(0);
        let mut to = authors(app, conv, covered_from, frame.seq, seen.message).await?;
        to.insert(me.clone());
        to.into_iter().collect()
    } else {
        members_of(app, conv).await?
    };
    let receipts: Vec<ServerFrame> = moved
        .into_iter()
        .map(|kind| ServerFrame::Receipt {
            conversation: conv.clone(),
            seq: frame.seq,
            kind,
            by: me.clone(),
        })
        .collect();
    app.deliver_all(&targets, &receipts, Some(&req.caller.connection))
        .await?;
    Ok(())
}

/// The authors of the messages in `(after, upto]` (the newest
/// [`receipt_authors_window`](crate::Limits::receipt_authors_window) of them). `upto` itself
/// was read with the membership; the rest costs one Query, only when there is a rest.
async fn authors(
    app: &App,
    conv: &ConversationId,
    after: Seq,
    upto: Seq,
    acked: Option<Message>,
) -> Result<BTreeSet<UserId>, Error> {
    let mut out: BTreeSet<UserId> = acked.into_iter().map(|m| m.from).collect();
    let window = app.limits.receipt_authors_window as Seq;
    let from = after.max(upto.saturating_sub(window));
    if from + 1 < upto {
        let earlier = app
            .stores
            .messages
            .after(conv, from, (upto - 1 - from) as usize, app.now())
            .await?;
        out.extend(earlier.into_iter().map(|m| m.from));
    }
    Ok(out)
}
