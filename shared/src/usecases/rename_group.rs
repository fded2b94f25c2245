//! Use case of the `rename_group` route (any member).

use super::groups::{announce, append_event, group_name, reply_state, require_group};
use super::require_member;
use crate::domain::{GroupInfo, LogEvent};
use crate::protocol::RenameGroupFrame;
use crate::request::Request;
use crate::{App, Error};

/// `rename_group`: any member.
pub async fn rename_group(app: &App, req: &Request, frame: RenameGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    require_member(app, conv, me).await?;
    require_group(conv)?;
    let name = group_name(app, &frame.name)?;
    let info = app
        .stores
        .conversations
        .groups(std::slice::from_ref(conv))
        .await?
        .remove(conv);
    let info = info.ok_or_else(|| Error::NotFound(format!("group {conv} has no metadata")))?;
    app.stores
        .conversations
        .put_group(&GroupInfo {
            name: name.clone(),
            ..info
        })
        .await?;
    let event = LogEvent::GroupRenamed { name };
    let (message, duplicate) = append_event(app, conv, me, frame.client_msg_id, event).await?;
    reply_state(app, req, conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}
