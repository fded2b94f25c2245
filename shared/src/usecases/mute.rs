//! Use case of the `mute` route (and `unmute.rs`): no pushes for a conversation for a while.

use crate::domain::{ConversationId, muted_forever};
use crate::protocol::{MuteFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use chrono::{DateTime, Utc};

/// `mute`: no pushes for the conversation to any of the caller's devices until `until` (absent
/// or null: until `unmute`). Live delivery to open connections is unchanged. One conditional
/// write; the caller's other devices learn it live.
pub async fn mute(app: &App, req: &Request, frame: MuteFrame) -> Result<(), Error> {
    let stored = match frame.until {
        None => muted_forever(),
        Some(t) if t <= app.now() => {
            return Err(Error::BadRequest("\"until\" must be in the future".into()));
        }
        Some(t) => t.min(muted_forever()),
    };
    set(app, req, frame.conversation, Some(stored), frame.until).await
}

/// Stores the caller's mute state of `conv` (`None`: unmuted), answers, and tells the caller's
/// other devices. `shown` is the end the client sees (`None`: no end).
pub(super) async fn set(
    app: &App,
    req: &Request,
    conv: ConversationId,
    stored: Option<DateTime<Utc>>,
    shown: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let me = &req.caller.user;
    // The conditional write is the membership check: a non-member gets no item.
    if !app
        .stores
        .conversations
        .set_muted(&conv, me, stored)
        .await?
    {
        return Err(Error::Forbidden(format!(
            "you are not a member of conversation {conv}"
        )));
    }
    let frame = ServerFrame::Muted {
        conversation: conv,
        muted: stored.is_some(),
        until: shown,
    };
    super::reply_on_every_device(app, req, &frame).await;
    Ok(())
}
