//! Use case of the `presence` route: who is online, and when others were last seen.

use crate::domain::{ConversationId, UserId};
use crate::protocol::{PresenceFrame, PresenceView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::HashSet;

/// `presence`: the status of the asked users, and a heartbeat for the caller. Status is shown
/// only for the caller and the people they share a conversation with (1:1 or group); anyone else
/// reads as never seen, as on Messenger, so presence cannot be used to watch strangers.
pub async fn presence(app: &App, req: &Request, frame: PresenceFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let max = app.limits.presence_users;
    if frame.users.len() > max {
        return Err(Error::BadRequest(format!(
            "at most {max} users per presence request"
        )));
    }
    let now = app.now();
    app.stores.last_seen.touch(me, now).await?;
    if frame.users.is_empty() {
        // A pure heartbeat: nothing to look up.
        req.reply(app, &ServerFrame::Presence { users: Vec::new() })
            .await;
        return Ok(());
    }

    let mut seen_ids = HashSet::new();
    let users: Vec<UserId> = frame
        .users
        .into_iter()
        .filter(|u| seen_ids.insert(u.clone()))
        .collect();
    let mine: Vec<ConversationId> = app
        .stores
        .conversations
        .of_user(me)
        .await?
        .into_iter()
        .map(|m| m.conversation)
        .collect();
    let mut contacts: HashSet<UserId> = mine
        .iter()
        .filter_map(ConversationId::direct_members)
        .flat_map(|(a, b)| [a, b])
        .collect();
    contacts.insert(me.clone());
    // Group mates cost one members query per group: asked only when 1:1s do not settle it.
    if users.iter().any(|u| !contacts.contains(u)) {
        for group in mine.iter().filter(|c| c.is_group()) {
            let members = app.stores.conversations.members(group).await?;
            contacts.extend(members.into_iter().map(|m| m.user));
        }
    }
    let visible: Vec<UserId> = users
        .iter()
        .filter(|u| contacts.contains(*u))
        .cloned()
        .collect();
    let (online, last_seen) = if visible.is_empty() {
        Default::default()
    } else {
        let conns = app.stores.connections.of_users(&visible, now).await?;
        let online: HashSet<UserId> = conns.into_iter().map(|c| c.user).collect();
        (online, app.stores.last_seen.get(&visible).await?)
    };
    let users = users
        .into_iter()
        .map(|user| PresenceView {
            online: online.contains(&user),
            last_seen: last_seen.get(&user).copied(),
            user,
        })
        .collect();
    req.reply(app, &ServerFrame::Presence { users }).await;
    Ok(())
}
