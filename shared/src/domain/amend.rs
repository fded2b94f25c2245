//! Domain layer: changes to a stored message — edit, delete for everyone, reactions — and the
//! rules they obey. A change is applied to the message's current state atomically with the log
//! entry that records it (see [`crate::ports::MessageLog::amend`]), so both adapters call
//! [`Amendment::apply`] on what they read and write its result under a condition.

use super::{ClientMsgId, ConversationId, LogEvent, Message, Seq, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest emoji in UTF-8 bytes (a kiss with two skin tones is 35; subdivision flags 28).
pub const MAX_EMOJI_BYTES: usize = 64;
/// Most code points in one emoji.
pub const MAX_EMOJI_CHARS: usize = 16;

/// One emoji as a reaction: a single pictograph, optionally with skin tone, variation selector,
/// zero-width joiners (families, professions), regional-indicator pairs (flags), tag sequences
/// (subdivision flags) or a keycap. Text — letters, digits on their own, spaces, control
/// characters — is refused. A shape check, not a list of every emoji Unicode defines, so new
/// emoji work without an update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Emoji(String);

/// Why a reaction was refused; becomes a `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one emoji")]
pub struct InvalidEmoji(pub String);

/// Pictographs: the blocks emoji come from.
fn pictograph(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x21AA | 0x231A..=0x23FF
        | 0x24C2 | 0x25AA..=0x25FE | 0x2600..=0x27BF | 0x2934..=0x2935 | 0x2B05..=0x2B55
        | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x1F000..=0x1FAFF)
}

/// Marks that only modify a preceding character: ZWJ, variation selectors, the keycap mark and
/// tag characters. (Skin tones and regional indicators are in the pictograph block.)
fn modifier(c: char) -> bool {
    matches!(
        c as u32,
        0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F
    )
}

impl Emoji {
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidEmoji> {
        let value = value.into();
        let chars: Vec<char> = value.chars().collect();
        let keycap = chars.contains(&'\u{20E3}');
        let ok = !chars.is_empty()
            && value.len() <= MAX_EMOJI_BYTES
            && chars.len() <= MAX_EMOJI_CHARS
            && !modifier(chars[0])
            && chars.iter().any(|c| pictograph(*c) || keycap)
            && chars.iter().all(|&c| {
                pictograph(c)
                    || modifier(c)
                    || (keycap && (c.is_ascii_digit() || c == '#' || c == '*'))
            });
        if ok {
            Ok(Self(value))
        } else {
            Err(InvalidEmoji(value.chars().take(MAX_EMOJI_CHARS).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Emoji {
    type Error = InvalidEmoji;
    fn try_from(value: String) -> Result<Self, InvalidEmoji> {
        Self::new(value)
    }
}

impl From<Emoji> for String {
    fn from(e: Emoji) -> String {
        e.0
    }
}

impl fmt::Display for Emoji {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who reacted to a message with one emoji, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: Emoji,
    pub users: Vec<UserId>,
}

/// What an amendment does to its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new body, by the author, for messages sent at or after `window_start`.
    Edit {
        body: String,
        window_start: DateTime<Utc>,
    },
    /// Delete for everyone: by the author, or by anyone when `moderator` (a group admin).
    Delete { moderator: bool },
    /// Add (or, with `remove`, take back) the caller's reaction. At most `max_distinct`
    /// different emoji and `max_total` reactions on one message.
    React {
        emoji: Emoji,
        remove: bool,
        max_distinct: usize,
        max_total: usize,
    },
}

/// A change to message `seq` of a conversation by `by`, recorded as a log entry at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amendment {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub by: UserId,
    /// The recording entry's `client_msg_id` (amendments are idempotent by their effect, so
    /// this is a fresh id, not the client's).
    pub client_msg_id: ClientMsgId,
    pub at: DateTime<Utc>,
    /// The recording entry's retention.
    pub expires_at: Option<DateTime<Utc>>,
    pub change: Change,
}

/// Why an amendment cannot be applied to the message as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "seq {0} is not a chat message (membership changes, edits and reactions cannot be changed)"
    )]
    NotAMessage(Seq),
    #[error("message {0} was deleted")]
    Deleted(Seq),
    #[error("message {0} is not yours")]
    NotYours(Seq),
    #[error("message {0} can no longer be edited: the edit window has passed")]
    EditWindowPassed(Seq),
    #[error("message {seq} has the most reactions it may have ({max} {what})")]
    TooManyReactions {
        seq: Seq,
        max: usize,
        what: &'static str,
    },
}

