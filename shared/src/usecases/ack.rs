//! Use case of the `ack` route: move a delivered/read pointer forward and tell the others.

use super::{members_of, require_member};
use crate::domain::ReceiptKind;
use crate::protocol::{AckFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `ack`: the caller has everything up to `seq` (`delivered`) or has seen it (`read`, which
/// implies delivered). Pointers only move forward; when one moves, every other connection of
/// every member (the sender's devices, and the caller's other devices) gets a `receipt`.
pub async fn ack(app: &App, req: &Request, frame: AckFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    if frame.seq == 0 {
        return Err(Error::BadRequest("seq must be at least 1".into()));
    }
    require_member(app, conv, me).await?;
    let latest = app
        .stores
        .messages
        .last_seqs(std::slice::from_ref(conv))
        .await?
        .get(conv)
        .copied()
        .unwrap_or(0);
    if frame.seq > latest {
        return Err(Error::BadRequest(format!(
            "seq {} is past the latest message of {conv} ({latest})",
            frame.seq
        )));
    }

    let mut moved = Vec::with_capacity(2);
    if frame.kind == ReceiptKind::Read
        && app
            .stores
            .conversations
            .advance(conv, me, ReceiptKind::Delivered, frame.seq)
            .await?
    {
        moved.push(ReceiptKind::Delivered);
    }
    if app
        .stores
        .conversations
        .advance(conv, me, frame.kind, frame.seq)
        .await?
    {
        moved.push(frame.kind);
    }
    req.reply(
        app,
        &ServerFrame::Acked {
            conversation: conv.clone(),
            seq: frame.seq,
            kind: frame.kind,
        },
    )
    .await;
    if moved.is_empty() {
        return Ok(());
    }
    let members = members_of(app, conv).await?;
    for kind in moved {
        let receipt = ServerFrame::Receipt {
            conversation: conv.clone(),
            seq: frame.seq,
            kind,
            by: me.clone(),
        };
        app.deliver(&members, &receipt, Some(&req.caller.connection))
            .await?;
    }
    Ok(())
}
