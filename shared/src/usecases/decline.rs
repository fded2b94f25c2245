//! Use case of the `decline` route.

use super::accept::{answer, set};
use super::{other_member, require_member};
use crate::domain::RequestState;
use crate::protocol::{ConversationFrame, RequestAnswer};
use crate::request::Request;
use crate::{App, Error};

/// `decline`: a 1:1 message request leaves the caller's `requests` folder (it is in no folder
/// and never pushed), and its sender may not write in it any more (`forbidden`, as if blocked:
/// they are not told which) until the caller writes to them or accepts. Its messages stay.
/// Declining twice changes nothing. A group request is declined by leaving the group
/// (`leave_group`); a conversation that is no request to the caller cannot be declined.
///
/// Requests: the caller's membership, then one transaction of the two memberships.
pub async fn decline(app: &App, req: &Request, frame: ConversationFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    let me = &req.caller.user;
    let mine = require_member(app, conv, me).await?;
    let peer = other_member(conv, me);
    match (&peer, mine.request) {
        (None, _) if conv.is_group() => {
            return Err(Error::BadRequest(
                "a group cannot be declined: leave it (leave_group)".into(),
            ));
        }
        (Some(_), RequestState::Pending) => {
            let peer = peer.as_ref().map(|p| (p, RequestState::Refused));
            set(app, req, conv, RequestState::Declined, peer).await?;
        }
        (Some(_), RequestState::Declined) => {}
        _ => {
            return Err(Error::BadRequest(format!(
                "{conv} is not a message request to you"
            )));
        }
    }
    answer(app, req, conv.clone(), RequestAnswer::Declined).await;
    Ok(())
}