impl Amendment {
    /// The message after this change, and the entry's event; `None` when the message already
    /// is that way (the same body, a reaction already there or already gone, deleted already).
    pub fn apply(&self, m: &Message) -> Result<Option<(Message, LogEvent)>, Refusal> {
        let seq = m.seq;
        if !m.is_chat() {
            return Err(Refusal::NotAMessage(seq));
        }
        let mut next = m.clone();
        let event = match &self.change {
            Change::Delete { moderator } => {
                if m.from != self.by && !moderator {
                    return Err(Refusal::NotYours(seq));
                }
                if m.deleted {
                    return Ok(None);
                }
                next.deleted = true;
                next.body = String::new();
                next.reactions.clear();
                next.attachments.clear();
                LogEvent::MessageDeleted { seq }
            }
            _ if m.deleted => return Err(Refusal::Deleted(seq)),
            Change::Edit { body, window_start } => {
                if m.from != self.by {
                    return Err(Refusal::NotYours(seq));
                }
                if m.sent_at < *window_start {
                    return Err(Refusal::EditWindowPassed(seq));
                }
                if m.body == *body {
                    return Ok(None);
                }
                next.body = body.clone();
                next.edited_at = Some(self.at);
                LogEvent::MessageEdited { seq }
            }
            Change::React {
                emoji,
                remove,
                max_distinct,
                max_total,
            } => {
                let slot = next.reactions.iter().position(|r| r.emoji == *emoji);
                let mine = slot.is_some_and(|i| next.reactions[i].users.contains(&self.by));
                if *remove {
                    let Some(i) = slot.filter(|_| mine) else {
                        return Ok(None);
                    };
                    next.reactions[i].users.retain(|u| *u != self.by);
                    if next.reactions[i].users.is_empty() {
                        next.reactions.remove(i);
                    }
                    LogEvent::ReactionRemoved {
                        seq,
                        emoji: emoji.clone(),
                    }
                } else {
                    if mine {
                        return Ok(None);
                    }
                    let total: usize = next.reactions.iter().map(|r| r.users.len()).sum();
                    let too_many = |max: usize, what| Refusal::TooManyReactions { seq, max, what };
                    if total >= *max_total {
                        return Err(too_many(*max_total, "reactions"));
                    }
                    match slot {
                        Some(i) => next.reactions[i].users.push(self.by.clone()),
                        None if next.reactions.len() >= *max_distinct => {
                            return Err(too_many(*max_distinct, "different emoji"));
                        }
                        None => next.reactions.push(Reaction {
                            emoji: emoji.clone(),
                            users: vec![self.by.clone()],
                        }),
                    }
                    LogEvent::ReactionAdded {
                        seq,
                        emoji: emoji.clone(),
                    }
                }
            }
        };
        Ok(Some((next, event)))
    }

