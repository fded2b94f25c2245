//! Messages as one reader sees them, shared by `sync`, `history` and the live fan-out of
//! replies and amendments: each message in its current state, a reply with the quote of the
//! message it answers, an edit/delete/reaction entry with the message it changed. A reader never
//! sees a message from before they joined: such quotes and targets are left out.

use crate::domain::{ConversationId, Message, Seq, UserId};
use crate::protocol::{MessageView, QuoteView, ServerFrame};
use crate::{App, Delivery, Error};
use std::collections::{BTreeSet, HashMap};

/// The messages `m` refers to: the one it answers, or the one it changes.
fn references(m: &Message) -> impl Iterator<Item = Seq> {
    m.reply_to.into_iter().chain(m.amends())
}

/// The view of `m` with its quote or target drawn from `known`, for a reader who may see seqs
/// from `from_seq` on.
pub(super) fn view(m: &Message, known: &HashMap<Seq, &Message>, from_seq: Seq) -> MessageView {
    let visible = |seq: Seq| known.get(&seq).filter(|_| seq >= from_seq).copied();
    let mut v = MessageView::from(m);
    v.quote = m.reply_to.and_then(visible).map(QuoteView::from);
    v.target = m
        .amends()
        .and_then(visible)
        .map(|t| Box::new(MessageView::from(t)));
    v
}

/// The views of some entries of one conversation (a `sync` or `history` batch) for a reader
/// who may see seqs from `from_seq` on. The quoted and changed messages that are not in the
/// batch are read with one batched read.
pub(super) async fn views(
    app: &App,
    conv: &ConversationId,
    entries: &[Message],
    from_seq: Seq,
) -> Result<Vec<MessageView>, Error> {
    let in_batch: BTreeSet<Seq> = entries.iter().map(|m| m.seq).collect();
    let missing: Vec<Seq> = entries
        .iter()
        .flat_map(references)
        .filter(|s| *s >= from_seq && !in_batch.contains(s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let fetched = if missing.is_empty() {
        Vec::new()
    } else {
        app.stores
            .messages
            .by_seqs(conv, &missing, app.now())
            .await?
    };
    let known: HashMap<Seq, &Message> =
        entries.iter().chain(&fetched).map(|m| (m.seq, m)).collect();
    let mut views: Vec<MessageView> = entries.iter().map(|m| view(m, &known, from_seq)).collect();
    super::attachments::sign(app, &mut views).await?;
    Ok(views)
}

/// Delivers a new entry's `view` to every member except the requesting connection: those who
/// are members now (read strongly consistent, after the entry was stored, so nobody removed
/// before it is among them) and who may read it (a member added at a later event may not).
/// When it refers to message `refers` (a reply, an amendment), members who joined after that
/// message get the view without its quote or target.
pub(super) async fn deliver_entry(
    app: &App,
    conv: &ConversationId,
    view: MessageView,
    refers: Option<Seq>,
    skip: &crate::domain::ConnectionId,
) -> Result<Delivery, Error> {
    let members = super::members_from(app, conv).await?;
    let (seeing, not_seeing): (Vec<_>, Vec<_>) = members
        .into_iter()
        .filter(|(_, from)| *from <= view.seq)
        .partition(|(_, from)| refers.is_none_or(|r| r >= *from));
    let users = |v: Vec<(UserId, Seq)>| v.into_iter().map(|(u, _)| u).collect::<Vec<_>>();
    let mut delivery = app
        .deliver(
            &users(seeing),
            &ServerFrame::Message(view.clone()),
            Some(skip),
        )
        .await?;
    if !not_seeing.is_empty() {
        let redacted = MessageView {
            quote: None,
            target: None,
            ..view
        };
        let more = app
            .deliver(
                &users(not_seeing),
                &ServerFrame::Message(redacted),
                Some(skip),
            )
            .await?;
        delivery.merge(more);
    }
    Ok(delivery)
}
