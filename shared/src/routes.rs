//! The route table: every client action, the function that serves it, and the route keys of
//! the API (`$connect`, `$disconnect`, `$default` and one per action).
//!
//! This is the one place an action is named. The use-case dispatch
//! ([`crate::usecases::execute`]) matches on [`Action`] exhaustively, the embedded gateway
//! selects routes from it, and a test reads `infra/template.yaml` and fails unless its route keys
//! and integration targets are exactly this table. Adding an action is: a line here, its use-case
//! file, its template route. A `Mock` route (the heartbeat) has no function: API Gateway answers
//! it without invoking anything.

use crate::ratelimit::Bucket;
use serde::{Deserialize, Serialize};

/// A deployed route function: one `functions/<dir>` crate, one Lambda in the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Connect,
    Disconnect,
    Default,
    Send,
    Ack,
    Sync,
    Presence,
    Groups,
    Devices,
}

impl Function {
    /// Every route function.
    pub const ALL: [Function; 9] = [
        Self::Connect,
        Self::Disconnect,
        Self::Default,
        Self::Send,
        Self::Ack,
        Self::Sync,
        Self::Presence,
        Self::Groups,
        Self::Devices,
    ];

    /// Its folder under `functions/` (the crate is `fn-<dir>`).
    pub fn dir(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
            Self::Default => "default",
            Self::Send => "send",
            Self::Ack => "ack",
            Self::Sync => "sync",
            Self::Presence => "presence",
            Self::Groups => "groups",
            Self::Devices => "devices",
        }
    }

    /// The logical id of its Lambda in `infra/template.yaml` (`SendFunction`, …).
    pub fn template_id(self) -> String {
        let dir = self.dir();
        let mut id = dir[..1].to_ascii_uppercase();
        id.push_str(&dir[1..]);
        id.push_str("Function");
        id
    }
}

/// What a route is integrated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Integration {
    /// A function (an `AWS_PROXY` integration of its Lambda).
    Lambda(Function),
    /// A `MOCK` integration: API Gateway answers the frame itself, without a route response,
    /// so it costs one API Gateway message, no invocation and no reply. It still counts as
    /// activity against the 10-minute idle timeout.
    Mock,
}

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal => $kind:ident $(($function:ident))?,)*) => {
        /// A client action: the `action` of a frame, and the route key that carries it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Action {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Action {
            /// Every action, in the order of the table.
            pub const ALL: &'static [Action] = &[$(Self::$variant,)*];

            /// The action's name on the wire, which is also its route key.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// What serves it.
            pub fn integration(self) -> Integration {
                match self {
                    $(Self::$variant => Integration::$kind $((Function::$function))?,)*
                }
            }
        }
    };
}

actions! {
    /// Store a message and fan it out (`usecases/send.rs`).
    Send = "send" => Lambda(Send),
    /// A signed form to upload a file for a message (`usecases/upload.rs`).
    Upload = "upload" => Lambda(Send),
    /// A new body for one's own message (`usecases/edit.rs`).
    Edit = "edit" => Lambda(Send),
    /// Delete a message for everyone (`usecases/delete.rs`).
    Delete = "delete" => Lambda(Send),
    /// Add or take back a reaction (`usecases/react.rs`).
    React = "react" => Lambda(Send),
    /// Move a delivered/read pointer (`usecases/ack.rs`).
    Ack = "ack" => Lambda(Ack),
    /// Every member's pointers of one conversation (`usecases/receipts.rs`).
    Receipts = "receipts" => Lambda(Ack),
    /// What a device missed (`usecases/sync.rs`).
    Sync = "sync" => Lambda(Sync),
    /// Older pages of one conversation (`usecases/history.rs`).
    History = "history" => Lambda(Sync),
    /// Fresh download URLs for a message's attachments (`usecases/download.rs`).
    Download = "download" => Lambda(Sync),
    /// Who is online (`usecases/presence.rs`).
    Presence = "presence" => Lambda(Presence),
    /// Tell the other members one is typing; never stored (`usecases/typing.rs`).
    Typing = "typing" => Lambda(Presence),
    /// Keeps an idle socket open: answered by API Gateway itself, no function runs.
    Heartbeat = "heartbeat" => Mock,
    /// `usecases/create_group.rs`.
    CreateGroup = "create_group" => Lambda(Groups),
    /// `usecases/add_members.rs`.
    AddMembers = "add_members" => Lambda(Groups),
    /// `usecases/remove_members.rs`.
    RemoveMembers = "remove_members" => Lambda(Groups),
    /// `usecases/leave_group.rs`.
    LeaveGroup = "leave_group" => Lambda(Groups),
    /// `usecases/rename_group.rs`.
    RenameGroup = "rename_group" => Lambda(Groups),
    /// The inbox (`usecases/conversations.rs`).
    Conversations = "conversations" => Lambda(Groups),
    /// No pushes for a conversation for a while (`usecases/mute.rs`).
    Mute = "mute" => Lambda(Groups),
    /// `usecases/unmute.rs`.
    Unmute = "unmute" => Lambda(Groups),
    /// Stop a user from reaching one (`usecases/block.rs`).
    Block = "block" => Lambda(Groups),
    /// `usecases/unblock.rs`.
    Unblock = "unblock" => Lambda(Groups),
    /// Whom one blocked (`usecases/blocked.rs`).
    Blocked = "blocked" => Lambda(Groups),
    /// A message to the operators (`usecases/report.rs`).
    Report = "report" => Lambda(Groups),
    /// Take a message request (`usecases/accept.rs`).
    Accept = "accept" => Lambda(Groups),
    /// Turn a message request down (`usecases/decline.rs`).
    Decline = "decline" => Lambda(Groups),
    /// `usecases/register_push.rs`.
    RegisterPush = "register_push" => Lambda(Devices),
    /// `usecases/unregister_push.rs`.
    UnregisterPush = "unregister_push" => Lambda(Devices),
}

