//! Use case of the `typing` route: tell the other members someone is typing. Never stored,
//! never pushed, not in `sync`, and not answered unless refused (an answer would cost an API
//! Gateway message per burst of keystrokes).

use super::{members_of, require_member_and_blocks};
use crate::domain::{ConversationId, RequestState, UserId};
use crate::protocol::{ConversationFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Past this many remembered (user, conversation) pairs, lapsed ones are forgotten.
const REMEMBERED: usize = 10_000;

/// When each (user, conversation) last had a `typing` forwarded, in this process's memory: no
/// DynamoDB write. Each Lambda instance (and each embedded gateway) keeps its own, so with `n`
/// warm instances serving one user, up to `n` typings per interval get through.
#[derive(Debug, Default)]
pub struct TypingThrottle(Mutex<HashMap<(UserId, ConversationId), DateTime<Utc>>>);

impl TypingThrottle {
    fn forwarded_since(&self, key: &(UserId, ConversationId), since: DateTime<Utc>) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).is_some_and(|at| *at > since)
    }

    /// Takes the slot for `key` at `now` unless one was taken after `since`.
    fn claim(
        &self,
        key: (UserId, ConversationId),
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&key).is_some_and(|at| *at > since) {
            return false;
        }
        if map.len() >= REMEMBERED {
            map.retain(|_, at| *at > since);
        }
        map.insert(key, now);
        true
    }
}

/// `typing`: every other member's live connections get `{"type":"typing"}` — at most once per
/// [`crate::Limits::typing_interval`] per user and conversation; the rest are dropped. A
/// non-member gets `forbidden`; success is silent. In a 1:1 where one blocked the other it is
/// dropped silently (the blocked user must not learn the blocker is there).
pub async fn typing(app: &App, req: &Request, frame: ConversationFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = frame.conversation;
    let now = app.now();
    let since = now - app.limits.typing_interval;
    let key = (me.clone(), conv.clone());
    // A throttled member's frame costs no request at all.
    if app.typing.forwarded_since(&key, since) {
        return Ok(());
    }
    let (mine, blocks) = require_member_and_blocks(app, &conv, me).await?;
    // Between users who block each other (a 1:1 only), from the recipient of a request that is
    // not accepted (their activity stays private), and from a sender whose request was
    // declined: dropped, like a throttled one.
    let quiet = mine.request.is_incoming() || mine.request == RequestState::Refused;
    if blocks.any() || quiet || !app.typing.claim(key, now, since) {
        return Ok(());
    }
    let others: Vec<UserId> = members_of(app, &conv)
        .await?
        .into_iter()
        .filter(|u| u != me)
        .collect();
    let frame = ServerFrame::Typing {
        conversation: conv,
        user: me.clone(),
    };
    app.deliver(&others, &frame, None).await?;
    Ok(())
}
