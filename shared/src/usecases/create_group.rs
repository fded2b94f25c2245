//! Use case of the `create_group` route: a new group with the caller as admin.

use super::groups::{
    Done, Plan, change_group, check_blocked_by, check_groups_of, check_size, finish, group_name,
    name_of, reply_state, requests_of, unique_ids, users_part,
};
use super::{conflict, forbidden};
use crate::domain::{ConversationId, GroupInfo, LogEvent, RequestDigest, Role, UserId};
use crate::ports::GroupChange;
use crate::protocol::CreateGroupFrame;
use crate::request::Request;
use crate::{App, Error};

/// `create_group`: the caller becomes admin, `members` members, all from the created event on.
/// The group, its members and its created event are one atomic write. With a `client_msg_id`
/// the group's id comes from it, so a retry lands on the same group: it answers with the group
/// as it now is, and adds nobody (a creator who has left since gets `forbidden`); once the key
/// has lapsed (`KEY_WINDOW`), the same key is `conflict`.
pub async fn create_group(app: &App, req: &Request, frame: CreateGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let name = group_name(app, &frame.name)?;
    let others: Vec<UserId> = unique_ids(app, frame.members)?
        .into_iter()
        .filter(|u| u != me)
        .collect();
    let mut members = vec![me.clone()];
    members.extend(others.iter().cloned());
    check_size(app, members.len())?;
    let cmid = frame.client_msg_id.as_ref();
    let conv = ConversationId::group(me, cmid);
    let digest = RequestDigest::of("create_group", &conv, &[&name, &users_part(&others)]);
    let now = app.now();
    let done = change_group(app, req, &conv, cmid, digest, &members, |ctx| {
        if ctx.info.is_some() || !ctx.members.is_empty() {
            // The id comes from the key: this key made the group, and has lapsed since
            // (`KEY_WINDOW`), so this is a new request with a used key.
            return Err(match cmid {
                Some(cmid) => conflict(cmid),
                None => Error::Forbidden(format!("conversation {conv} exists")),
            });
        }
        check_blocked_by(ctx, &members)?;
        check_groups_of(app, ctx, &members)?;
        let event = LogEvent::GroupCreated {
            name: name.clone(),
            members: members.clone(),
        };
        let change = GroupChange {
            create: Some(GroupInfo {
                conversation: conv.clone(),
                name: name.clone(),
                created_by: me.clone(),
                created_at: now,
            }),
            join: members
                .iter()
                .map(|u| (u.clone(), if u == me { Role::Admin } else { Role::Member }))
                .collect(),
            requests: requests_of(ctx, me, &members),
            max_members: app.limits.max_group_members,
            max_groups_per_user: app.limits.max_groups_per_user,
            ..GroupChange::default()
        };
        Ok(Plan::Change(event, change))
    })
    .await?;
    match done {
        Done::Stored(message, _) => finish(app, req, &message, name, &[]).await,
        Done::Retried(seq, ctx) if ctx.member(me).is_some() => {
            reply_state(app, req, &conv, name_of(&ctx), &ctx.members, seq).await;
            Ok(())
        }
        Done::Retried(..) | Done::Unchanged(_) => Err(forbidden(&conv)),
    }
}
