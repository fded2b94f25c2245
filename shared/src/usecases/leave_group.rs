//! Use case of the `leave_group` route: any member leaves; the last admin leaving promotes an heir.

use super::groups::{Done, Plan, change_group, finish, name_of, require_member};
use crate::domain::{LogEvent, Member, RequestDigest, Role};
use crate::ports::GroupChange;
use crate::protocol::{LeaveGroupFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `leave_group`: any member. An admin who leaves relies on another admin staying (the write
/// requires it), or, as the last admin, promotes the longest-standing member in the same write:
/// two admins leaving at once, or the last admin and the heir, cannot leave the group without
/// an admin.
pub async fn leave_group(app: &App, req: &Request, frame: LeaveGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let digest = RequestDigest::of("leave_group", conv, &[]);
    let cmid = frame.client_msg_id.as_ref();
    let done = change_group(app, req, conv, cmid, digest, &[], |ctx| {
        let mine = require_member(ctx, conv, me)?;
        let others: Vec<&Member> = ctx.members.iter().filter(|m| &m.user != me).collect();
        // Decided for the role read: if it changed meanwhile (the caller was just promoted,
        // by an admin leaving at the same moment), the write is refused and decided again.
        let mut change = GroupChange {
            leave: vec![me.clone()],
            require: vec![(me.clone(), Some(mine.role))],
            ..GroupChange::default()
        };
        if mine.role == Role::Admin {
            match others.iter().find(|m| m.role == Role::Admin) {
                // Another admin stays: the write requires that they still are one.
                Some(other) => change.require.push((other.user.clone(), Some(Role::Admin))),
                None => {
                    let heir = others.iter().min_by(|a, b| {
                        (a.joined_at, a.from_seq, &a.user).cmp(&(b.joined_at, b.from_seq, &b.user))
                    });
                    change.promote.extend(heir.map(|m| m.user.clone()));
                }
            }
        }
        let event = LogEvent::MemberLeft {
            promoted: change.promote.clone(),
        };
        Ok(Plan::Change(event, change))
    })
    .await?;
    match done {
        Done::Stored(message, ctx) => {
            finish(app, req, &message, name_of(&ctx), std::slice::from_ref(me)).await
        }
        // A retry: the caller left with that event (and stays out unless added again since).
        Done::Retried(seq, _) => {
            let left = ServerFrame::Left {
                conversation: conv.clone(),
                seq,
            };
            req.reply(app, &left).await;
            Ok(())
        }
        Done::Unchanged(_) => unreachable!("leaving always changes the group"),
    }
}
