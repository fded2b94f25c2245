//! Use-case layer: one file per route, named after it (`send` → `send.rs`, `$connect` →
//! `connect.rs`, the stream-driven push → `notify.rs`). Each takes the [`App`], the caller's
//! [`Request`] and its parsed frame, enforces the rules (membership, limits), talks to the ports,
//! and answers through the app. No AWS types here.
//!
//! [`serve_frame`] is the pipeline every frame route runs, whatever carried the frame: parse it,
//! check that its action belongs to the function serving it, run the use case, and turn any
//! error into the client's `error` frame, echoing the request's `id` and `client_msg_id`.

pub mod accept;
pub mod ack;
pub mod add_members;
mod amend;
pub mod attachments;
pub mod block;
pub mod blocked;
pub mod connect;
pub mod conversations;
pub mod create_group;
pub mod decline;
pub mod delete;
pub mod disconnect;
pub mod download;
pub mod edit;
mod groups;
pub mod history;
pub mod leave_group;
pub mod mute;
pub mod notify;
pub mod presence;
pub mod react;
pub mod receipts;
pub mod register_push;
pub mod remove_members;
pub mod rename_group;
pub mod report;
pub mod send;
pub mod sync;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
pub mod typing;
pub mod unblock;
pub mod unmute;
pub mod unregister_push;
pub mod upload;
mod views;

use crate::domain::{ClientMsgId, ConversationId, Membership, Seq, UserId};
use crate::ports::BlockState;
use crate::protocol::ServerFrame;
use crate::ratelimit::{Bucket, Decision};
use crate::request::{Caller, Frame, Request};
use crate::routes::{Action, Function};
use crate::{App, Error};
use tracing::Instrument;

/// Serves one client frame on `function`: parses it, runs the action's use case, and answers
/// any error with an `error` frame. Never fails: every outcome is a frame to the client.
pub async fn serve_frame(
    app: &App,
    function: Function,
    caller: Caller,
    request_id: String,
    frame: Frame<'_>,
) {
    let span = tracing::info_span!(
        "request",
        function = function.dir(),
        connection = %caller.connection,
        user = %caller.user,
        request_id = %request_id,
    );
    async move {
        let (req, client_msg_id, parsed) = Request::parse(caller, request_id, frame);
        let result = match parsed {
            Ok(()) => run(app, function, &req).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if e.is_internal() {
                tracing::error!(error = ?e, "request failed");
            } else {
                tracing::info!(error = %e, "request refused");
            }
            let frame = ServerFrame::Error {
                code: e.code(),
                message: e.client_message(&req.request_id),
                client_msg_id,
                retry_after_ms: e.retry_after_ms(),
            };
            req.reply(app, &frame).await;
        }
    }
    .instrument(span)
    .await
}

/// Runs the use case of the frame's action, if `function` serves it. `$default` (and a function
/// handed an action that is not its own) answers `unknown_action`.
async fn run(app: &App, function: Function, req: &Request) -> Result<(), Error> {
    let Some(name) = req.action() else {
        return Err(Error::BadRequest(
            "a frame needs an \"action\" string".into(),
        ));
    };
    match Action::from_name(name) {
        Some(action) if action.function() == Some(function) => execute(app, req, action).await,
        _ => Err(Error::UnknownAction(name.to_owned())),
    }
}

