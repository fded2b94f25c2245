//! Use case of the `receipts` route: every member's delivered/read pointers ("message info").

use super::require_member;
use crate::protocol::{PointersView, ReceiptsFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `receipts`: members only. The pointers of every member, and the lowest pointers of the
/// members other than the caller (a member who joined later counts as having everything before
/// the event that added them): a message with `seq <= delivered` reached everyone, one with
/// `seq <= read` was read by everyone. Group receipts are pushed only to a message's author; this
/// is how everyone else (and a new device of the author) sees who has read what.
///
/// The pointers of a member who has not accepted the conversation as a message request show
/// as 0 to the others.
///
/// Requests: the caller's membership, the member list, then the members' items (one batched
/// read per 100).
pub async fn receipts(app: &App, req: &Request, frame: ReceiptsFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    require_member(app, conv, me).await?;
    let mut all = app.stores.conversations.pointers(conv).await?;
    all.sort_by(|a, b| a.user.cmp(&b.user));
    // A member to whom the conversation is a request that is not accepted shows nothing read
    // or delivered to the others (docs/protocol.md, "Message requests").
    for m in all
        .iter_mut()
        .filter(|m| &m.user != me && m.request.is_incoming())
    {
        (m.delivered, m.read) = (0, 0);
    }
    // A member who joined later never sees what came before `from_seq`: for the aggregate, their
    // pointers start just below it.
    let floor = |p: u64, m: &crate::domain::Membership| p.max(m.from_seq.saturating_sub(1));
    let others = all.iter().filter(|m| &m.user != me);
    let delivered = others.clone().map(|m| floor(m.delivered, m)).min();
    let read = others.map(|m| floor(m.read, m)).min();
    let (delivered, read) = (delivered.unwrap_or(0), read.unwrap_or(0));
    let members = all
        .into_iter()
        .map(|m| PointersView {
            user: m.user,
            delivered: m.delivered,
            read: m.read,
        })
        .collect();
    req.reply(
        app,
        &ServerFrame::Receipts {
            conversation: conv.clone(),
            members,
            delivered,
            read,
        },
    )
    .await;
    Ok(())
}
