//! Use case of the `delete` route: delete a message for everyone.

use super::amend::amend;
use crate::domain::{Change, Membership, Role};
use crate::protocol::{DeleteFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `delete`: the author (or, in a group, an admin) deletes message `seq` for everyone. Its body
/// and reactions are removed from storage, not hidden; the message keeps its seq and reads as
/// `deleted`, and a `message_deleted` entry records it in the log.
pub async fn delete(app: &App, req: &Request, frame: DeleteFrame) -> Result<(), Error> {
    let conv = frame.conversation;
    let group = conv.is_group();
    let change = move |m: &Membership| Change::Delete {
        moderator: group && m.role == Role::Admin,
    };
    amend(app, req, conv, frame.seq, change, ServerFrame::Deleted).await
}
