//! Use case of the `download` route: fresh download URLs for a message's attachments (the
//! ones in a frame expire after an hour).

use super::{attachments, require_member};
use crate::protocol::{DownloadFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `download`: the attachments of message `seq`, with URLs minted now, for a member who may
/// read that message (it is not from before they joined, nor expired).
///
/// Requests: the caller's membership and the message (two reads); URLs are signed locally.
pub async fn download(app: &App, req: &Request, frame: DownloadFrame) -> Result<(), Error> {
    let conv = frame.conversation;
    let membership = require_member(app, &conv, &req.caller.user).await?;
    let seq = frame.seq;
    let not_found = || Error::NotFound(format!("no message {seq} you can see in {conv}"));
    if seq == 0 || seq < membership.from_seq {
        return Err(not_found());
    }
    let message = app
        .stores
        .messages
        .after(&conv, seq - 1, 1, app.now())
        .await?
        .into_iter()
        .find(|m| m.seq == seq)
        .ok_or_else(not_found)?;
    let views = attachments::signed_attachments(app, &message).await?;
    req.reply(
        app,
        &ServerFrame::Download {
            conversation: conv,
            seq,
            attachments: views,
        },
    )
    .await;
    Ok(())
}
