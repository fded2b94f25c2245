//! Use case of the `remove_members` route (admins only).

use super::groups::{
    Done, Plan, change_group, finish, name_of, reply_state, require_admin, unique_ids, users_part,
};
use crate::domain::{LogEvent, RequestDigest, Role, UserId};
use crate::ports::GroupChange;
use crate::protocol::MembersFrame;
use crate::request::Request;
use crate::{App, Error};

/// `remove_members`: admins only, never themselves (that is `leave_group`). The removal and its
/// `members_removed` event are one atomic write; the removed get that event, once, and nothing
/// stored after it.
pub async fn remove_members(app: &App, req: &Request, frame: MembersFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let users = unique_ids(app, frame.users)?;
    if users.contains(me) {
        return Err(Error::BadRequest("use leave_group to leave a group".into()));
    }
    let digest = RequestDigest::of("remove_members", conv, &[&users_part(&users)]);
    let cmid = frame.client_msg_id.as_ref();
    let done = change_group(app, req, conv, cmid, digest, &[], |ctx| {
        require_admin(ctx, conv, me)?;
        let present: Vec<UserId> = users
            .iter()
            .filter(|u| ctx.member(u).is_some())
            .cloned()
            .collect();
        if present.is_empty() {
            return Ok(Plan::Nothing);
        }
        let change = GroupChange {
            leave: present.clone(),
            require: vec![(me.clone(), Some(Role::Admin))],
            ..GroupChange::default()
        };
        Ok(Plan::Change(
            LogEvent::MembersRemoved { users: present },
            change,
        ))
    })
    .await?;
    match done {
        Done::Stored(message, ctx) => {
            let removed = match &message.event {
                Some(LogEvent::MembersRemoved { users }) => users.clone(),
                _ => Vec::new(),
            };
            finish(app, req, &message, name_of(&ctx), &removed).await
        }
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
