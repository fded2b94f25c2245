//! Use case of the `presence` route: who is online, and when others were last seen.

use crate::domain::{ConversationId, UserId};
use crate::protocol::{PresenceFrame, PresenceView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::HashSet;

/// `presence`: the status of the asked users. Status is shown only for the caller and the
/// people they share a conversation with (1:1 or group); anyone else reads as never seen, as on
/// Messenger, so presence cannot be used to watch strangers. Someone who blocked the caller
/// reads as never seen too, and so does the recipient of the caller's message request until
/// they accept it (unless they share a group).
///
/// Nothing is written: a user is online while they have a live connection, and then last seen
/// "now"; otherwise last seen when their latest connection closed (or opened, when it ended
/// without a `$disconnect`). Heartbeats (`heartbeat`, a MOCK route) reach no function at all.
pub async fn presence(app: &App, req: &Request, frame: PresenceFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let max = app.limits.presence_users;
    if frame.users.len() > max {
        return Err(Error::BadRequest(format!(
            "at most {max} users per presence request"
        )));
    }
    let now = app.now();
    if frame.users.is_empty() {
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
    // A 1:1 the caller started and the other has not accepted (a message request) shows
    // nothing of them.
    let mine: Vec<ConversationId> = app
        .stores
        .conversations
        .of_user(me)
        .await?
        .into_iter()
        .filter(|m| !m.request.is_outgoing())
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
    let mut visible: Vec<UserId> = users
        .iter()
        .filter(|u| contacts.contains(*u))
        .cloned()
        .collect();
    // Whoever blocked the caller reads as never seen: one batched read, only when others are
    // asked about.
    let pairs: Vec<(UserId, UserId)> = visible
        .iter()
        .filter(|u| *u != me)
        .map(|u| (u.clone(), me.clone()))
        .collect();
    if !pairs.is_empty() {
        let blockers = app.stores.blocks.standing(&pairs).await?;
        visible.retain(|u| !blockers.contains(&(u.clone(), me.clone())));
    }
    let records = if visible.is_empty() {
        Default::default()
    } else {
        app.stores.connections.presence(&visible, now).await?
    };
    let users = users
        .into_iter()
        .map(|user| {
            let record = records.get(&user);
            let online = record.is_some_and(|r| !r.connections.is_empty());
            PresenceView {
                online,
                last_seen: if online {
                    Some(now)
                } else {
                    record.and_then(|r| r.last_seen)
                },
                user,
            }
        })
        .collect();
    req.reply(app, &ServerFrame::Presence { users }).await;
    Ok(())
}
