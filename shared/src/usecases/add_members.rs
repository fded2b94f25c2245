//! Use case of the `add_members` route (admins only).

use super::groups::{
    Done, Plan, change_group, check_blocked_by, check_groups_of, check_size, finish, name_of,
    reply_state, requests_of, require_admin, unique_ids, users_part,
};
use crate::domain::{LogEvent, RequestDigest, Role, UserId};
use crate::ports::GroupChange;
use crate::protocol::MembersFrame;
use crate::request::Request;
use crate::{App, Error};

/// `add_members`: admins only; users already in the group are skipped. The new members read
/// from the `members_added` event on; they and the event are one atomic write.
pub async fn add_members(app: &App, req: &Request, frame: MembersFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let users = unique_ids(app, frame.users)?;
    let digest = RequestDigest::of("add_members", conv, &[&users_part(&users)]);
    let cmid = frame.client_msg_id.as_ref();
    let done = change_group(app, req, conv, cmid, digest, &users, |ctx| {
        require_admin(ctx, conv, me)?;
        let new: Vec<UserId> = users
            .iter()
            .filter(|u| ctx.member(u).is_none())
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(Plan::Nothing);
        }
        check_size(app, ctx.members.len() + new.len())?;
        check_blocked_by(ctx, &new)?;
        check_groups_of(app, ctx, &new)?;
        let change = GroupChange {
            join: new.iter().map(|u| (u.clone(), Role::Member)).collect(),
            requests: requests_of(ctx, me, &new),
            require: vec![(me.clone(), Some(Role::Admin))],
            max_members: app.limits.max_group_members,
            max_groups_per_user: app.limits.max_groups_per_user,
            ..GroupChange::default()
        };
        Ok(Plan::Change(LogEvent::MembersAdded { users: new }, change))
    })
    .await?;
    match done {
        Done::Stored(message, ctx) => finish(app, req, &message, name_of(&ctx), &[]).await,
        Done::Retried(seq, ctx) => {
            require_admin(&ctx, conv, me)?;
            reply_state(app, req, conv, name_of(&ctx), &ctx.members, seq).await;
            Ok(())
        }
        Done::Unchanged(ctx) => {
            reply_state(app, req, conv, name_of(&ctx), &ctx.members, ctx.last_seq).await;
            Ok(())
        }
    }
}
