//! Use cases of the group routes: create, add and remove members, leave, rename, and the inbox.
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
use crate::apigw::Request;
use crate::domain::{
    ClientMsgId, ConversationId, GroupEvent, GroupInfo, Membership, Message, NewMessage, Role, Seq,
    UserId,
};
use crate::protocol::{
    ConversationKind, ConversationView, ConversationsFrame, CreateGroupFrame, LeaveGroupFrame,
    MemberView, MembersFrame, RenameGroupFrame, ServerFrame,
};
use crate::{App, Error};
use std::collections::BTreeSet;

/// `create_group`: the caller becomes admin, `members` members, all from the created event on.
pub async fn create_group(app: &App, req: &Request, frame: CreateGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let name = group_name(app, &frame.name)?;
    let mut members: Vec<UserId> = vec![me.clone()];
    for u in frame.members {
        if !members.contains(&u) {
            members.push(u);
        }
    }
    check_size(app, members.len())?;
    let conv = ConversationId::group(me, frame.client_msg_id.as_ref());
    let now = app.now();
    let existing = app
        .conversations
        .groups(std::slice::from_ref(&conv))
        .await?;
    match existing.get(&conv) {
        Some(info) if &info.created_by != me => {
            return Err(Error::Forbidden(format!("conversation {conv} exists")));
        }
        Some(_) => {} // a retry: finish whatever the first attempt left undone
        None => {
            let info = GroupInfo {
                conversation: conv.clone(),
                name: name.clone(),
                created_by: me.clone(),
                created_at: now,
            };
            app.conversations.put_group(&info).await?;
        }
    }
    let event = GroupEvent::GroupCreated {
        name,
        members: members.clone(),
    };
    let (message, duplicate) = append_event(app, &conv, me, frame.client_msg_id, event).await?;
    for user in &members {
        let role = if user == me {
            Role::Admin
        } else {
            Role::Member
        };
        let membership = Membership::new(&conv, user, role, message.seq, now);
        app.conversations.join(&membership).await?;
    }
    reply_state(app, req, &conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}

/// `add_members`: admins only; users already in the group are skipped.
pub async fn add_members(app: &App, req: &Request, frame: MembersFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    require_admin(app, req, conv).await?;
    let current: BTreeSet<UserId> = app
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
    let event = GroupEvent::MembersAdded { users: new };
    let (message, duplicate) =
        append_event(app, conv, &req.caller.user, frame.client_msg_id, event).await?;
    // On a retry the stored event says whom the first attempt added.
    let GroupEvent::MembersAdded { users } = message
        .event
        .clone()
        .unwrap_or(GroupEvent::MembersAdded { users: vec![] })
    else {
        return Err(Error::BadRequest(
            "client_msg_id was used for another kind of message".into(),
        ));
    };
    let now = app.now();
    for user in &users {
        app.conversations
            .join(&Membership::new(conv, user, Role::Member, message.seq, now))
            .await?;
    }
    reply_state(app, req, conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}

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
        if app.conversations.leave(conv, &user).await? {
            removed.push(user);
        }
    }
    if removed.is_empty() {
        return reply_state(app, req, conv, latest_seq(app, conv).await?).await;
    }
    let event = GroupEvent::MembersRemoved {
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

/// `leave_group`: any member; the last admin leaving promotes the longest-standing member.
pub async fn leave_group(app: &App, req: &Request, frame: LeaveGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let mine = require_member(app, conv, me).await?;
    require_group(conv)?;
    let mut others: Vec<crate::domain::Member> = app
        .conversations
        .members(conv)
        .await?
        .into_iter()
        .filter(|m| &m.user != me)
        .collect();
    let mut promoted = Vec::new();
    if mine.role == Role::Admin && !others.iter().any(|m| m.role == Role::Admin) {
        others.sort_by(|a, b| {
            (a.joined_at, a.from_seq, &a.user).cmp(&(b.joined_at, b.from_seq, &b.user))
        });
        if let Some(heir) = others.first() {
            app.conversations
                .set_role(conv, &heir.user, Role::Admin)
                .await?;
            promoted.push(heir.user.clone());
        }
    }
    app.conversations.leave(conv, me).await?;
    let event = GroupEvent::MemberLeft { promoted };
    let (message, duplicate) = append_event(app, conv, me, frame.client_msg_id, event).await?;
    req.reply(
        app,
        &ServerFrame::Left {
            conversation: conv.clone(),
            seq: message.seq,
        },
    )
    .await;
    if !duplicate {
        announce(app, req, &message, std::slice::from_ref(me)).await;
    }
    Ok(())
}

/// `rename_group`: any member.
pub async fn rename_group(app: &App, req: &Request, frame: RenameGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    require_member(app, conv, me).await?;
    require_group(conv)?;
    let name = group_name(app, &frame.name)?;
    let info = app
        .conversations
        .groups(std::slice::from_ref(conv))
        .await?
        .remove(conv);
    let info = info.ok_or_else(|| Error::NotFound(format!("group {conv} has no metadata")))?;
    app.conversations
        .put_group(&GroupInfo {
            name: name.clone(),
            ..info
        })
        .await?;
    let event = GroupEvent::GroupRenamed { name };
    let (message, duplicate) = append_event(app, conv, me, frame.client_msg_id, event).await?;
    reply_state(app, req, conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}

/// `conversations`: the caller's inbox (1:1 and groups) with latest seq and the caller's
/// pointers, so a new device can draw it from one request per page.
pub async fn conversations(
    app: &App,
    req: &Request,
    frame: ConversationsFrame,
) -> Result<(), Error> {
    let max = app.limits.conversations_page;
    let limit = frame.limit.unwrap_or(max).clamp(1, max);
    let mut mine = app.conversations.of_user(&req.caller.user).await?;
    mine.sort_by(|a, b| a.conversation.cmp(&b.conversation));
    mine.retain(|m| {
        frame
            .after
            .as_ref()
            .is_none_or(|after| &m.conversation > after)
    });
    let more = mine.len() > limit;
    mine.truncate(limit);
    let ids: Vec<ConversationId> = mine.iter().map(|m| m.conversation.clone()).collect();
    let heads = app.messages.last_seqs(&ids).await?;
    let group_ids: Vec<ConversationId> = ids.iter().filter(|c| c.is_group()).cloned().collect();
    let groups = if group_ids.is_empty() {
        Default::default()
    } else {
        app.conversations.groups(&group_ids).await?
    };
    let conversations = mine
        .into_iter()
        .map(|m| {
            let with = m
                .conversation
                .direct_members()
                .map(|(a, b)| if a == req.caller.user { b } else { a });
            ConversationView {
                kind: if m.conversation.is_group() {
                    ConversationKind::Group
                } else {
                    ConversationKind::Direct
                },
                name: groups.get(&m.conversation).map(|g| g.name.clone()),
                with,
                role: m.role,
                last_seq: heads.get(&m.conversation).copied().unwrap_or(0),
                delivered: m.delivered,
                read: m.read,
                conversation: m.conversation,
            }
        })
        .collect();
    req.reply(
        app,
        &ServerFrame::Conversations {
            conversations,
            more,
        },
    )
    .await;
    Ok(())
}

fn require_group(conv: &ConversationId) -> Result<(), Error> {
    if conv.is_group() {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{conv} is a 1:1 conversation, not a group"
        )))
    }
}

