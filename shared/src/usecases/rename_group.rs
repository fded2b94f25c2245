//! Use case of the `rename_group` route (any member).

use super::groups::{
    Done, Plan, change_group, finish, group_name, name_of, reply_state, require_member,
};
use crate::domain::{LogEvent, RequestDigest};
use crate::ports::GroupChange;
use crate::protocol::RenameGroupFrame;
use crate::request::Request;
use crate::{App, Error};

/// `rename_group`: any member. The new name and its `group_renamed` event are one atomic write.
pub async fn rename_group(app: &App, req: &Request, frame: RenameGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let name = group_name(app, &frame.name)?;
    let digest = RequestDigest::of("rename_group", conv, &[&name]);
    let cmid = frame.client_msg_id.as_ref();
    let done = change_group(app, req, conv, cmid, digest, &[], |ctx| {
        require_member(ctx, conv, me)?;
        if ctx.info.is_none() {
            return Err(Error::NotFound(format!("group {conv} has no metadata")));
        }
        let change = GroupChange {
            rename: Some(name.clone()),
            require: vec![(me.clone(), None)],
            ..GroupChange::default()
        };
        Ok(Plan::Change(
            LogEvent::GroupRenamed { name: name.clone() },
            change,
        ))
    })
    .await?;
    match done {
        Done::Stored(message, _) => finish(app, req, &message, name, &[]).await,
        Done::Retried(seq, ctx) => {
            require_member(&ctx, conv, me)?;
            reply_state(app, req, conv, name_of(&ctx), &ctx.members, seq).await;
            Ok(())
        }
        Done::Unchanged(_) => unreachable!("a rename always changes the group"),
    }
}
