//! Domain layer: ids, messages, memberships and their validation rules. No I/O here.
//! Changes to stored messages (edit, delete, reactions) are in `amend`; a conversation's head
//! (latest seq, chat count, inbox preview) in `head`.

mod amend;
mod head;

pub use amend::{Amendment, Change, Emoji, Reaction, Refusal};
pub use head::{Head, PREVIEW_CHARS, Preview, first_chars, truncate};

pub use crate::attachments::{Attachment, AttachmentId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Per-conversation sequence number, assigned by the server: 1, 2, 3, … without gaps.
pub type Seq = u64;

/// Longest id we accept for users, devices, conversations and client message ids.
pub const MAX_ID_LEN: usize = 128;

/// Why an id was refused; becomes a `bad_request` for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check_id(kind: &'static str, value: &str, extra: &[char]) -> Result<(), InvalidId> {
    let fail = |reason| {
        Err(InvalidId {
            kind,
            value: value.chars().take(MAX_ID_LEN).collect(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > MAX_ID_LEN {
        return fail("is longer than 128 bytes");
    }
    // Every allowed character is ASCII, so a byte of a multi-byte character never passes.
    let ok = value.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'_' | b'@' | b'|' | b'+' | b'-')
            || extra.contains(&char::from(b))
    });
    if !ok {
        return fail("may only contain ASCII letters, digits and . _ @ | + -");
    }
    Ok(())
}

/// Reads an id from any string a deserializer has (borrowed or not) without copying it
/// into a `String` first.
struct IdVisitor<T>(&'static str, fn(&str) -> Result<T, InvalidId>);

impl<T> serde::de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (a string)", self.0)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }

    /// As `String` takes them: UTF-8 bytes are text.
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
        let text = std::str::from_utf8(v)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(v), &self))?;
        self.visit_str(text)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $extra:expr) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: a clone is a reference count (ids are cloned into every request,
        /// stored message, key and fan-out), and the text is immutable once validated.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidId> {
                let value = value.as_ref();
                check_id($kind, value, $extra)?;
                Ok(Self(value.into()))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor($kind, |v| Self::new(v)))
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A user, as named by the `sub` claim of their token. Never taken from a client frame.
    UserId, "user id", &[]
);
string_id!(
    /// One of a user's devices (the token's optional `device` claim).
    DeviceId, "device id", &[]
);
string_id!(
    /// A conversation: `dm:<a>:<b>` for 1:1 (users sorted), other forms for groups.
    ConversationId, "conversation id", &[':']
);
string_id!(
    /// The client's idempotency key for a message, unique per sender.
    ClientMsgId, "client_msg_id", &[':']
);
string_id!(
    /// An API Gateway connection id (opaque; base64-ish on AWS).
    ConnectionId, "connection id", &['=', '/']
);

impl DeviceId {
    /// The device of a token without a `device` claim.
    pub fn unnamed() -> Self {
        Self(Arc::from("default"))
    }
}

impl ConversationId {
    /// The 1:1 conversation of two users: the same id whoever writes first.
    /// User ids cannot contain `:`, so the id is unambiguous.
    pub fn direct(a: &UserId, b: &UserId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut id = String::with_capacity(4 + lo.0.len() + hi.0.len());
        for part in ["dm:", lo.as_str(), ":", hi.as_str()] {
            id.push_str(part);
        }
        Self(id.into())
    }

    /// The two members of a 1:1 conversation, or `None` for any other kind.
    pub fn direct_members(&self) -> Option<(UserId, UserId)> {
        let rest = self.0.strip_prefix("dm:")?;
        let (a, b) = rest.split_once(':')?;
        // Canonical: both ids valid and in order (then `direct(a, b)` is this very id). The
        // conversation id's characters and length were checked when it was made, and a user
        // id's are those without `:`; so what is left to check is cheap (every send and ack
        // asks this, several times).
        let valid = |u: &str| !u.is_empty() && !u.contains(':');
        (valid(a) && valid(b) && a <= b).then(|| (UserId(a.into()), UserId(b.into())))
    }
}

/// A stored message: one item of a conversation's log. An entry with an `event` is a system
/// entry (a membership change, or an edit, delete or reaction that references a message);
/// the others are chat messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub from: UserId,
    pub client_msg_id: ClientMsgId,
    /// The text; empty on system entries and once the message is deleted.
    pub body: String,
    /// Set on system entries, in log order with the chat.
    pub event: Option<LogEvent>,
    pub sent_at: DateTime<Utc>,
    /// Retention: readers treat the message as gone after this instant.
    pub expires_at: Option<DateTime<Utc>>,
    /// Files sent with it (the bytes are in the object store).
    pub attachments: Vec<Attachment>,
    /// The message this one answers (`send` with `reply_to`).
    pub reply_to: Option<Seq>,
    /// When the body was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted for everyone: the body is gone from storage, so are the reactions.
    pub deleted: bool,
    /// One entry per emoji, in the order they were first used.
    pub reactions: Vec<Reaction>,
    /// The seq of the last log event that changed this message; `None` while it is unchanged.
    pub rev: Option<Seq>,
}