async fn require_admin(app: &App, req: &Request, conv: &ConversationId) -> Result<(), Error> {
    let mine = require_member(app, conv, &req.caller.user).await?;
    require_group(conv)?;
    if mine.role != Role::Admin {
        return Err(Error::Forbidden(
            "only group admins can add or remove members".into(),
        ));
    }
    Ok(())
}

fn group_name(app: &App, name: &str) -> Result<String, Error> {
    let name = name.trim();
    let max = app.limits.max_group_name_chars;
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "a group name is 1 to {max} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

fn check_size(app: &App, members: usize) -> Result<(), Error> {
    let max = app.limits.max_group_members;
    if members > max {
        return Err(Error::TooLarge(format!(
            "a group has at most {max} members; this would make {members}"
        )));
    }
    Ok(())
}

fn unique(users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = BTreeSet::new();
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

async fn latest_seq(app: &App, conv: &ConversationId) -> Result<Seq, Error> {
    Ok(app
        .messages
        .last_seqs(std::slice::from_ref(conv))
        .await?
        .get(conv)
        .copied()
        .unwrap_or(0))
}

/// Appends a system message; returns it and whether it was already stored (a retry).
async fn append_event(
    app: &App,
    conv: &ConversationId,
    actor: &UserId,
    client_msg_id: Option<ClientMsgId>,
    event: GroupEvent,
) -> Result<(Message, bool), Error> {
    let client_msg_id = match client_msg_id {
        Some(c) => c,
        None => ClientMsgId::new(format!("sys-{}", crate::domain::random_hex(10)))?,
    };
    let now = app.now();
    let appended = app
        .messages
        .append(NewMessage {
            conversation: conv.clone(),
            from: actor.clone(),
            client_msg_id,
            body: String::new(),
            event: Some(event),
            sent_at: now,
            expires_at: app.limits.retention.map(|r| now + r),
        })
        .await?;
    if appended.message.conversation != *conv {
        return Err(Error::BadRequest(
            "client_msg_id was already used in another conversation".into(),
        ));
    }
    Ok((appended.message, appended.duplicate))
}

/// Answers with the group as it now is.
async fn reply_state(
    app: &App,
    req: &Request,
    conv: &ConversationId,
    seq: Seq,
) -> Result<(), Error> {
    let info = app
        .conversations
        .groups(std::slice::from_ref(conv))
        .await?
        .remove(conv);
    let mut members: Vec<MemberView> = app
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
/// requesting connection. Failures are logged: the event is in the log for everyone's sync.
async fn announce(app: &App, req: &Request, message: &Message, also: &[UserId]) {
    let mut users = match app.conversations.members(&message.conversation).await {
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
    if let Err(e) = app
        .deliver(&users, &frame, Some(&req.caller.connection))
        .await
    {
        tracing::error!(error = ?e, "group change fan-out failed");
    }
}
