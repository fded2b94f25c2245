//! Use case of the `accept` route (and `decline.rs`): answer a message request.

use super::{forbidden, other_member, require_member};
use crate::domain::{ConversationId, RequestState, UserId};
use crate::protocol::{ConversationFrame, RequestAnswer, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `accept`: the conversation becomes a normal one for the caller — it moves from the
/// `requests` folder to the inbox, pushes it, and (in a 1:1) its sender now gets the caller's
/// receipts and presence. Also takes back a `decline`. Accepting what is no request changes
/// nothing and answers the same. Replying to a request accepts it too (`send`).
///
/// Requests: the caller's membership, then (when it is a request) one transaction of the two
/// memberships (one in a group).
pub async fn accept(app: &App, req: &Request, frame: ConversationFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    let me = &req.caller.user;
    let mine = require_member(app, conv, me).await?;
    if mine.request.is_incoming() {
        // The sender's side of a 1:1 becomes normal with it.
        let peer = other_member(conv, me);
        let peer = peer.as_ref().map(|p| (p, RequestState::Accepted));
        set(app, req, conv, RequestState::Accepted, peer).await?;
    }
    answer(app, req, conv.clone(), RequestAnswer::Accepted).await;
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
