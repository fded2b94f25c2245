//! Use case of the `conversations` route: the caller's inbox.

use crate::domain::ConversationId;
use crate::protocol::{ConversationKind, ConversationView, ConversationsFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `conversations`: the caller's inbox (1:1 and groups) with latest seq and the caller's
/// pointers, so a new device can draw it from one request per page.
pub async fn conversations(
    app: &App,
    req: &Request,
    frame: ConversationsFrame,
) -> Result<(), Error> {
    let max = app.limits.conversations_page;
    let limit = frame.limit.unwrap_or(max).clamp(1, max);
    let mut mine = app.stores.conversations.of_user(&req.caller.user).await?;
    mine.sort_by(|a, b| a.conversation.cmp(&b.conversation));
    mine.retain(|m| {
        frame
            .after
            .as_ref()
            .is_none_or(|after| &m.conversation > after)
    });
    let more = mine.len() > limit;
    mine.truncate(limit);
    let ids: Vec<ConversationId> = mine.iter().map(|m| m.conversation.clone()).collect();
    let heads = app.stores.messages.last_seqs(&ids).await?;
    let group_ids: Vec<ConversationId> = ids.iter().filter(|c| c.is_group()).cloned().collect();
    let groups = if group_ids.is_empty() {
        Default::default()
    } else {
        app.stores.conversations.groups(&group_ids).await?
    };
    let conversations = mine
        .into_iter()
        .map(|m| {
            let with = m
                .conversation
                .direct_members()
                .map(|(a, b)| if a == req.caller.user { b } else { a });
            ConversationView {
                kind: if m.conversation.is_group() {
                    ConversationKind::Group
                } else {
                    ConversationKind::Direct
                },
                name: groups.get(&m.conversation).map(|g| g.name.clone()),
                with,
                role: m.role,
                last_seq: heads.get(&m.conversation).copied().unwrap_or(0),
                delivered: m.delivered,
                read: m.read,
                conversation: m.conversation,
            }
        })
        .collect();
    req.reply(
        app,
        &ServerFrame::Conversations {
            conversations,
            more,
        },
    )
    .await;
    Ok(())
}
