//! What the `edit`, `delete` and `react` use cases share (`edit.rs`, `delete.rs`, `react.rs`):
//! a change to a stored message, recorded as an entry of the conversation's log that refers to
//! it. The store applies the change and appends the entry atomically
//! ([`crate::ports::MessageLog::amend`]); the caller gets the message as it now is and the
//! entry, every other device the entry with the message (`target`), and `sync` replays the
//! entry for devices that were offline. A request that changes nothing (the same body, a reaction already there, a
//! message already deleted) stores and delivers nothing, so retries are harmless.

use super::views::deliver_entry;
use super::{blocked_error, require_member_and_blocks};
use crate::domain::{
    Amendment, Change, ClientMsgId, ConversationId, Membership, Refusal, RequestState, Seq,
    random_hex,
};
use crate::ports::Amended;
use crate::protocol::{AmendedView, MessageView, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// Which reply frame an amendment gets (`edited`, `deleted`, `reacted`).
pub(super) type Reply = fn(AmendedView) -> ServerFrame;

/// Applies the change `change` makes for the caller's membership to message `seq` of `conv`,
/// answers with `reply`, and delivers the recording entry to the other members.
pub(super) async fn amend(
    app: &App,
    req: &Request,
    conv: ConversationId,
    seq: Seq,
    change: impl FnOnce(&Membership) -> Change,
    reply: Reply,
) -> Result<(), Error> {
    let me = &req.caller.user;
    if seq == 0 {
        return Err(Error::BadRequest("seq must be at least 1".into()));
    }
    let (membership, blocks) = require_member_and_blocks(app, &conv, me).await?;
    // A 1:1 between users who block each other is read-only for both.
    if blocks.any() {
        return Err(blocked_error(blocks));
    }
    // So is a 1:1 whose request the other declined, for its sender.
    if membership.request == RequestState::Refused {
        return Err(blocked_error(blocks));
    }
    if seq < membership.from_seq {
        // Before the caller joined: not theirs to see, let alone change.
        return Err(Error::NotFound(format!(
            "no message {seq} you can see in {conv}"
        )));
    }
    let now = app.now();
    let amendment = Amendment {
        conversation: conv.clone(),
        seq,
        by: me.clone(),
        client_msg_id: ClientMsgId::new(format!("sys-{}", random_hex(10)))?,
        at: now,
        expires_at: app.limits.retention.map(|r| now + r),
        change: change(&membership),
    };
    let (entry, message) = match app.stores.messages.amend(&amendment).await? {
        Amended::Missing { head } if seq > head => {
            return Err(Error::BadRequest(format!(
                "seq {seq} is past the latest message of {conv} ({head})"
            )));
        }
        Amended::Missing { .. } => {
            return Err(Error::NotFound(format!("message {seq} has expired")));
        }
        Amended::Refused(r) => return Err(refused(r)),
        Amended::Unchanged { message } => {
            let view = AmendedView {
                conversation: conv,
                message: super::attachments::signed_view(app, &message).await,
                entry: None,
                unchanged: true,
            };
            req.reply(app, &reply(view)).await;
            return Ok(());
        }
        Amended::Applied {
            entry,
            message,
            removed,
        } => {
            // Gone from the message for everyone: its files go too (best effort, logged).
            super::attachments::delete_files(app, &conv, &message.from, &removed).await;
            (entry, message)
        }
    };
    let target = super::attachments::signed_view(app, &message).await;
    let mut live = MessageView::from(entry.as_ref());
    live.target = Some(Box::new(target.clone()));
    let view = AmendedView {
        conversation: conv.clone(),
        message: target,
        entry: Some(Box::new(live.clone())),
        unchanged: false,
    };
    req.reply(app, &reply(view)).await;
    // Stored and answered: a failing fan-out only means the others get it by `sync`.
    match deliver_entry(app, &conv, live, Some(seq), &req.caller.connection).await {
        Ok(d) => tracing::info!(
            conversation = %conv, seq, entry = entry.seq, posts = d.posts, "message amended"
        ),
        Err(e) => {
            tracing::error!(conversation = %conv, seq, error = ?e, "amendment fan-out failed")
        }
    }
    Ok(())
}

/// The client's error for a change the rules refuse.
fn refused(r: Refusal) -> Error {
    let text = r.to_string();
    match r {
        Refusal::NotAMessage(_) => Error::BadRequest(text),
        Refusal::Deleted(_) => Error::NotFound(text),
        Refusal::NotYours(_) | Refusal::EditWindowPassed(_) => Error::Forbidden(text),
        Refusal::TooManyReactions { .. } => Error::TooLarge(text),
    }
}
