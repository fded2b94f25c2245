//! Use case of the `add_members` route (admins only).

use super::groups::{
    announce, append_event_counted, check_size, latest_seq, reply_state, require_admin, unique,
};
use crate::domain::{LogEvent, Membership, Role, UserId};
use crate::protocol::MembersFrame;
use crate::request::Request;
use crate::{App, Error};
use std::collections::BTreeSet;

/// `add_members`: admins only; users already in the group are skipped.
pub async fn add_members(app: &App, req: &Request, frame: MembersFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    require_admin(app, req, conv).await?;
    let current: BTreeSet<UserId> = app
        .stores
        .conversations
        .members(conv)
        .await?
        .into_iter()
        .map(|m| m.user)
        .collect();
    let new: Vec<UserId> = unique(frame.users)
        .into_iter()
        .filter(|u| !current.contains(u))
        .collect();
    if new.is_empty() {
        return reply_state(app, req, conv, latest_seq(app, conv).await?).await;
    }
    check_size(app, current.len() + new.len())?;
    let event = LogEvent::MembersAdded { users: new };
    let appended =
        append_event_counted(app, conv, &req.caller.user, frame.client_msg_id, event).await?;
    let (message, duplicate) = (appended.message, appended.duplicate);
    // On a retry the stored event says whom the first attempt added.
    let LogEvent::MembersAdded { users } = message
        .event
        .clone()
        .unwrap_or(LogEvent::MembersAdded { users: vec![] })
    else {
        return Err(Error::BadRequest(
            "client_msg_id was used for another kind of message".into(),
        ));
    };
    let now = app.now();
    for user in &users {
        // The group's earlier messages are not theirs to read, so not unread either.
        let membership = Membership::new(conv, user, Role::Member, message.seq, now)
            .with_read_chats(appended.chats);
        app.stores.conversations.join(&membership).await?;
    }
    reply_state(app, req, conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}
