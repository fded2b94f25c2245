//! Use case of the `unblock` route.

use super::block::answer;
use crate::protocol::UserFrame;
use crate::request::Request;
use crate::{App, Error};

/// `unblock`: `user` may reach the caller again (nothing refused while blocked comes back).
/// One conditional delete; unblocking someone not blocked is answered the same.
pub async fn unblock(app: &App, req: &Request, frame: UserFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    if &frame.user == me {
        return Err(Error::BadRequest("you cannot block yourself".into()));
    }
    app.stores.blocks.unblock(me, &frame.user).await?;
    answer(app, req, frame.user, false).await;
    Ok(())
}
