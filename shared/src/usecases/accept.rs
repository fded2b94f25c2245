//! Use case of the `accept` route (and `decline.rs`): answer a message request.

use super::{forbidden, other_member, require_member};
use crate::domain::{ConversationId, ReceiptKind, RequestState, UserId};
use crate::protocol::{ConversationFrame, RequestAnswer, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `accept`: the conversation becomes a normal one for the caller — it moves from the
/// `requests` folder to the inbox, pushes it, and (in a 1:1) its sender now gets the caller's
/// receipts and presence: at once, a `receipt` for each of the caller's pointers that has moved
/// (what the request kept from them). Also takes back a `decline`. Accepting what is no request
/// changes nothing and answers the same. Replying to a request accepts it too (`send`).
///
/// Requests: the caller's membership, then (when it is a request) one transaction of the two
/// memberships (one in a group); the caller's connections (their other devices are told) and,
/// when a pointer had moved, the sender's (for the receipts).
pub async fn accept(app: &App, req: &Request, frame: ConversationFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    let me = &req.caller.user;
    let mine = require_member(app, conv, me).await?;
    let peer = other_member(conv, me);
    let was_request = mine.request.is_incoming();
    if was_request {
        // The sender's side of a 1:1 becomes normal with it.
        let both = peer.as_ref().map(|p| (p, RequestState::Accepted));
        set(app, req, conv, RequestState::Accepted, both).await?;
    }
    answer(app, req, conv.clone(), RequestAnswer::Accepted).await;
    // What the request kept from a 1:1's sender, they now get: the receipts of where the
    // caller's pointers stand (as a normal conversation would have told them).
    if let Some(peer) = peer.filter(|_| was_request) {
        let receipts: Vec<ServerFrame> = [ReceiptKind::Delivered, ReceiptKind::Read]
            .into_iter()
            .map(|kind| (kind, mine.pointer(kind)))
            .filter(|(_, seq)| *seq > 0)
            .map(|(kind, seq)| ServerFrame::Receipt {
                conversation: conv.clone(),
                seq,
                kind,
                by: me.clone(),
            })
            .collect();
        if !receipts.is_empty()
            && let Err(e) = app.deliver_all(&[peer], &receipts, None).await
        {
            tracing::warn!(error = ?e, "could not send the accepted request's receipts");
        }
    }
    Ok(())
}

/// Sets the caller's standing in `conv` (and the peer's), or `forbidden` when the caller is no
/// longer a member.
pub(super) async fn set(
    app: &App,
    req: &Request,
    conv: &ConversationId,
    state: RequestState,
    peer: Option<(&UserId, RequestState)>,
) -> Result<(), Error> {
    let me = &req.caller.user;
    match app
        .stores
        .conversations
        .set_request(conv, me, state, peer)
        .await?
    {
        true => Ok(()),
        false => Err(forbidden(conv)),
    }
}

/// Answers an `accept` or `decline` and tells the caller's other devices (never the sender).
pub(super) async fn answer(app: &App, req: &Request, conv: ConversationId, state: RequestAnswer) {
    let frame = ServerFrame::RequestState {
        conversation: conv,
        state,
    };
    super::reply_on_every_device(app, req, &frame).await;
}
