//! Domain layer: a conversation's head — its latest seq, how many chat messages it holds (for
//! unread counts) and the preview of its latest activity (for the inbox) — and how each log
//! entry moves it. Both adapters store the head the append writes, so the inbox needs no read
//! of the log.

use super::{Message, Seq, UserId};
use chrono::{DateTime, Utc};

/// Longest preview text, in characters (the inbox and push previews).
pub const PREVIEW_CHARS: usize = 100;

/// The first `max` characters of `text`, with `…` when it was longer.
pub fn truncate(text: &str, max: usize) -> String {
    let kept = first_chars(text, max);
    if kept.len() == text.len() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(kept.len() + '…'.len_utf8());
    out.push_str(kept);
    out.push('…');
    out
}

/// The first `max` characters of `text` (all of it when it has no more).
pub fn first_chars(text: &str, max: usize) -> &str {
    // At most `max` bytes is at most `max` chars: no scan (the common case, on every append).
    if text.len() <= max {
        return text;
    }
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// What the log of one conversation has reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The latest seq (0: nothing yet).
    pub last_seq: Seq,
    /// How many chat messages the log holds (system entries are not counted).
    pub chats: u64,
    /// The latest chat message or membership change.
    pub last: Option<Preview>,
}

/// The inbox line of a conversation: its latest chat message or membership change. Edits,
/// deletions and reactions do not move it, but show on it when they change its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub seq: Seq,
    pub from: UserId,
    pub sent_at: DateTime<Utc>,
    /// The start of the body ([`PREVIEW_CHARS`]); `None` for membership changes and deleted
    /// messages.
    pub text: Option<String>,
    /// The membership change's `type`, for the client to phrase ("alice added dave").
    pub event: Option<String>,
    pub edited: bool,
    pub deleted: bool,
}

impl Preview {
    /// The preview of a chat message or membership change.
    pub fn of(m: &Message) -> Self {
        Self {
            seq: m.seq,
            from: m.from.clone(),
            sent_at: m.sent_at,
            text: (m.is_chat() && !m.deleted).then(|| {
                truncate(
                    &crate::attachments::preview(&m.body, &m.attachments),
                    PREVIEW_CHARS,
                )
            }),
            event: m.event.as_ref().map(|e| e.kind().to_owned()),
            edited: m.edited_at.is_some(),
            deleted: m.deleted,
        }
    }
}

impl Head {
    /// The head once `m` is appended as the next seq.
    pub fn appended(&self, m: &Message) -> Self {
        Self {
            last_seq: m.seq,
            chats: self.chats + u64::from(m.is_chat()),
            last: match &m.event {
                Some(e) if e.target().is_some() => self.last.clone(),
                _ => Some(Preview::of(m)),
            },
        }
    }

    /// The head once `entry` records an amendment that left its message as `target`: the
    /// preview follows the message when it is the one shown (a deleted body leaves the head
    /// too).
    pub fn amended(&self, entry: &Message, target: &Message) -> Self {
        let mut next = self.appended(entry);
        if let Some(last) = &mut next.last
            && last.seq == target.seq
        {
            *last = Preview::of(target);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientMsgId, ConversationId, LogEvent, NewMessage};

    #[test]
    fn truncate_counts_chars_and_marks_a_cut() {
        assert_eq!(truncate("", 3), "");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        // Multi-byte chars are counted as chars and cut on a char boundary.
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "ééé…");
        assert_eq!(truncate("👍👍👍👍", 2), "👍👍…");
        assert_eq!(truncate(&"x".repeat(100), 100), "x".repeat(100));
        assert_eq!(truncate(&"x".repeat(101), 100), "x".repeat(100) + "…");
    }

    fn entry(seq: Seq, body: &str, event: Option<LogEvent>) -> Message {
        NewMessage {
            conversation: ConversationId::new("g:1").unwrap(),
            from: UserId::new("alice").unwrap(),
            client_msg_id: ClientMsgId::new(format!("c-{seq}")).unwrap(),
            body: body.into(),
            event,
            sent_at: Utc::now(),
            expires_at: None,
            reply_to: None,
            attachments: Vec::new(),
            digest: crate::domain::RequestDigest::of(
                "send",
                &ConversationId::new("g:1").unwrap(),
                &[],
            ),
        }
        .stored_as(seq)
    }

    #[test]
    fn chats_count_only_chat_messages_and_amendments_keep_the_preview() {
        let created = LogEvent::GroupCreated {
            name: "g".into(),
            members: vec![],
        };
        let mut head = Head::default().appended(&entry(1, "", Some(created)));
        assert_eq!(
            (head.chats, head.last.as_ref().unwrap().event.as_deref()),
            (0, Some("group_created"))
        );
        head = head.appended(&entry(2, &"x".repeat(150), None));
        let last = head.last.clone().unwrap();
        assert_eq!((head.chats, last.seq), (1, 2));
        assert_eq!(last.text.unwrap().chars().count(), PREVIEW_CHARS + 1);
        let react = entry(
            3,
            "",
            Some(LogEvent::ReactionAdded {
                seq: 2,
                emoji: crate::domain::Emoji::new("👍").unwrap(),
            }),
        );
        let after = head.appended(&react);
        assert_eq!(
            (after.last_seq, after.chats, after.last),
            (3, 1, head.last.clone())
        );

        let mut deleted = entry(2, "", None);
        deleted.deleted = true;
        let gone = head.amended(
            &entry(3, "", Some(LogEvent::MessageDeleted { seq: 2 })),
            &deleted,
        );
        let last = gone.last.unwrap();
        assert!(last.deleted && last.text.is_none());
    }
}