/// Runs the use case of `action` on the request's frame, once the caller's rate limit allows it
/// ([`Action::bucket`]; `send` and `upload` take their token themselves, after validating the
/// frame).
/// Exhaustive: a new [`Action`] does not compile until it has a use case here.
pub async fn execute(app: &App, req: &Request, action: Action) -> Result<(), Error> {
    let own_token = matches!(action, Action::Send | Action::Upload);
    if let Some(bucket) = action.bucket().filter(|_| !own_token) {
        take_token(app, &req.caller.user, bucket).await?;
    }
    match action {
        Action::Send => send::send(app, req, req.frame()?).await,
        Action::Upload => upload::upload(app, req, req.frame()?).await,
        Action::Edit => edit::edit(app, req, req.frame()?).await,
        Action::Delete => delete::delete(app, req, req.frame()?).await,
        Action::React => react::react(app, req, req.frame()?).await,
        Action::Ack => ack::ack(app, req, req.frame()?).await,
        Action::Sync => sync::sync(app, req, req.frame()?).await,
        Action::History => history::history(app, req, req.frame()?).await,
        Action::Download => download::download(app, req, req.frame()?).await,
        Action::Presence => presence::presence(app, req, req.frame()?).await,
        Action::Typing => typing::typing(app, req, req.frame()?).await,
        Action::Receipts => receipts::receipts(app, req, req.frame()?).await,
        // A MOCK route: API Gateway (and the embedded gateway) answer it without invoking any
        // function, so no function serves it and `run` never gets here with it.
        Action::Heartbeat => Ok(()),
        Action::CreateGroup => create_group::create_group(app, req, req.frame()?).await,
        Action::AddMembers => add_members::add_members(app, req, req.frame()?).await,
        Action::RemoveMembers => remove_members::remove_members(app, req, req.frame()?).await,
        Action::LeaveGroup => leave_group::leave_group(app, req, req.frame()?).await,
        Action::RenameGroup => rename_group::rename_group(app, req, req.frame()?).await,
        Action::Conversations => conversations::conversations(app, req, req.frame()?).await,
        Action::Mute => mute::mute(app, req, req.frame()?).await,
        Action::Unmute => unmute::unmute(app, req, req.frame()?).await,
        Action::Block => block::block(app, req, req.frame()?).await,
        Action::Unblock => unblock::unblock(app, req, req.frame()?).await,
        Action::Blocked => blocked::blocked(app, req, req.frame()?).await,
        Action::Report => report::report(app, req, req.frame()?).await,
        Action::Accept => accept::accept(app, req, req.frame()?).await,
        Action::Decline => decline::decline(app, req, req.frame()?).await,
        Action::RegisterPush => register_push::register_push(app, req, req.frame()?).await,
        Action::UnregisterPush => unregister_push::unregister_push(app, req).await,
    }
}

/// The caller's membership of `conv`, or `forbidden`. Unknown conversations get the same answer
/// as other people's, so ids cannot be probed.
pub(crate) async fn require_member(
    app: &App,
    conv: &ConversationId,
    user: &UserId,
) -> Result<Membership, Error> {
    app.stores
        .conversations
        .membership(conv, user)
        .await?
        .ok_or_else(|| forbidden(conv))
}

/// The answer to anyone who is not a member of `conv` (whether or not it exists).
pub(crate) fn forbidden(conv: &ConversationId) -> Error {
    Error::Forbidden(format!("you are not a member of conversation {conv}"))
}

/// The conversation a `send` or `upload` names: `to` (a user: the 1:1 conversation with them)
/// or `conversation`, exactly one.
pub(crate) fn conversation_of(
    me: &UserId,
    to: Option<UserId>,
    conversation: Option<ConversationId>,
) -> Result<ConversationId, Error> {
    match (to, conversation) {
        (Some(to), None) => Ok(ConversationId::direct(me, &to)),
        (None, Some(conv)) => Ok(conv),
        (Some(_), Some(_)) => Err(Error::BadRequest(
            "give either \"to\" or \"conversation\", not both".into(),
        )),
        (None, None) => Err(Error::BadRequest(
            "missing \"to\" or \"conversation\"".into(),
        )),
    }
}

/// Everyone in a conversation now. A 1:1 conversation names its members in its id: no read
/// needed.
pub(crate) async fn members_of(app: &App, conv: &ConversationId) -> Result<Vec<UserId>, Error> {
    members_at(app, conv, Seq::MAX).await
}

