//! Use case of the `leave_group` route: any member leaves; the last admin leaving promotes an heir.

use super::groups::{announce, append_event, require_group};
use super::require_member;
use crate::domain::{LogEvent, Member, Role};
use crate::protocol::{LeaveGroupFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `leave_group`: any member; the last admin leaving promotes the longest-standing member.
pub async fn leave_group(app: &App, req: &Request, frame: LeaveGroupFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = &frame.conversation;
    let mine = require_member(app, conv, me).await?;
    require_group(conv)?;
    let mut others: Vec<Member> = app
        .stores
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
            app.stores
                .conversations
                .set_role(conv, &heir.user, Role::Admin)
                .await?;
            promoted.push(heir.user.clone());
        }
    }
    app.stores.conversations.leave(conv, me).await?;
    let event = LogEvent::MemberLeft { promoted };
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
