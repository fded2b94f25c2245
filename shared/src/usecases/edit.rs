//! Use case of the `edit` route: a new body for one of the caller's own messages.

use super::amend::amend;
use crate::domain::Change;
use crate::protocol::{EditFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `edit`: the author replaces the body of message `seq`, within
/// [`crate::Limits::edit_window`] of sending it. The message keeps its seq and shows the latest
/// body with `edited_at`; an `message_edited` entry records the edit in the log.
pub async fn edit(app: &App, req: &Request, frame: EditFrame) -> Result<(), Error> {
    super::send::check_body(app, &frame.body, false)?;
    let window_start = app.now() - app.limits.edit_window;
    let change = |_: &_| Change::Edit {
        body: frame.body,
        window_start,
    };
    amend(
        app,
        req,
        frame.conversation,
        frame.seq,
        change,
        ServerFrame::Edited,
    )
    .await
}