/// The members a message stored as `seq` goes to: those who are members now (read strongly
/// consistent, after the message was stored, so nobody removed before it is among them) and
/// who may read `seq` (a member added after it, at a later event, may not).
pub(crate) async fn members_at(
    app: &App,
    conv: &ConversationId,
    seq: Seq,
) -> Result<Vec<UserId>, Error> {
    let members = members_from(app, conv).await?;
    let may_read = members.into_iter().filter(|(_, from)| *from <= seq);
    Ok(may_read.map(|(user, _)| user).collect())
}

/// Every member of a conversation now, with the first seq they may read. A 1:1 conversation
/// names its two members in its id (no read; they read it all); a group's are read strongly
/// consistent.
pub(crate) async fn members_from(
    app: &App,
    conv: &ConversationId,
) -> Result<Vec<(UserId, Seq)>, Error> {
    match conv.direct_members() {
        Some((a, b)) if a == b => Ok(vec![(a, 1)]),
        Some((a, b)) => Ok(vec![(a, 1), (b, 1)]),
        None => Ok(app
            .stores
            .conversations
            .members(conv)
            .await?
            .into_iter()
            .map(|m| (m.user, m.from_seq))
            .collect()),
    }
}

/// The caller's membership of `conv` (or `forbidden`), and in a 1:1 whether its two members
/// block each other: one batched read of the three items instead of the membership alone.
pub(crate) async fn require_member_and_blocks(
    app: &App,
    conv: &ConversationId,
    me: &UserId,
) -> Result<(Membership, BlockState), Error> {
    let Some(other) = other_member(conv, me) else {
        return Ok((require_member(app, conv, me).await?, BlockState::default()));
    };
    let (membership, blocks) = app
        .stores
        .blocks
        .membership_and_blocks(conv, me, &other)
        .await?;
    Ok((membership.ok_or_else(|| forbidden(conv))?, blocks))
}

/// The other member of a 1:1 conversation `me` belongs to; `None` for a group or a note to self.
pub(crate) fn other_member(conv: &ConversationId, me: &UserId) -> Option<UserId> {
    let (a, b) = conv.direct_members()?;
    match (&a == me, &b == me) {
        (true, false) => Some(b),
        (false, true) => Some(a),
        _ => None,
    }
}

/// The answer to a 1:1 request between users who block each other: U is told only that they
/// cannot message this user (as Messenger tells them), the blocker that they blocked them.
pub(crate) fn blocked_error(state: BlockState) -> Error {
    if state.by_me {
        Error::Forbidden("you blocked this user; unblock them to message them".into())
    } else {
        Error::Forbidden("you can't message this user".into())
    }
}

/// Answers the caller with `frame` and sends it to their other devices too (a change of their
/// own settings: mute, block, a message request's answer), never to anyone else. The other
/// devices are told best effort: a failure is logged, the change stands.
pub(crate) async fn reply_on_every_device(app: &App, req: &Request, frame: &ServerFrame) {
    req.reply(app, frame).await;
    let me = std::slice::from_ref(&req.caller.user);
    if let Err(e) = app.deliver(me, frame, Some(&req.caller.connection)).await {
        tracing::warn!(error = ?e, "could not tell the caller's other devices");
    }
}

/// Takes one token from the caller's `bucket`, or answers `rate_limited` with the wait.
pub(crate) async fn take_token(app: &App, user: &UserId, bucket: Bucket) -> Result<(), Error> {
    let rate = app.limits.rates.of(bucket);
    if rate.is_off() {
        return Ok(());
    }
    match app
        .stores
        .limiter
        .take(user, bucket, rate, app.now())
        .await?
    {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after } => {
            tracing::info!(
                bucket = bucket.name(),
                retry_after_ms = retry_after.num_milliseconds(),
                "rate limited"
            );
            Err(Error::RateLimited(retry_after))
        }
    }
}

/// The answer to a `client_msg_id` reused for another request (another action, conversation
/// or content): nothing was done.
pub(crate) fn conflict(cmid: &ClientMsgId) -> Error {
    Error::Conflict(format!(
        "client_msg_id {cmid} was already used for another request; use a new one for a new request"
    ))
}
