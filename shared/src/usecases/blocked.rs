//! Use case of the `blocked` route: whom the caller blocked.

use crate::protocol::{BlockedFrame, BlockedView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// Most users in one `blocked` page.
pub const BLOCKED_PAGE: usize = 100;

/// `blocked`: the users the caller blocked, in user id order, [`BLOCKED_PAGE`] at a time; ask
/// again with the reply's `cursor` while `more`. One query.
pub async fn blocked(app: &App, req: &Request, frame: BlockedFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let (page, more) = app
        .stores
        .blocks
        .blocked(me, frame.cursor.as_ref(), BLOCKED_PAGE)
        .await?;
    let cursor = more.then(|| page.last().map(|b| b.user.clone())).flatten();
    let users = page
        .into_iter()
        .map(|b| BlockedView {
            user: b.user,
            blocked_at: b.at,
        })
        .collect();
    req.reply(
        app,
        &ServerFrame::Blocked {
            users,
            more,
            cursor,
        },
    )
    .await;
    Ok(())
}
