//! Use case of the `unmute` route.

use crate::protocol::ConversationFrame;
use crate::request::Request;
use crate::{App, Error};

/// `unmute`: pushes for the conversation again (unmuting what is not muted changes nothing).
pub async fn unmute(app: &App, req: &Request, frame: ConversationFrame) -> Result<(), Error> {
    super::mute::set(app, req, frame.conversation, None, None).await
}
