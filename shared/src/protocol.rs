//! Protocol layer: the JSON frames of the WebSocket API (documented in docs/protocol.md).
//!
//! Client frames are parsed per route; unknown fields are ignored (so a forged `from` has no
//! effect), wrong types and missing fields are `bad_request`. Server frames are one tagged enum.

use crate::attachments::{Attachment, AttachmentId};
use crate::domain::{
    ClientMsgId, ConversationId, Emoji, LogEvent, Message, PREVIEW_CHARS, Preview, Reaction,
    ReceiptKind, Role, Seq, UserId, truncate,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// Version of the wire protocol described in docs/protocol.md.
pub const PROTOCOL_VERSION: u32 = 1;

/// `send`: exactly one of `to` (a user, for 1:1) or `conversation`.
#[derive(Debug, Clone, Deserialize)]
pub struct SendFrame {
    pub to: Option<UserId>,
    pub conversation: Option<ConversationId>,
    pub client_msg_id: ClientMsgId,
    /// May be empty (or absent) when the message has attachments.
    #[serde(default)]
    pub body: String,
    /// The message this one answers: a chat message of the same conversation.
    pub reply_to: Option<Seq>,
    /// Files uploaded for this message (`upload`), in the order they are shown.
    #[serde(default)]
    pub attachments: Vec<AttachmentId>,
}

/// `upload`: a signed form to upload one file for message `client_msg_id`, to `to` (1:1) or
/// `conversation`.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadFrame {
    pub to: Option<UserId>,
    pub conversation: Option<ConversationId>,
    /// The message the file will be sent in: it can be attached to that message only.
    pub client_msg_id: ClientMsgId,
    pub content_type: String,
    /// Bytes: the form accepts exactly this many.
    pub size: u64,
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

/// `download`: fresh download URLs for the attachments of message `seq`.
#[derive(Debug, Clone, Deserialize)]
pub struct DownloadFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
}

/// `typing`, `unmute`: a frame about one conversation and nothing else.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationFrame {
    pub conversation: ConversationId,
}

/// `edit`: a new body for one of the caller's messages.
#[derive(Debug, Clone, Deserialize)]
pub struct EditFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub body: String,
}

/// `delete`: delete a message for everyone.
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
}

/// `react`: add (or with `remove`, take back) the caller's reaction to a message.
#[derive(Debug, Clone, Deserialize)]
pub struct ReactFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub emoji: Emoji,
    #[serde(default)]
    pub remove: bool,
}

/// `mute`: no pushes for the conversation until `until` (absent or null: until unmuted).
#[derive(Debug, Clone, Deserialize)]
pub struct MuteFrame {
    pub conversation: ConversationId,
    pub until: Option<DateTime<Utc>>,
}

/// `ack`: this user has received (`delivered`) or seen (`read`) everything up to `seq`.
#[derive(Debug, Clone, Deserialize)]
pub struct AckFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub kind: ReceiptKind,
}

/// `sync`: everything after each cursor, for every conversation of the user.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncFrame {
    #[serde(default)]
    pub since: BTreeMap<ConversationId, Seq>,
    pub limit: Option<usize>,
}

/// `history`: older messages of one conversation, newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryFrame {
    pub conversation: ConversationId,
    pub before: Option<Seq>,
    pub limit: Option<usize>,
}

/// `presence`: online status and last-seen of some users.
#[derive(Debug, Clone, Deserialize)]
pub struct PresenceFrame {
    pub users: Vec<UserId>,
}

/// `receipts`: every member's delivered/read pointers in one conversation ("message info").
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiptsFrame {
    pub conversation: ConversationId,
}

/// `create_group`: a group with the caller as admin and `members` as members.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateGroupFrame {
    pub name: String,
    #[serde(default)]
    pub members: Vec<UserId>,
    /// Makes a retried create land on the same group.
    pub client_msg_id: Option<ClientMsgId>,
}

