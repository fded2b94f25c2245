//! Use-case layer: one module per route. Each takes the [`App`](crate::App), the caller's
//! request and its parsed frame, enforces the rules (membership, limits), talks to the ports,
//! and answers through the pusher. No AWS types here.

pub mod ack;
pub mod connect;
pub mod groups;
pub mod presence;
pub mod push;
pub mod send;
pub mod sync;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use crate::domain::{ConversationId, Membership, UserId};
use crate::{App, Error};

/// The caller's membership of `conv`, or `forbidden`. Unknown conversations get the same answer
/// as other people's, so ids cannot be probed.
pub(crate) async fn require_member(
    app: &App,
    conv: &ConversationId,
    user: &UserId,
) -> Result<Membership, Error> {
    app.conversations
        .membership(conv, user)
        .await?
        .ok_or_else(|| Error::Forbidden(format!("you are not a member of conversation {conv}")))
}

/// Everyone in a conversation. A 1:1 conversation names its members in its id: no read needed.
pub(crate) async fn members_of(app: &App, conv: &ConversationId) -> Result<Vec<UserId>, Error> {
    match conv.direct_members() {
        Some((a, b)) if a == b => Ok(vec![a]),
        Some((a, b)) => Ok(vec![a, b]),
        None => Ok(app
            .conversations
            .members(conv)
            .await?
            .into_iter()
            .map(|m| m.user)
            .collect()),
    }
}
