//! Use case of the `conversations` route: the caller's inbox.

use crate::domain::{ConversationId, Head, Membership, RequestState};
use crate::protocol::{
    ConversationKind, ConversationView, ConversationsFrame, Folder, PreviewView, ServerFrame,
};
use crate::request::Request;
use crate::{App, Error};
use chrono::{DateTime, SecondsFormat, Utc};
use std::cmp::Reverse;

/// One inbox line before it is drawn: the membership, its conversation's head, and when the
/// conversation was last active (its latest chat message or membership change).
struct Line {
    membership: Membership,
    head: Head,
    active_at: DateTime<Utc>,
}

impl Line {
    /// The inbox order: latest activity first, then by id.
    fn key(&self) -> (Reverse<DateTime<Utc>>, &ConversationId) {
        (Reverse(self.active_at), &self.membership.conversation)
    }

    fn cursor(&self) -> String {
        let at = self.active_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        format!("{at}|{}", self.membership.conversation)
    }
}

/// The inbox lines of these memberships (one batched read of their heads), in inbox order.
async fn lines(app: &App, mine: Vec<Membership>) -> Result<Vec<Line>, Error> {
    let ids: Vec<ConversationId> = mine.iter().map(|m| m.conversation.clone()).collect();
    let mut heads = app.stores.messages.heads(&ids).await?;
    let mut lines: Vec<Line> = mine
        .into_iter()
        .map(|membership| {
            let head = heads.remove(&membership.conversation).unwrap_or_default();
            let active_at = head
                .last
                .as_ref()
                .map_or(membership.joined_at, |p| p.sent_at);
            Line {
                membership,
                head,
                active_at,
            }
        })
        .collect();
    lines.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(lines)
}

/// Unread chat messages over all of a user's conversations (the app badge), given all their
/// memberships: one batched read of the heads.
pub(crate) async fn unread_total(app: &App, mine: Vec<Membership>) -> Result<u64, Error> {
    let mine = mine.into_iter().filter(|m| in_folder(m, Folder::Inbox));
    Ok(lines(app, mine.collect())
        .await?
        .iter()
        .map(|l| l.membership.unread(&l.head))
        .sum())
}

/// Whether a membership's conversation is in `folder`: message requests to the caller that are
/// not answered are in `requests`; declined ones in neither; everything else in the inbox.
fn in_folder(m: &Membership, folder: Folder) -> bool {
    match m.request {
        RequestState::Pending => folder == Folder::Requests,
        RequestState::Declined => false,
        RequestState::Accepted | RequestState::Awaiting | RequestState::Refused => {
            folder == Folder::Inbox
        }
    }
}

/// Where a page starts: after the line a `cursor` (or an `after` conversation) names.
fn start(lines: &[Line], frame: &ConversationsFrame) -> Result<usize, Error> {
    if let Some(cursor) = &frame.cursor {
        let bad = || Error::BadRequest(format!("invalid cursor {cursor:?}"));
        let (at, conv) = cursor.split_once('|').ok_or_else(bad)?;
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|_| bad())?
            .to_utc();
        let conv = ConversationId::new(conv).map_err(|_| bad())?;
        let key = (Reverse(at), &conv);
        return Ok(lines.partition_point(|l| l.key() <= key));
    }
    if let Some(after) = &frame.after {
        return lines
            .iter()
            .position(|l| &l.membership.conversation == after)
            .map(|i| i + 1)
            .ok_or_else(|| Error::BadRequest(format!("{after} is not one of your conversations")));
    }
    Ok(0)
}

/// `conversations`: the caller's inbox (1:1 and groups), latest activity first, each with the
/// preview of its latest message or membership change, its unread count and mute state, plus
/// the total unread count — so a new device draws it from one request per page. With
/// `"folder":"requests"`, the message requests waiting for the caller instead; every page says
/// how many there are. The unread total counts the inbox only, in either folder.
///
/// Requests: one query of the caller's memberships, one batched read of the folder's heads (and,
/// for the requests folder, of the inbox's heads for the unread total).
pub async fn conversations(
    app: &App,
    req: &Request,
    frame: ConversationsFrame,
) -> Result<(), Error> {
    let me = &req.caller.user;
    let max = app.limits.conversations_page;
    let limit = frame.limit.unwrap_or(max).clamp(1, max);
    let mine = app.stores.conversations.of_user(me).await?;
    let requests = mine
        .iter()
        .filter(|m| in_folder(m, Folder::Requests))
        .count() as u64;
    let (shown, others): (Vec<_>, Vec<_>) =
        mine.into_iter().partition(|m| in_folder(m, frame.folder));
    let lines = lines(app, shown).await?;
    let unread_total = match frame.folder {
        Folder::Inbox => lines.iter().map(|l| l.membership.unread(&l.head)).sum(),
        Folder::Requests => unread_total(app, others).await?,
    };
    let first = start(&lines, &frame)?;
    let page = &lines[first.min(lines.len())..];
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let cursor = more.then(|| page.last().map(Line::cursor)).flatten();

    let group_ids: Vec<ConversationId> = page
        .iter()
        .map(|l| l.membership.conversation.clone())
        .filter(ConversationId::is_group)
        .collect();
    let groups = if group_ids.is_empty() {
        Default::default()
    } else {
        app.stores.conversations.groups(&group_ids).await?
    };
    let now = app.now();
    let conversations = page
        .iter()
        .map(
            |Line {
                 membership: m,
                 head,
                 ..
             }| {
                let conv = &m.conversation;
                let with = conv
                    .direct_members()
                    .map(|(a, b)| if a == *me { b } else { a });
                let muted = m.muted_at(now);
                ConversationView {
                    conversation: conv.clone(),
                    kind: if conv.is_group() {
                        ConversationKind::Group
                    } else {
                        ConversationKind::Direct
                    },
                    name: groups.get(conv).map(|g| g.name.clone()),
                    with,
                    role: m.role,
                    last_seq: head.last_seq,
                    delivered: m.delivered,
                    read: m.read,
                    unread: m.unread(head),
                    muted,
                    muted_until: m
                        .muted_until
                        .filter(|t| muted && *t < crate::domain::muted_forever()),
                    last: head.last.as_ref().map(PreviewView::from),
                    request: m.request == RequestState::Pending,
                    awaiting: m.request.is_outgoing(),
                }
            },
        )
        .collect();
    req.reply(
        app,
        &ServerFrame::Conversations {
            conversations,
            more,
            cursor,
            unread_total,
            requests,
        },
    )
    .await;
    Ok(())
}