/// How long a `client_msg_id` stands for the request that first used it (docs/protocol.md,
/// "Idempotency"): a retry within 7 days of the original is answered with it; after that, or
/// once the message has expired, the same id makes a new request. Bounded so that idempotency
/// keys do not cost storage for as long as messages are kept.
pub const KEY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);

impl Message {
    /// When this message's idempotency key stops standing for it: [`KEY_WINDOW`] after it was
    /// sent, or when the message expires, whichever comes first.
    pub fn key_expires_at(&self) -> DateTime<Utc> {
        let window = self.sent_at + KEY_WINDOW;
        self.expires_at.map_or(window, |e| e.min(window))
    }

    /// The files this message has and `next` (the same message, changed) no longer has.
    pub fn files_removed_by(&self, next: &Message) -> Vec<Attachment> {
        self.attachments
            .iter()
            .filter(|a| !next.attachments.contains(a))
            .cloned()
            .collect()
    }

    /// A chat message (not a membership change or an amendment).
    pub fn is_chat(&self) -> bool {
        self.event.is_none()
    }

    /// The message an amendment entry (edit, delete, reaction) refers to.
    pub fn amends(&self) -> Option<Seq> {
        self.event.as_ref().and_then(LogEvent::target)
    }
}

/// What a sender asks the log to append; the log assigns the seq.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation: ConversationId,
    pub from: UserId,
    pub client_msg_id: ClientMsgId,
    /// What the `client_msg_id` stands for: the request that made this message. The same key
    /// with another digest is a conflict, never a duplicate.
    pub digest: RequestDigest,
    pub body: String,
    pub event: Option<LogEvent>,
    pub sent_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub attachments: Vec<Attachment>,
    pub reply_to: Option<Seq>,
}

/// The request an idempotency key (`client_msg_id`) belongs to: a digest of its action, its
/// conversation and its content (a message's body, a group change's users or name). The
/// caller is in the key itself. Two requests with the same key and the same digest are the
/// same request (a retry); with different digests, the second is a `conflict`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestDigest(String);

impl RequestDigest {
    /// The digest of `action` on `conversation` with these content parts, in order: the first
    /// 16 bytes of SHA-256 over the length-prefixed parts, as 32 hex digits.
    pub fn of(action: &str, conversation: &ConversationId, content: &[&str]) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [action, conversation.as_str()].iter().chain(content) {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Self(hex(&h.finalize()[..16]))
    }

    /// A digest as stored.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an idempotency key's request was stored: its message, and the request's digest
/// (`None` for keys stored before digests existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentKey {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub digest: Option<RequestDigest>,
}

impl SentKey {
    /// Whether a request with `digest` in `conversation` is the one this key stored. A key from
    /// before digests existed matches any request in its conversation.
    pub fn is_same_request(&self, conversation: &ConversationId, digest: &RequestDigest) -> bool {
        match &self.digest {
            Some(d) => d == digest && self.conversation == *conversation,
            None => self.conversation == *conversation,
        }
    }
}

impl NewMessage {
    /// The message as the log stores it under `seq`.
    pub fn stored_as(self, seq: Seq) -> Message {
        Message {
            conversation: self.conversation,
            seq,
            from: self.from,
            client_msg_id: self.client_msg_id,
            body: self.body,
            event: self.event,
            sent_at: self.sent_at,
            expires_at: self.expires_at,
            attachments: self.attachments,
            reply_to: self.reply_to,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            rev: None,
        }
    }
}

/// A live WebSocket connection of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub user: UserId,
    pub device: DeviceId,
    pub connected_at: DateTime<Utc>,
    /// API Gateway drops every socket after 2 h; the record expires a little later (TTL).
    pub expires_at: DateTime<Utc>,
}

/// Which pointer an `ack` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Delivered,
    Read,
}

/// What a member may do in a group. 1:1 members are plain members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May add and remove others.
    Admin,
    Member,
}

