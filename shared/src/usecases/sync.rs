//! Use case of the `sync` route: what a device missed, in bounded pages.

use crate::domain::{ConversationId, Seq};
use crate::protocol::{MessageView, ServerFrame, SyncFrame};
use crate::request::Request;
use crate::{App, Error};
use std::collections::BTreeMap;

/// Messages collected for one reply, bounded by count and by serialised size, so a page always
/// fits API Gateway's 128 KB message limit. The first message always fits (bodies and
/// reactions are capped).
pub(super) struct Page {
    pub(super) messages: Vec<MessageView>,
    bytes: usize,
    max_bytes: usize,
    max_count: usize,
}

impl Page {
    pub(super) fn new(app: &App, max_count: usize) -> Self {
        Self {
            messages: Vec::new(),
            bytes: 0,
            max_bytes: app.limits.page_bytes,
            max_count,
        }
    }

    fn room(&self) -> usize {
        self.max_count.saturating_sub(self.messages.len())
    }

    /// Adds the message unless it would overflow the page.
    pub(super) fn push(&mut self, view: MessageView) -> bool {
        let size = serde_json::to_vec(&view).map_or(0, |v| v.len()) + 1;
        if self.room() == 0 || (!self.messages.is_empty() && self.bytes + size > self.max_bytes) {
            return false;
        }
        self.bytes += size;
        self.messages.push(view);
        true
    }
}

/// `sync`: for every conversation of the caller, the messages after the client's cursor
/// (absent = 0), oldest first, conversation by conversation, one bounded page per request, each
/// in its current state (edits, deletions and reactions are also entries of their own, with the
/// message they changed, so a device that already had that message converges). The
/// reply's `since` holds the advanced cursors; the client merges them into its own and asks
/// again while `more`. Cursors of conversations the caller is not in are ignored.
pub async fn sync(app: &App, req: &Request, frame: SyncFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let cursors = app.limits.max_sync_cursors;
    if frame.since.len() > cursors {
        return Err(Error::TooLarge(format!(
            "at most {cursors} cursors in since; this one has {}",
            frame.since.len()
        )));
    }
    let max = app.limits.page_messages;
    let mut page = Page::new(app, frame.limit.unwrap_or(max).clamp(1, max));
    let now = app.now();
    let mut memberships = app.stores.conversations.of_user(me).await?;
    memberships.sort_by(|a, b| a.conversation.cmp(&b.conversation));
    let convs: Vec<ConversationId> = memberships.iter().map(|m| m.conversation.clone()).collect();
    let heads = app.stores.messages.last_seqs(&convs).await?;

    let mut since = BTreeMap::new();
    let mut more = false;
    'convs: for membership in memberships {
        let conv = membership.conversation;
        // A member reads from the event that added them onwards, never before.
        let floor = membership.from_seq.saturating_sub(1);
        let start = frame.since.get(&conv).copied().unwrap_or(0).max(floor);
        let head = heads.get(&conv).copied().unwrap_or(0);
        if head <= start {
            continue;
        }
        let room = page.room();
        if room == 0 {
            more = true;
            break;
        }
        let batch = app.stores.messages.after(&conv, start, room, now).await?;
        let got_all = batch.len() < room;
        let views = super::views::views(app, &conv, &batch, membership.from_seq).await?;
        let mut cursor = start;
        for (m, view) in batch.iter().zip(views) {
            if !page.push(view) {
                more = true;
                record(&mut since, &conv, start, cursor);
                break 'convs;
            }
            cursor = m.seq;
        }
        if got_all {
            // Whatever lies between the last message and the head has expired.
            cursor = cursor.max(head);
        } else if cursor < head {
            more = true;
        }
        record(&mut since, &conv, start, cursor);
        if more {
            break;
        }
    }
    req.reply(
        app,
        &ServerFrame::Sync {
            messages: page.messages,
            more,
            since,
        },
    )
    .await;
    Ok(())
}

fn record(
    since: &mut BTreeMap<ConversationId, Seq>,
    conv: &ConversationId,
    start: Seq,
    cursor: Seq,
) {
    if cursor > start {
        since.insert(conv.clone(), cursor);
    }
}
