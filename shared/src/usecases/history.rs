//! Use case of the `history` route: older pages of one conversation, newest first.

use super::require_member;
use super::sync::Page;
use crate::domain::Seq;
use crate::protocol::{HistoryFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `history`: up to `limit` messages before `before` (default: the newest), newest first, each
/// in its current state, replies with their quote.
pub async fn history(app: &App, req: &Request, frame: HistoryFrame) -> Result<(), Error> {
    let conv = &frame.conversation;
    let membership = require_member(app, conv, &req.caller.user).await?;
    let limits = &app.limits;
    let limit = frame
        .limit
        .unwrap_or(limits.history_default)
        .clamp(1, limits.history_max);
    let before = frame.before.unwrap_or(Seq::MAX);
    let mut batch = app
        .stores
        .messages
        .before(conv, before, limit + 1, app.now())
        .await?;
    batch.retain(|m| m.seq >= membership.from_seq);
    let mut page = Page::new(app, limit);
    let mut more = batch.len() > limit;
    batch.truncate(limit);
    let views = super::views::views(app, conv, &batch, membership.from_seq).await?;
    for view in views {
        if !page.push(view) {
            more = true;
            break;
        }
    }
    req.reply(
        app,
        &ServerFrame::History {
            conversation: conv.clone(),
            messages: page.messages,
            more,
        },
    )
    .await;
    Ok(())
}