/// A user's membership of a conversation, with their delivery and read pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub conversation: ConversationId,
    pub user: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// The first seq this member may read: the event that added them (1 for 1:1 and founders).
    pub from_seq: Seq,
    pub delivered: Seq,
    pub read: Seq,
    /// How many chat messages the log held at the `read` pointer (or when the member joined):
    /// unread = the head's chat count minus this.
    pub read_chats: u64,
    /// No pushes for this conversation to this user's devices until then
    /// ([`muted_forever`] for good).
    pub muted_until: Option<DateTime<Utc>>,
    /// Where the conversation stands as a message request, for this member.
    pub request: RequestState,
}

/// A membership's standing as a message request (docs/protocol.md, "Message requests"). A 1:1
/// conversation's first message makes it a request: `Pending` for the recipient, `Awaiting` for
/// the sender, until the recipient accepts (`accept`, or a reply); `decline` makes them
/// `Declined` and `Refused`. A group joined through someone who is not a contact is `Pending`
/// until accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// A normal conversation (every membership made before requests existed reads as one).
    #[default]
    Accepted,
    /// A request to this member: in the `requests` folder, no pushes, no receipts or presence
    /// for its sender.
    Pending,
    /// A request this member declined: in no folder, no pushes; the sender may not write.
    Declined,
    /// This member's request to the other, not accepted yet: no receipts, no presence of them.
    Awaiting,
    /// This member's request, declined by the other: sending in it is `forbidden`.
    Refused,
}

impl RequestState {
    /// A request to this member, accepted or not: nothing of theirs (pushes, read state)
    /// reaches the sender.
    pub fn is_incoming(self) -> bool {
        matches!(self, Self::Pending | Self::Declined)
    }

    /// This member's request, not accepted: the other's read state and presence stay hidden.
    pub fn is_outgoing(self) -> bool {
        matches!(self, Self::Awaiting | Self::Refused)
    }
}

/// The `muted_until` of a conversation muted without an end: the last second of year 9999
/// (it still stores as a fixed-width instant).
pub fn muted_forever() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).expect("a valid instant")
}

impl Membership {
    /// Where the pointer of this kind stands.
    pub fn pointer(&self, kind: ReceiptKind) -> Seq {
        match kind {
            ReceiptKind::Delivered => self.delivered,
            ReceiptKind::Read => self.read,
        }
    }

    /// Whether pushes for this conversation are off at `now`.
    pub fn muted_at(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }

    /// Unread chat messages, given the conversation's head.
    pub fn unread(&self, head: &Head) -> u64 {
        head.chats.saturating_sub(self.read_chats)
    }

    /// A fresh membership with both pointers at zero.
    pub fn new(
        conversation: &ConversationId,
        user: &UserId,
        role: Role,
        from_seq: Seq,
        joined_at: DateTime<Utc>,
    ) -> Self {
        Self {
            conversation: conversation.clone(),
            user: user.clone(),
            role,
            joined_at,
            from_seq,
            delivered: 0,
            read: 0,
            read_chats: 0,
            muted_until: None,
            request: RequestState::Accepted,
        }
    }

    /// The same membership with this request standing.
    pub fn with_request(mut self, request: RequestState) -> Self {
        self.request = request;
        self
    }

    /// The same membership with nothing unread before `chats` chat messages (a member added to
    /// a group does not inherit its history as unread).
    pub fn with_read_chats(mut self, chats: u64) -> Self {
        self.read_chats = chats;
        self
    }
}

/// A member as the member list shows them (without their pointers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    pub from_seq: Seq,
}

impl From<&Membership> for Member {
    fn from(m: &Membership) -> Self {
        Self {
            user: m.user.clone(),
            role: m.role,
            joined_at: m.joined_at,
            from_seq: m.from_seq,
        }
    }
}

/// A group's name and origin (1:1 conversations have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub conversation: ConversationId,
    pub name: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// A system entry of a conversation's log: a membership change, or a change to an earlier
/// message (which it references by seq). The acting user is the entry's `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogEvent {
    GroupCreated {
        name: String,
        members: Vec<UserId>,
    },
    MembersAdded {
        users: Vec<UserId>,
    },
    MembersRemoved {
        users: Vec<UserId>,
    },
    /// `promoted`: members made admin because the last admin left.
    MemberLeft {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        promoted: Vec<UserId>,
    },
    GroupRenamed {
        name: String,
    },
    /// Message `seq` got a new body.
    MessageEdited {
        seq: Seq,
    },
    /// Message `seq` was deleted for everyone.
    MessageDeleted {
        seq: Seq,
    },
    ReactionAdded {
        seq: Seq,
        emoji: Emoji,
    },
    ReactionRemoved {
        seq: Seq,
        emoji: Emoji,
    },
}

