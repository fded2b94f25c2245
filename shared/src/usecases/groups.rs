//! Rules shared by the group use cases (`create_group.rs`, `add_members.rs`, `remove_members.rs`,
//! `leave_group.rs`, `rename_group.rs`).
//!
//! Every membership change is also a system message in the conversation's log, so all devices
//! see the same, seq-ordered history of who was there. Rules:
//! - the creator is an admin; only admins add or remove others; anyone may leave; when the last
//!   admin leaves, the longest-standing member becomes admin;
//! - a member reads from the event that added them onwards (`from_seq`), never earlier history;
//! - removal and leaving take effect before their event is written, so nothing sent after it
//!   reaches the removed member; adding writes the event first, then the membership.
//!
//! Each change takes an optional `client_msg_id`: a retry stores no second event and finishes
//! what a crashed attempt left undone.

use super::require_member;
use crate::domain::{
    ClientMsgId, ConversationId, LogEvent, Message, NewMessage, Role, Seq, UserId,
};
use crate::ports::Appended;
use crate::protocol::{MemberView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::BTreeSet;

pub(super) fn require_group(conv: &ConversationId) -> Result<(), Error> {
    if conv.is_group() {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{conv} is a 1:1 conversation, not a group"
        )))
    }
}

pub(super) async fn require_admin(
    app: &App,
    req: &Request,
    conv: &ConversationId,
) -> Result<(), Error> {
    let mine = require_member(app, conv, &req.caller.user).await?;
    require_group(conv)?;
    if mine.role != Role::Admin {
        return Err(Error::Forbidden(
            "only group admins can add or remove members".into(),
        ));
    }
    Ok(())
}

pub(super) fn group_name(app: &App, name: &str) -> Result<String, Error> {
    let name = name.trim();
    let max = app.limits.max_group_name_chars;
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "a group name is 1 to {max} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

pub(super) fn check_size(app: &App, members: usize) -> Result<(), Error> {
    let max = app.limits.max_group_members;
    if members > max {
        return Err(Error::TooLarge(format!(
            "a group has at most {max} members; this would make {members}"
        )));
    }
    Ok(())
}

pub(super) fn unique(users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = BTreeSet::new();
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

pub(super) async fn latest_seq(app: &App, conv: &ConversationId) -> Result<Seq, Error> {
    Ok(app
        .stores
        .messages
        .last_seqs(std::slice::from_ref(conv))
        .await?
        .get(conv)
        .copied()
        .unwrap_or(0))
}

/// Appends a system message; returns it and whether it was already stored (a retry).
pub(super) async fn append_event(
    app: &App,
    conv: &ConversationId,
    actor: &UserId,
    client_msg_id: Option<ClientMsgId>,
    event: LogEvent,
) -> Result<(Message, bool), Error> {
    let appended = append_event_counted(app, conv, actor, client_msg_id, event).await?;
    Ok((appended.message, appended.duplicate))
}

/// [`append_event`], also saying how many chat messages the log held at the event.
pub(super) async fn append_event_counted(
    app: &App,
    conv: &ConversationId,
    actor: &UserId,
    client_msg_id: Option<ClientMsgId>,
    event: LogEvent,
) -> Result<Appended, Error> {
    let client_msg_id = match client_msg_id {
        Some(c) => c,
        None => ClientMsgId::new(format!("sys-{}", crate::domain::random_hex(10)))?,
    };
    let now = app.now();
    let appended = app
        .stores
        .messages
        .append(NewMessage {
            conversation: conv.clone(),
            from: actor.clone(),
            client_msg_id,
            body: String::new(),
            event: Some(event),
            sent_at: now,
            expires_at: app.limits.retention.map(|r| now + r),
            reply_to: None,
        })
        .await?;
    if appended.message.conversation != *conv {
        return Err(Error::BadRequest(
            "client_msg_id was already used in another conversation".into(),
        ));
    }
    Ok(appended)
}

/// Answers with the group as it now is.
pub(super) async fn reply_state(
    app: &App,
    req: &Request,
    conv: &ConversationId,
    seq: Seq,
) -> Result<(), Error> {
    let info = app
        .stores
        .conversations
        .groups(std::slice::from_ref(conv))
        .await?
        .remove(conv);
    let mut members: Vec<MemberView> = app
        .stores
        .conversations
        .members(conv)
        .await?
        .into_iter()
        .map(|m| MemberView {
            user: m.user,
            role: m.role,
        })
        .collect();
    members.sort_by(|a, b| a.user.cmp(&b.user));
    let name = info.map(|i| i.name).unwrap_or_default();
    req.reply(
        app,
        &ServerFrame::Group {
            conversation: conv.clone(),
            name,
            members,
            seq,
        },
    )
    .await;
    Ok(())
}

/// Pushes a system message to every member (and `also`, e.g. the removed), except the
/// requesting connection; then, like every stored message, publishes it to the topic (when
/// this process does that in-line: it wakes no phone, see `notify`). Failures are logged: the
/// event is in the log for everyone's sync.
pub(super) async fn announce(app: &App, req: &Request, message: &Message, also: &[UserId]) {
    let mut users = match app
        .stores
        .conversations
        .members(&message.conversation)
        .await
    {
        Ok(m) => m.into_iter().map(|m| m.user).collect::<Vec<_>>(),
        Err(e) => {
            tracing::error!(error = ?e, "cannot read members to announce a group change");
            return;
        }
    };
    users.extend(
        also.iter()
            .filter(|u| !users.contains(u))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let frame = ServerFrame::Message(message.into());
    match app
        .deliver(&users, &frame, Some(&req.caller.connection))
        .await
    {
        Ok(d) if app.limits.push_inline => {
            // In-line, best effort: `notify` logs what failed; only the stream function retries.
            let _ = super::notify::notify(app, message, &d.offline).await;
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = ?e, "group change fan-out failed"),
    }
}
