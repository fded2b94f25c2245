//! Rules shared by the group use cases (`create_group.rs`, `add_members.rs`, `remove_members.rs`,
//! `leave_group.rs`, `rename_group.rs`).
//!
//! Every membership change is also a system message in the conversation's log, so all devices
//! see the same, seq-ordered history of who was there. The change and its event are one atomic
//! append ([`Effects`]): there is never a membership change without its event, nor an event
//! without its change. Rules:
//! - the creator is an admin; only admins add or remove others; anyone may leave; when the last
//!   admin leaves, the longest-standing member becomes admin (even when two admins leave at
//!   once: each leave requires another admin to remain, or promotes one);
//! - a member reads from the event that added them onwards (`from_seq`), never earlier history;
//! - nothing sent after a removal reaches the removed member (fan-out reads the member list,
//!   strongly consistent, after storing the message).
//!
//! Each change takes an optional `client_msg_id`, which belongs to that one request: a retry
//! (same key, same action, conversation and content) changes nothing more and answers with the
//! original event, after checking the caller's rights as they are now; the same key with
//! anything else is a `conflict`, and changes nothing.

use super::{conflict, forbidden};
use crate::domain::{
    ClientMsgId, ConversationId, Head, LogEvent, Member, Message, NewMessage, RequestDigest, Role,
    Seq, UserId,
};
use crate::ports::{Append, Effects, GroupChange, GroupContext, GroupKeys, GroupRefusal};
use crate::protocol::{MemberView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::BTreeSet;

/// How often a change is decided again when the group changed between its read and its write.
const ATTEMPTS: usize = 5;

pub(super) fn require_group(conv: &ConversationId) -> Result<(), Error> {
    if conv.is_group() {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{conv} is a 1:1 conversation, not a group"
        )))
    }
}

/// The caller as a member of the group read in `ctx`, or `forbidden`.
pub(super) fn require_member<'a>(
    ctx: &'a GroupContext,
    conv: &ConversationId,
    me: &UserId,
) -> Result<&'a Member, Error> {
    let mine = ctx.member(me).ok_or_else(|| forbidden(conv))?;
    require_group(conv)?;
    Ok(mine)
}