/// `add_members` / `remove_members` (admins only).
#[derive(Debug, Clone, Deserialize)]
pub struct MembersFrame {
    pub conversation: ConversationId,
    pub users: Vec<UserId>,
    /// Makes a retry store no second event.
    pub client_msg_id: Option<ClientMsgId>,
}

/// `leave_group`.
#[derive(Debug, Clone, Deserialize)]
pub struct LeaveGroupFrame {
    pub conversation: ConversationId,
    pub client_msg_id: Option<ClientMsgId>,
}

/// `rename_group` (any member).
#[derive(Debug, Clone, Deserialize)]
pub struct RenameGroupFrame {
    pub conversation: ConversationId,
    pub name: String,
    pub client_msg_id: Option<ClientMsgId>,
}

/// `block`, `unblock`: one user.
#[derive(Debug, Clone, Deserialize)]
pub struct UserFrame {
    pub user: UserId,
}

/// `report`: a message to the operators, with a reason from the documented list.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportFrame {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub reason: crate::moderation::ReportReason,
    /// Free text, at most [`crate::moderation::MAX_DETAILS_BYTES`].
    pub details: Option<String>,
}

/// `blocked`: whom the caller blocked, in user id order, paged.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlockedFrame {
    /// The previous page's `cursor`: continue after it.
    pub cursor: Option<UserId>,
}

/// `conversations`: the caller's inbox, latest activity first, paged.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversationsFrame {
    /// The previous page's `cursor`: continue after its last row.
    pub cursor: Option<String>,
    /// Continue after this conversation (the last row of the previous page), where it now
    /// stands in the order; `cursor` is steadier while conversations move.
    pub after: Option<ConversationId>,
    pub limit: Option<usize>,
    /// Which folder: the inbox (default) or the message requests.
    #[serde(default)]
    pub folder: Folder,
}

/// The folders of the inbox: conversations, and message requests (docs/protocol.md, "Message
/// requests"). Declined requests are in neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Folder {
    #[default]
    Inbox,
    Requests,
}

/// `register_push`: this device (the token's `device` claim) wants pushes while offline.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisterPushFrame {
    pub platform: crate::push::Platform,
    /// The APNs or FCM device token.
    pub token: String,
    /// Show the message text in pushes (off by default: pushes are content-free).
    #[serde(default)]
    pub preview: bool,
}

/// A group member as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user: UserId,
    pub role: Role,
}

/// Whether a conversation is 1:1 or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
}

/// One line of the inbox: enough for a new device to draw it without further requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation: ConversationId,
    pub kind: ConversationKind,
    /// The group's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The other user of a 1:1 conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<UserId>,
    pub role: Role,
    /// The latest seq, and the caller's pointers.
    pub last_seq: Seq,
    pub delivered: Seq,
    pub read: Seq,
    /// Chat messages after the caller's read pointer (membership changes, edits and reactions
    /// are not counted; neither are the caller's own messages, since sending reads).
    pub unread: u64,
    /// No pushes for this conversation now; `muted_until` says until when (absent: until
    /// unmuted).
    pub muted: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_rfc3339_millis"
    )]
    pub muted_until: Option<DateTime<Utc>>,
    /// The latest chat message or membership change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<PreviewView>,
    /// A message request to the caller, not accepted yet (the `requests` folder).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request: bool,
    /// The caller's own message request, not accepted yet: the other's receipts and presence
    /// stay hidden until they accept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting: bool,
}

/// The inbox preview of a conversation's latest activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewView {
    pub seq: Seq,
    pub from: UserId,
    #[serde(serialize_with = "rfc3339_millis")]
    pub sent_at: DateTime<Utc>,
    /// The start of the body (100 characters, then `…`); absent on membership changes and
    /// deleted messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A membership change's `type` (`members_added`, …), for the client to phrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl From<&Preview> for PreviewView {
    fn from(p: &Preview) -> Self {
        Self {
            seq: p.seq,
            from: p.from.clone(),
            sent_at: p.sent_at,
            text: p.text.clone(),
            event: p.event.clone(),
            edited: p.edited,
            deleted: p.deleted,
        }
    }
}

