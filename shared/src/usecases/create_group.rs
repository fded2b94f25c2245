//! Use case of the `create_group` route: a new group with the caller as admin.

use super::groups::{announce, append_event, check_size, group_name, reply_state};
use crate::domain::{ConversationId, GroupInfo, LogEvent, Membership, Role, UserId};
use crate::protocol::CreateGroupFrame;
use crate::request::Request;
use crate::{App, Error};

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
        .stores
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
            app.stores.conversations.put_group(&info).await?;
        }
    }
    let event = LogEvent::GroupCreated {
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
        app.stores.conversations.join(&membership).await?;
    }
    reply_state(app, req, &conv, message.seq).await?;
    if !duplicate {
        announce(app, req, &message, &[]).await;
    }
    Ok(())
}