impl Action {
    /// The per-user token bucket a request of this action takes from (`None`: not limited).
    /// `ack` is not limited: pointers only move forward, so acks write at most once per message;
    /// the heartbeat reaches no function (the stage's route throttling bounds it); `typing`
    /// writes nothing and is throttled per user and conversation in the process instead (a
    /// token would cost it a write). Edits, deletions and reactions are log entries: they take
    /// from the `send` bucket.
    pub fn bucket(self) -> Option<Bucket> {
        match self {
            Self::Send | Self::Edit | Self::Delete | Self::React => Some(Bucket::Send),
            Self::Upload => Some(Bucket::Uploads),
            Self::Ack | Self::Heartbeat | Self::Typing => None,
            Self::Receipts
            | Self::Sync
            | Self::History
            | Self::Download
            | Self::Conversations
            | Self::Blocked => Some(Bucket::Reads),
            Self::Presence => Some(Bucket::Presence),
            Self::CreateGroup
            | Self::AddMembers
            | Self::RemoveMembers
            | Self::LeaveGroup
            | Self::RenameGroup
            | Self::Mute
            | Self::Unmute
            | Self::Block
            | Self::Unblock
            | Self::Report
            | Self::Accept
            | Self::Decline => Some(Bucket::Groups),
            Self::RegisterPush | Self::UnregisterPush => Some(Bucket::Push),
        }
    }

    /// The action named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// The function that serves it; `None` for a MOCK route.
    pub fn function(self) -> Option<Function> {
        match self.integration() {
            Integration::Lambda(f) => Some(f),
            Integration::Mock => None,
        }
    }
}

/// A route of the WebSocket API: what API Gateway's route selection picks for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Connect,
    Disconnect,
    /// Frames whose `action` names no route (or that have none).
    Default,
    Action(Action),
}

impl Route {
    /// Every route, lifecycle routes first.
    pub fn all() -> impl Iterator<Item = Route> {
        [Self::Connect, Self::Disconnect, Self::Default]
            .into_iter()
            .chain(Action::ALL.iter().copied().map(Self::Action))
    }

    /// The route key in the API (`$connect`, `send`, …).
    pub fn key(self) -> &'static str {
        match self {
            Self::Connect => "$connect",
            Self::Disconnect => "$disconnect",
            Self::Default => "$default",
            Self::Action(a) => a.name(),
        }
    }

    /// What it is integrated with.
    pub fn integration(self) -> Integration {
        match self {
            Self::Connect => Integration::Lambda(Function::Connect),
            Self::Disconnect => Integration::Lambda(Function::Disconnect),
            Self::Default => Integration::Lambda(Function::Default),
            Self::Action(a) => a.integration(),
        }
    }

    /// The function integrated with it; `None` for a MOCK route.
    pub fn function(self) -> Option<Function> {
        match self.integration() {
            Integration::Lambda(f) => Some(f),
            Integration::Mock => None,
        }
    }

    /// API Gateway's route selection on `$request.body.action`: a text frame whose JSON
    /// `action` names a route goes there; anything else (not JSON, no action, an unknown
    /// action, a binary frame) goes to `$default`.
    pub fn select(text_frame: Option<&str>) -> Self {
        text_frame
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .map_or(Self::Default, |body| Self::of_json(&body))
    }

    /// [`Route::select`] of a text frame already parsed as JSON (`body`): only an object's
    /// string `action` names a route (an array that holds one, `["send"]`, does not).
    pub fn of_json(body: &serde_json::Value) -> Self {
        body.get("action")
            .and_then(serde_json::Value::as_str)
            .and_then(Action::from_name)
            .map_or(Self::Default, Self::Action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names_and_unique() {
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
            assert_eq!(Action::from_name(a.name()), Some(*a));
        }
        let keys: std::collections::BTreeSet<_> = Route::all().map(Route::key).collect();
        assert_eq!(keys.len(), Action::ALL.len() + 3);
    }

    #[test]
    fn route_selection_matches_api_gateway() {
        let select = |t| Route::select(Some(t));
        assert_eq!(select(r#"{"action":"send"}"#), Route::Action(Action::Send));
        assert_eq!(
            select(r#"{"action":"history"}"#).function(),
            Some(Function::Sync)
        );
        assert_eq!(
            select(r#"{"action":"heartbeat"}"#).integration(),
            Integration::Mock
        );
        assert_eq!(select(r#"{"action":"fly"}"#), Route::Default);
        for not_an_object in [r#"["send"]"#, r#""send""#, r#"[{"action":"send"}]"#] {
            assert_eq!(select(not_an_object), Route::Default, "{not_an_object}");
        }
        assert_eq!(select(r#"{"to":"bob"}"#), Route::Default);
        let parsed = serde_json::json!({"action": "send", "to": "bob"});
        assert_eq!(Route::of_json(&parsed), Route::Action(Action::Send));
        assert_eq!(select(r#"{"action":7}"#), Route::Default);
        assert_eq!(select("not json"), Route::Default);
        assert_eq!(Route::select(None), Route::Default);
    }

    #[test]
    fn every_function_serves_a_route() {
        for f in Function::ALL {
            assert!(Route::all().any(|r| r.function() == Some(f)), "{f:?}");
        }
        assert_eq!(Function::Send.template_id(), "SendFunction");
    }
}