/// A message as clients see it: its current state (latest body, `edited_at`, `deleted`,
/// reactions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub from: UserId,
    /// Empty on system entries; absent once the message is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Present on system entries (membership changes, edits, deletions, reactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<LogEvent>,
    #[serde(serialize_with = "rfc3339_millis")]
    pub sent_at: DateTime<Utc>,
    pub client_msg_id: ClientMsgId,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
    /// What the answered message says now, for drawing the quote; absent when the reader may
    /// not see it (it predates their joining) or it has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<QuoteView>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_rfc3339_millis"
    )]
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The seq of the last entry that changed this message (absent: never changed). Of two
    /// states of one message, the one with the higher `rev` is the newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<Seq>,
    /// On an edit, deletion or reaction entry: the message it changed, as it is now (without
    /// its `quote`); absent when the reader may not see that message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Box<MessageView>>,
    /// Files, each with a download URL minted for this frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentView>,
}

/// An attachment as clients see it: the stored attachment, and a presigned download URL minted
/// when the frame was produced (`usecases::attachments::sign`), valid until `url_expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    #[serde(flatten)]
    pub attachment: Attachment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_rfc3339_millis"
    )]
    pub url_expires_at: Option<DateTime<Utc>>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            conversation: m.conversation.clone(),
            seq: m.seq,
            from: m.from.clone(),
            body: (!m.deleted).then(|| m.body.clone()),
            event: m.event.clone(),
            sent_at: m.sent_at,
            client_msg_id: m.client_msg_id.clone(),
            reply_to: m.reply_to,
            quote: None,
            edited_at: m.edited_at,
            deleted: m.deleted,
            reactions: m.reactions.clone(),
            rev: m.rev,
            target: None,
            attachments: m
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    attachment: a.clone(),
                    url: None,
                    url_expires_at: None,
                })
                .collect(),
        }
    }
}

/// The quoted message of a reply, enough to draw it without another request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    pub from: UserId,
    /// The start of its body (100 characters, then `…`); absent when it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl From<&Message> for QuoteView {
    fn from(m: &Message) -> Self {
        Self {
            from: m.from.clone(),
            text: (!m.deleted).then(|| truncate(&m.body, PREVIEW_CHARS)),
            edited: m.edited_at.is_some(),
            deleted: m.deleted,
        }
    }
}

/// The reply to `edit`, `delete` and `react`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmendedView {
    pub conversation: ConversationId,
    /// The message as it now is.
    pub message: MessageView,
    /// The log entry that records the change (with the message as `target`), as the other
    /// devices get it; absent when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Box<MessageView>>,
    /// The message already was that way: nothing was stored or delivered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

/// One user's status in a `presence` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceView {
    pub user: UserId,
    pub online: bool,
    #[serde(serialize_with = "opt_rfc3339_millis")]
    pub last_seen: Option<DateTime<Utc>>,
}

/// One blocked user in a `blocked` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedView {
    pub user: UserId,
    #[serde(serialize_with = "rfc3339_millis")]
    pub blocked_at: DateTime<Utc>,
}

/// One member's pointers in a `receipts` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointersView {
    pub user: UserId,
    pub delivered: Seq,
    pub read: Seq,
}

/// Error codes of the `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownAction,
    TooLarge,
    Forbidden,
    NotFound,
    /// The `client_msg_id` was already used for another request.
    Conflict,
    RateLimited,
    Internal,
}

/// Why the service closes a connection (the last frame it gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The user connected more devices than they may have connected at once
    /// ([`max_connections_per_user`](crate::Limits::max_connections_per_user)); this was the
    /// oldest. Reconnecting would close another one of theirs.
    TooManyConnections,
}

/// What became of a message request (`request_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestAnswer {
    Accepted,
    Declined,
}

