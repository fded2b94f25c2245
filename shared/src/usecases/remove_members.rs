//! Use case of the `remove_members` route (admins only).

use super::groups::{announce, append_event, latest_seq, reply_state, require_admin, unique};
use crate::domain::LogEvent;
use crate::protocol::MembersFrame;
use crate::request::Request;
use crate::{App, Error};

/// `remove_members`: admins only, never themselves (that is `leave_group`).
pub async fn remove_members(app: &App, req: &Request, frame: MembersFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    require_admin(app, req, conv).await?;
    let users = unique(frame.users);
    if users.contains(me) {
        return Err(Error::BadRequest("use leave_group to leave a group".into()));
    }
    let mut removed = Vec::new();
    for user in users {
        // Membership goes first: from here on nothing reaches them.
        if app.stores.conversations.leave(conv, &user).await? {
            removed.push(user);
        }
    }
    if removed.is_empty() {
        return reply_state(app, req, conv, latest_seq(app, conv).await?).await;
    }
    let event = LogEvent::MembersRemoved {
        users: removed.clone(),
    };
    let (message, duplicate) = append_event(app, conv, me, frame.client_msg_id, event).await?;
    reply_state(app, req, conv, message.seq).await?;
    if !duplicate {
        // The removed learn of it (this once); then the group is gone from their view.
        announce(app, req, &message, &removed).await;
    }
    Ok(())
}
