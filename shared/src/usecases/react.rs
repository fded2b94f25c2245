//! Use case of the `react` route: add or take back a reaction.

use super::amend::amend;
use crate::domain::Change;
use crate::protocol::{ReactFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `react`: one reaction per user, emoji and message; `remove` takes it back. At most
/// [`crate::Limits::max_reaction_emoji`] different emoji and [`crate::Limits::max_reactions`]
/// reactions per message (`too_large` past either). A `reaction_added` / `reaction_removed`
/// entry records it in the log.
pub async fn react(app: &App, req: &Request, frame: ReactFrame) -> Result<(), Error> {
    let change = |_: &_| Change::React {
        emoji: frame.emoji,
        remove: frame.remove,
        max_distinct: app.limits.max_reaction_emoji,
        max_total: app.limits.max_reactions,
    };
    amend(
        app,
        req,
        frame.conversation,
        frame.seq,
        change,
        ServerFrame::Reacted,
    )
    .await
}