    /// The log entry that records this change under `seq`.
    pub fn entry(&self, event: LogEvent, seq: Seq) -> Message {
        Message {
            conversation: self.conversation.clone(),
            seq,
            from: self.by.clone(),
            client_msg_id: self.client_msg_id.clone(),
            body: String::new(),
            event: Some(event),
            sent_at: self.at,
            expires_at: self.expires_at,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            rev: None,
            attachments: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    fn message(from: &str, sent_at: DateTime<Utc>) -> Message {
        crate::domain::NewMessage {
            conversation: ConversationId::new("dm:alice:bob").unwrap(),
            from: user(from),
            client_msg_id: ClientMsgId::new("c-1").unwrap(),
            body: "hello".into(),
            event: None,
            sent_at,
            expires_at: None,
            reply_to: None,
            attachments: Vec::new(),
            digest: crate::domain::RequestDigest::of(
                "send",
                &ConversationId::new("dm:alice:bob").unwrap(),
                &[],
            ),
        }
        .stored_as(3)
    }

    fn amendment(by: &str, change: Change) -> Amendment {
        Amendment {
            conversation: ConversationId::new("dm:alice:bob").unwrap(),
            seq: 3,
            by: user(by),
            client_msg_id: ClientMsgId::new("sys-1").unwrap(),
            at: Utc::now(),
            expires_at: None,
            change,
        }
    }

    fn react(by: &str, emoji: &str, remove: bool) -> Amendment {
        let change = Change::React {
            emoji: Emoji::new(emoji).unwrap(),
            remove,
            max_distinct: 2,
            max_total: 3,
        };
        amendment(by, change)
    }

    #[test]
    fn emoji_shapes() {
        for ok in [
            "👍",
            "❤️",
            "👍🏽",
            "🇵🇹",
            "👨‍👩‍👧‍👦",
            "1️⃣",
            "#️⃣",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "👩🏻‍❤️‍💋‍👨🏼",
            "☕",
            "©️",
        ] {
            assert!(Emoji::new(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "ok",
            "1",
            " 👍",
            "👍 ",
            "\u{200D}👍",
            "👍\n",
            "<3",
            "1\u{20E3}x",
        ] {
            assert!(Emoji::new(bad).is_err(), "{bad:?}");
        }
        assert!(Emoji::new("👍".repeat(17)).is_err(), "too long");
    }

    #[test]
    fn only_the_author_edits_within_the_window_and_the_same_body_changes_nothing() {
        let now = Utc::now();
        let m = message("alice", now - chrono::Duration::minutes(5));
        let edit = |by, body: &str, minutes| {
            let window_start = now - chrono::Duration::minutes(minutes);
            amendment(
                by,
                Change::Edit {
                    body: body.into(),
                    window_start,
                },
            )
            .apply(&m)
        };
        let (edited, event) = edit("alice", "hello!", 15).unwrap().unwrap();
        assert_eq!(
            (edited.body.as_str(), event),
            ("hello!", LogEvent::MessageEdited { seq: 3 })
        );
        assert!(edited.edited_at.is_some());
        assert_eq!(edit("bob", "x", 15), Err(Refusal::NotYours(3)));
        assert_eq!(edit("alice", "x", 1), Err(Refusal::EditWindowPassed(3)));
        assert_eq!(edit("alice", "hello", 15), Ok(None));
    }

    #[test]
    fn delete_removes_body_and_reactions_once_and_moderators_may_delete_any() {
        let mut m = message("alice", Utc::now());
        m.reactions = vec![Reaction {
            emoji: Emoji::new("👍").unwrap(),
            users: vec![user("bob")],
        }];
        let del = |by, moderator| amendment(by, Change::Delete { moderator });
        assert_eq!(del("bob", false).apply(&m), Err(Refusal::NotYours(3)));
        let (gone, _) = del("carol", true).apply(&m).unwrap().unwrap();
        assert!(gone.deleted && gone.body.is_empty() && gone.reactions.is_empty());
        assert_eq!(del("alice", false).apply(&gone), Ok(None));
        assert_eq!(
            react("bob", "👍", false).apply(&gone),
            Err(Refusal::Deleted(3))
        );
    }

    #[test]
    fn one_reaction_per_user_and_emoji_within_the_bounds() {
        let mut m = message("alice", Utc::now());
        for (by, e) in [("bob", "👍"), ("carol", "👍"), ("bob", "❤️")] {
            m = react(by, e, false).apply(&m).unwrap().unwrap().0;
        }
        assert_eq!(
            m.reactions
                .iter()
                .map(|r| (r.emoji.as_str(), r.users.len()))
                .collect::<Vec<_>>(),
            [("👍", 2), ("❤️", 1)]
        );
        assert_eq!(
            react("bob", "👍", false).apply(&m),
            Ok(None),
            "already there"
        );
        assert!(matches!(
            react("dave", "👍", false).apply(&m),
            Err(Refusal::TooManyReactions { max: 3, .. })
        ));
        let m = react("carol", "👍", true).apply(&m).unwrap().unwrap().0;
        assert!(matches!(
            react("dave", "🎉", false).apply(&m),
            Err(Refusal::TooManyReactions { max: 2, .. })
        ));
        assert_eq!(react("dave", "👍", true).apply(&m), Ok(None), "not there");
        let m = react("bob", "❤️", true).apply(&m).unwrap().unwrap().0;
        assert_eq!(m.reactions.len(), 1, "an emoji nobody uses any more goes");
    }

    #[test]
    fn system_entries_cannot_be_amended() {
        let mut m = message("alice", Utc::now());
        m.event = Some(LogEvent::MessageDeleted { seq: 1 });
        assert_eq!(
            react("bob", "👍", false).apply(&m),
            Err(Refusal::NotAMessage(3))
        );
    }
}