/// Every frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The message is durably stored under `seq`.
    Sent {
        client_msg_id: ClientMsgId,
        conversation: ConversationId,
        seq: Seq,
        #[serde(serialize_with = "rfc3339_millis")]
        sent_at: DateTime<Utc>,
        /// True when this was a retry of an already stored message (nothing new was stored).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// A new message in one of the user's conversations.
    Message(MessageView),
    /// A member's delivered/read pointer moved.
    Receipt {
        conversation: ConversationId,
        seq: Seq,
        kind: ReceiptKind,
        by: UserId,
    },
    /// Reply to `ack`: the pointer now stands at (at least) `seq`.
    Acked {
        conversation: ConversationId,
        seq: Seq,
        kind: ReceiptKind,
    },
    /// Reply to `sync`: send `since` back to get the next page while `more`.
    Sync {
        messages: Vec<MessageView>,
        more: bool,
        since: BTreeMap<ConversationId, Seq>,
    },
    /// Reply to `history`: newest first.
    History {
        conversation: ConversationId,
        messages: Vec<MessageView>,
        more: bool,
    },
    Presence {
        users: Vec<PresenceView>,
    },
    /// Reply to `receipts`: every member's pointers, and what every member other than the
    /// caller has reached (the lowest of their pointers: "delivered to all", "read by all").
    Receipts {
        conversation: ConversationId,
        members: Vec<PointersView>,
        delivered: Seq,
        read: Seq,
    },
    /// Reply to a group change: the group as it now is, and the seq of the change's event.
    Group {
        conversation: ConversationId,
        name: String,
        members: Vec<MemberView>,
        seq: Seq,
    },
    /// Reply to `leave_group`.
    Left {
        conversation: ConversationId,
        seq: Seq,
    },
    /// Reply to `register_push`.
    PushRegistered {
        device: crate::domain::DeviceId,
        platform: crate::push::Platform,
        preview: bool,
    },
    /// Reply to `unregister_push`.
    PushUnregistered {
        device: crate::domain::DeviceId,
    },
    /// Reply to `conversations`: ask again with `cursor` while `more`.
    Conversations {
        conversations: Vec<ConversationView>,
        more: bool,
        /// Where the next page starts (present while `more`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// Unread chat messages over all the caller's conversations (the app badge), requests
        /// not counted.
        unread_total: u64,
        /// Message requests waiting for the caller (the `requests` folder's size).
        requests: u64,
    },
    /// Another member is typing in a conversation (never stored; show it for a few seconds).
    Typing {
        conversation: ConversationId,
        user: UserId,
    },
    /// Reply to `edit`.
    Edited(AmendedView),
    /// Reply to `delete`.
    Deleted(AmendedView),
    /// Reply to `react`.
    Reacted(AmendedView),
    /// Reply to `mute` and `unmute`, also sent to the caller's other devices.
    Muted {
        conversation: ConversationId,
        muted: bool,
        /// When the mute ends (absent: until unmuted, or not muted).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            serialize_with = "opt_rfc3339_millis"
        )]
        until: Option<DateTime<Utc>>,
    },
    /// Reply to `upload`: POST the file to `url` as `multipart/form-data`, every field of
    /// `fields` first and the file last (field `file`), before `expires_at`; then `send` with
    /// `attachments: [attachment]`.
    Upload {
        conversation: ConversationId,
        attachment: AttachmentId,
        url: String,
        fields: BTreeMap<String, String>,
        #[serde(serialize_with = "rfc3339_millis")]
        expires_at: DateTime<Utc>,
    },
    /// Reply to `download`: the message's attachments with fresh URLs.
    Download {
        conversation: ConversationId,
        seq: Seq,
        attachments: Vec<AttachmentView>,
    },
    /// The service is about to close this connection, and why: don't reconnect on your own.
    Closed {
        reason: CloseReason,
    },
    /// Reply to `block` and `unblock`, also sent to the caller's other devices; never to the
    /// user blocked.
    BlockState {
        user: UserId,
        blocked: bool,
    },
    /// Reply to `accept` and `decline`, also sent to the caller's other devices; never to the
    /// request's sender.
    RequestState {
        conversation: ConversationId,
        state: RequestAnswer,
    },
    /// Reply to `report`: stored under `report` and sent to the operators.
    Reported {
        report: crate::moderation::ReportId,
        conversation: ConversationId,
        seq: Seq,
        /// The same reporter reported this message earlier the same day: that report stands.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// Reply to `blocked`: ask again with `cursor` while `more`.
    Blocked {
        users: Vec<BlockedView>,
        more: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<UserId>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// Echo of the failed frame's `client_msg_id`, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        /// `rate_limited`: wait this long before retrying.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// A server frame with the request id it answers (absent for pushes).
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a serde_json::Value>,
    #[serde(flatten)]
    pub frame: &'a ServerFrame,
}

impl ServerFrame {
    /// The frame as JSON text, echoing `id` when given.
    pub fn to_json(&self, id: Option<&serde_json::Value>) -> String {
        serde_json::to_string(&Envelope { id, frame: self })
            .expect("server frames always serialise")
    }
}

/// Timestamps on the wire: RFC 3339, UTC, milliseconds (`2026-12-02T00:26:08.123Z`).
pub fn format_time(t: &DateTime<Utc>) -> String {
    match WireTime::of(t) {
        Some(w) => w.as_str().to_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// A timestamp as [`format_time`] writes it, on the stack: most server frames have one or two
/// (and every message's push step another), so they skip the formatting machinery (and its
/// `String`) that `to_rfc3339_opts` goes through. Years 0–9999 only (what the fixed-width form
/// can say); others take `to_rfc3339_opts`.
struct WireTime([u8; 24]);

impl WireTime {
    fn of(t: &DateTime<Utc>) -> Option<Self> {
        use chrono::{Datelike, Timelike};
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        // A leap second shows as second 60, as chrono writes it.
        let millis = t.nanosecond() / 1_000_000;
        let (second, millis) = match millis >= 1000 {
            true => (t.second() + 1, millis - 1000),
            false => (t.second(), millis),
        };
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, second);
        put(20, 3, millis);
        Some(Self(b))
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits and separators")
    }
}

fn rfc3339_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match WireTime::of(t) {
        Some(w) => s.serialize_str(w.as_str()),
        None => s.serialize_str(&format_time(t)),
    }
}

fn opt_rfc3339_millis<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339_millis(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_times_are_what_chrono_writes() {
        use chrono::TimeZone;
        let cases = [
            Utc.timestamp_millis_opt(0).unwrap(),
            Utc.timestamp_millis_opt(1_796_169_968_123).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            // Sub-millisecond digits are cut, not rounded; a leap second shows as :60.
            Utc.timestamp_opt(1_796_169_968, 999_999_999).unwrap(),
            Utc.timestamp_opt(1_796_169_599, 1_500_000_000).unwrap(),
        ];
        for t in cases {
            assert_eq!(
                format_time(&t),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        assert_eq!(format_time(&cases[1]), "2026-12-02T00:06:08.123Z");
    }

    #[test]
    fn frames_serialise_with_type_tag_and_echoed_id() {
        let f = ServerFrame::Error {
            code: ErrorCode::TooLarge,
            message: "x".into(),
            client_msg_id: None,
            retry_after_ms: None,
        };
        let v: serde_json::Value = serde_json::from_str(&f.to_json(Some(&json!("r1")))).unwrap();
        assert_eq!(
            v,
            json!({"id":"r1","type":"error","code":"too_large","message":"x"})
        );
    }

    #[test]
    fn send_frame_ignores_a_forged_from() {
        let f: SendFrame = serde_json::from_value(
            json!({"action":"send","to":"bob","client_msg_id":"c1","body":"hi","from":"mallory"}),
        )
        .unwrap();
        assert_eq!(f.to.unwrap().as_str(), "bob");
    }

    #[test]
    fn sync_cursors_are_keyed_by_conversation() {
        let f: SyncFrame = serde_json::from_value(json!({"since":{"dm:a:b":3}})).unwrap();
        assert_eq!(f.since.values().copied().collect::<Vec<_>>(), vec![3]);
        assert!(serde_json::from_value::<SyncFrame>(json!({"since":{"dm:a:b":-1}})).is_err());
    }
}
