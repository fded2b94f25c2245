//! Use case of the `block` route (and `unblock.rs`): stop a user from reaching the caller.

use crate::domain::UserId;
use crate::protocol::{ServerFrame, UserFrame};
use crate::request::Request;
use crate::{App, Error};

/// `block`: from now on `user`'s 1:1 messages to the caller are refused (`forbidden`, nothing
/// stored, delivered or pushed), they see the caller as never seen in `presence`, and they
/// cannot put the caller in a group; in groups both are in, nothing changes. Private: `user` is
/// told nothing, and no event is logged anywhere. One conditional write (blocking twice keeps
/// the first instant); the caller's other devices learn it live.
pub async fn block(app: &App, req: &Request, frame: UserFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    if &frame.user == me {
        return Err(Error::BadRequest("you cannot block yourself".into()));
    }
    app.stores.blocks.block(me, &frame.user, app.now()).await?;
    answer(app, req, frame.user, true).await;
    Ok(())
}

/// Answers a block change and tells the caller's other devices (never the user concerned).
pub(super) async fn answer(app: &App, req: &Request, user: UserId, blocked: bool) {
    let frame = ServerFrame::BlockState { user, blocked };
    super::reply_on_every_device(app, req, &frame).await;
}