impl LogEvent {
    /// The message an amendment refers to; `None` for membership changes.
    pub fn target(&self) -> Option<Seq> {
        match self {
            Self::MessageEdited { seq }
            | Self::MessageDeleted { seq }
            | Self::ReactionAdded { seq, .. }
            | Self::ReactionRemoved { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The `type` name on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::GroupCreated { .. } => "group_created",
            Self::MembersAdded { .. } => "members_added",
            Self::MembersRemoved { .. } => "members_removed",
            Self::MemberLeft { .. } => "member_left",
            Self::GroupRenamed { .. } => "group_renamed",
            Self::MessageEdited { .. } => "message_edited",
            Self::MessageDeleted { .. } => "message_deleted",
            Self::ReactionAdded { .. } => "reaction_added",
            Self::ReactionRemoved { .. } => "reaction_removed",
        }
    }
}

/// `bytes` as lowercase hex, two digits a byte (digests, signatures, random ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS provides randomness");
    hex(&buf)
}

impl ConversationId {
    /// A group id. Derived from the creator and their `client_msg_id` when given, so a retried
    /// create lands on the same group; random otherwise.
    pub fn group(creator: &UserId, client_msg_id: Option<&ClientMsgId>) -> Self {
        use sha2::{Digest, Sha256};
        let mut seed = [0u8; 32];
        match client_msg_id {
            Some(c) => seed = Sha256::digest(format!("{creator}\0{c}")).into(),
            None => getrandom::fill(&mut seed).expect("the OS provides randomness"),
        }
        Self(format!("g:{}", hex(&seed[..10])).into())
    }

    /// Whether this is a group (not a 1:1 conversation).
    pub fn is_group(&self) -> bool {
        self.0.starts_with("g:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn direct_id_is_the_same_whoever_starts() {
        let (a, b) = (user("alice"), user("bob"));
        assert_eq!(
            ConversationId::direct(&a, &b),
            ConversationId::direct(&b, &a)
        );
        assert_eq!(ConversationId::direct(&a, &b).as_str(), "dm:alice:bob");
        assert_eq!(
            ConversationId::direct(&b, &a).direct_members(),
            Some((a, b))
        );
    }

    #[test]
    fn ids_read_and_write_as_plain_strings_and_are_checked_when_read() {
        let alice: UserId = serde_json::from_str(r#""alice""#).unwrap();
        assert_eq!((alice.as_str(), alice.clone()), ("alice", user("alice")));
        assert_eq!(serde_json::to_string(&alice).unwrap(), r#""alice""#);
        let escaped: UserId = serde_json::from_str(r#""\u0061lice""#).unwrap();
        assert_eq!(escaped, alice);
        let bad = serde_json::from_str::<UserId>(r#""al ice""#).unwrap_err();
        assert!(bad.to_string().contains("invalid user id"), "{bad}");
        let number = serde_json::from_str::<ConversationId>("7").unwrap_err();
        assert!(
            number.to_string().contains("expected a conversation id"),
            "{number}"
        );
    }

    #[test]
    fn direct_members_rejects_non_canonical_ids() {
        assert_eq!(
            ConversationId::new("dm:bob:alice")
                .unwrap()
                .direct_members(),
            None
        );
        assert_eq!(ConversationId::new("g:123").unwrap().direct_members(), None);
        for bad in ["dm:alice:bob:carol", "dm:alice", "dm::bob", "dm:alice:"] {
            let id = ConversationId::new(bad).unwrap();
            assert_eq!(id.direct_members(), None, "{bad}");
        }
        let (alice, bob) = (user("alice"), user("bob"));
        assert_eq!(
            ConversationId::direct(&bob, &alice).direct_members(),
            Some((alice.clone(), bob))
        );
        assert_eq!(
            ConversationId::direct(&alice, &alice).direct_members(),
            Some((alice.clone(), alice))
        );
    }

    #[test]
    fn hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn group_ids_are_stable_for_a_retried_create_and_random_otherwise() {
        let (alice, c) = (user("alice"), ClientMsgId::new("c-1").unwrap());
        let a = ConversationId::group(&alice, Some(&c));
        assert_eq!(a, ConversationId::group(&alice, Some(&c)));
        assert_ne!(a, ConversationId::group(&user("bob"), Some(&c)));
        assert_ne!(
            ConversationId::group(&alice, None),
            ConversationId::group(&alice, None)
        );
        assert!(a.is_group() && a.direct_members().is_none());
    }

    #[test]
    fn user_ids_cannot_smuggle_separators() {
        assert!(UserId::new("a:b").is_err());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("x".repeat(129)).is_err());
        assert!(UserId::new("auth0|abc-123@x.y").is_ok());
    }
}