/// The caller as an admin of the group read in `ctx`, or `forbidden`.
pub(super) fn require_admin(
    ctx: &GroupContext,
    conv: &ConversationId,
    me: &UserId,
) -> Result<(), Error> {
    if require_member(ctx, conv, me)?.role != Role::Admin {
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

/// The users of a frame, each once, in order; `too_large` past the per-frame limit.
pub(super) fn unique_ids(app: &App, users: Vec<UserId>) -> Result<Vec<UserId>, Error> {
    let max = app.limits.max_ids_per_frame;
    let mut seen = BTreeSet::new();
    let users: Vec<UserId> = users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect();
    if users.len() > max {
        return Err(Error::TooLarge(format!(
            "at most {max} user ids per frame; this one has {}",
            users.len()
        )));
    }
    Ok(users)
}

/// The users as one digest part: sorted, so the same set is the same request in any order.
pub(super) fn users_part(users: &[UserId]) -> String {
    let sorted: BTreeSet<&str> = users.iter().map(UserId::as_str).collect();
    sorted.into_iter().collect::<Vec<_>>().join(",")
}

/// `too_large` when one of `users` is already in the most groups a user may be in.
pub(super) fn check_groups_of(
    app: &App,
    ctx: &GroupContext,
    users: &[UserId],
) -> Result<(), Error> {
    let max = app.limits.max_groups_per_user;
    match users
        .iter()
        .find(|u| ctx.groups_of.get(*u).copied().unwrap_or(0) >= max)
    {
        Some(u) => Err(too_many_groups(app, u)),
        None => Ok(()),
    }
}

/// `forbidden` when one of `users` blocked the caller: nobody can put someone who blocked them
/// in a group.
/// Those of `users` for whom a group the caller adds them to is a message request: everyone
/// but the caller and their contacts (a 1:1 with the caller that is no request to them).
pub(super) fn requests_of(ctx: &GroupContext, me: &UserId, users: &[UserId]) -> Vec<UserId> {
    users
        .iter()
        .filter(|u| *u != me && !ctx.contacts.contains(*u))
        .cloned()
        .collect()
}

pub(super) fn check_blocked_by(ctx: &GroupContext, users: &[UserId]) -> Result<(), Error> {
    match users.iter().find(|u| ctx.blocked_by.contains(*u)) {
        Some(u) => Err(Error::Forbidden(format!("you can't add {u} to a group"))),
        None => Ok(()),
    }
}

fn too_many_groups(app: &App, user: &UserId) -> Error {
    Error::TooLarge(format!(
        "{user} is already in {} groups, the most a user may be in",
        app.limits.max_groups_per_user
    ))
}

/// What a change does, decided from the group as just read.
#[allow(clippy::large_enum_variant)] // one short-lived value per request: a box buys nothing
pub(super) enum Plan {
    /// Nothing to change (everyone asked for already is, or is not, a member).
    Nothing,
    /// Append this event, atomically with this change.
    Change(LogEvent, GroupChange),
}

/// How a change ended.
#[allow(clippy::large_enum_variant)] // one short-lived value per request: a box buys nothing
pub(super) enum Done {
    /// Stored now, as this event; the group as read when the change was decided.
    Stored(Message, GroupContext),
    /// The `client_msg_id` had stored this same request before (its event's seq); the group as
    /// it is now, for the caller's current rights.
    Retried(Seq, GroupContext),
    /// Nothing to change; the group as it is.
    Unchanged(GroupContext),
}

/// One group change as a request: the group's first read (group, members, the caller's key,
/// the new members' group counts), the plan made from it, then the event appended atomically
/// with the change. When the group changed between the read and the write (the write's
/// conditions failed), it is read and planned again.
#[allow(clippy::too_many_arguments)]
pub(super) async fn change_group(
    app: &App,
    req: &Request,
    conv: &ConversationId,
    cmid: Option<&ClientMsgId>,
    digest: RequestDigest,
    counts_of: &[UserId],
    plan: impl Fn(&GroupContext) -> Result<Plan, Error>,
) -> Result<Done, Error> {
    let me = &req.caller.user;
    for _ in 0..ATTEMPTS {
        let now = app.now();
        let keys = GroupKeys {
            conversation: conv,
            user: me,
            client_msg_id: cmid,
            counts_of,
        };
        let ctx = app.stores.reads.read_for_group(keys, now).await?;
        if let (Some(cmid), Some(sent)) = (cmid, &ctx.sent) {
            if !sent.is_same_request(conv, &digest) {
                return Err(conflict(cmid));
            }
            return Ok(Done::Retried(sent.seq, ctx));
        }
        let (event, change) = match plan(&ctx)? {
            Plan::Nothing => return Ok(Done::Unchanged(ctx)),
            Plan::Change(event, change) => (event, change),
        };
        let client_msg_id = match cmid {
            Some(c) => c.clone(),
            None => ClientMsgId::new(format!("sys-{}", crate::domain::random_hex(10)))?,
        };
        let msg = NewMessage {
            conversation: conv.clone(),
            from: me.clone(),
            client_msg_id,
            digest: digest.clone(),
            body: String::new(),
            event: Some(event),
            sent_at: now,
            expires_at: app.limits.retention.map(|r| now + r),
            attachments: Vec::new(),
            reply_to: None,
        };
        let effects = Effects {
            group: Some(change),
            ..Effects::default()
        };
        let head = Some(Head {
            last_seq: ctx.last_seq,
            chats: ctx.chats,
            last: None,
        });
        match app.stores.messages.append_with(msg, &effects, head).await? {
            Append::Stored(a) => return Ok(Done::Stored(a.message, ctx)),
            // A concurrent attempt of this same request stored it first.
            Append::Duplicate(a) => {
                let ctx = app.stores.reads.read_for_group(keys, now).await?;
                return Ok(Done::Retried(a.message.seq, ctx));
            }
            Append::Conflict(_) => {
                return Err(conflict(cmid.expect("only a client's key can conflict")));
            }
            Append::Refused(GroupRefusal::GroupChanged) => {
                tracing::info!(conversation = %conv, "the group changed under the change; deciding again");
            }
            Append::Refused(GroupRefusal::TooManyGroups(u)) => {
                return Err(too_many_groups(app, &u));
            }
            Append::Refused(GroupRefusal::GroupExists) => {
                return Err(Error::Forbidden(format!("conversation {conv} exists")));
            }
        }
    }
    Err(Error::Store(crate::ports::StoreError::Backend(
        format!("group {conv} kept changing during {ATTEMPTS} attempts").into(),
    )))
}

/// Answers with the group as `members` show it, and `seq` (the change's event, or the latest).
pub(super) async fn reply_state(
    app: &App,
    req: &Request,
    conv: &ConversationId,
    name: String,
    members: &[Member],
    seq: Seq,
) {
    let mut members: Vec<MemberView> = members
        .iter()
        .map(|m| MemberView {
            user: m.user.clone(),
            role: m.role,
        })
        .collect();
    members.sort_by(|a, b| a.user.cmp(&b.user));
    let frame = ServerFrame::Group {
        conversation: conv.clone(),
        name,
        members,
        seq,
    };
    req.reply(app, &frame).await;
}

/// The answer to a change just stored as `message`: the group as it now is (its member list
/// read again, strongly consistent), then the event to every member who may read it and to
/// `also` (the removed, the one who left), except the requesting connection, and to the topic.
pub(super) async fn finish(
    app: &App,
    req: &Request,
    message: &Message,
    name: String,
    also: &[UserId],
) -> Result<(), Error> {
    let conv = &message.conversation;
    let members = app.stores.conversations.members(conv).await?;
    match &message.event {
        Some(LogEvent::MemberLeft { .. }) => {
            let left = ServerFrame::Left {
                conversation: conv.clone(),
                seq: message.seq,
            };
            req.reply(app, &left).await;
        }
        _ => reply_state(app, req, conv, name, &members, message.seq).await,
    }
    let mut users: Vec<UserId> = members
        .into_iter()
        .filter(|m| m.from_seq <= message.seq)
        .map(|m| m.user)
        .collect();
    users.extend(
        also.iter()
            .filter(|u| !users.contains(u))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let frame = ServerFrame::Message(message.into());
    // The event is stored: a failed fan-out only delays it until the members' next sync. Like
    // every stored message it is then published to the topic (when this process does that
    // in-line: it wakes no phone, see `notify`).
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
    Ok(())
}

/// The group's name as read (empty when it has no metadata).
pub(super) fn name_of(ctx: &GroupContext) -> String {
    ctx.info
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_default()
}
