//! Use case of offline push (`functions/notify`, fed by the messages stream; in-line after the
//! fan-out when embedded): push a stored message to the members it reached on no live
//! connection, coalesced per conversation and device, and publish it to the topic.

use crate::domain::{ConversationId, Membership, Message, Seq, UserId};
use crate::ports::NotifyError;
use crate::push::{MessageEvent, Notification, Platform, PushClaim, PushDevice};
use crate::{App, Error};
use std::collections::{BTreeSet, HashMap};

/// Pushes a stored message to the registered devices of the members it reached on no live
/// connection (`offline`) and have not muted the conversation (nor have it as a message
/// request), at most one push per
/// conversation per device until the user acks the pushed message (on any device) or the window
/// passes; APNs pushes carry the recipient's unread total as the badge. Then publishes the
/// message's event to the topic. Both are attempted whatever the other did. An error means
/// something may be worth doing again — a store call failed, a push failed for a passing reason
/// (its claim is released, so a retry pushes it), or the publish failed: the stream-driven
/// function reports the record for retry (push claims keep a retry from pushing twice; topic
/// events are at least once). The `send` invocation, pushing in-line, only logs it.
pub async fn notify(app: &App, message: &Message, offline: &BTreeSet<UserId>) -> Result<(), Error> {
    let recipients: Vec<UserId> = offline
        .iter()
        .filter(|u| **u != message.from)
        .cloned()
        .collect();
    // Membership changes, edits, deletions and reactions are not worth waking a phone for;
    // they arrive with the next sync. Nor is a muted conversation (checked per recipient).
    let pushed = if message.is_chat() && !recipients.is_empty() {
        push_devices(app, message, &recipients).await
    } else {
        Ok(())
    };
    if let Err(e) = &pushed {
        tracing::error!(error = ?e, conversation = %message.conversation, seq = message.seq, "push failed");
    }
    let event = MessageEvent {
        conversation: message.conversation.clone(),
        seq: message.seq,
        from: message.from.clone(),
        sent_at: crate::protocol::format_time(&message.sent_at),
        offline: recipients,
    };
    let published = app.notifier.publish(&event).await;
    if let Err(e) = &published {
        tracing::warn!(error = %e, conversation = %message.conversation, seq = message.seq, "topic publish failed");
    }
    pushed?;
    Ok(published?)
}

/// The stream-driven variant of [`notify`], for a message read back from the log by its seq:
/// the members it reached on no live connection are those without a connection record (the
/// `send` that stored it has already deleted the records PostToConnection found gone). Members
/// are read as the send's fan-out reads them: strongly consistent, from the message's seq on.
pub async fn notify_stored(app: &App, conv: &ConversationId, seq: Seq) -> Result<(), Error> {
    let now = app.now();
    let found = app
        .stores
        .messages
        .after(conv, seq.saturating_sub(1), 1, now)
        .await?;
    let Some(message) = found.into_iter().find(|m| m.seq == seq) else {
        // Expired already, or a record that is not a message: nothing to push.
        return Ok(());
    };
    // The members now who may read it: nobody removed before it was stored, nobody added after.
    let members = super::members_at(app, conv, seq).await?;
    let online: BTreeSet<UserId> = app
        .stores
        .connections
        .of_users(&members, now)
        .await?
        .into_iter()
        .map(|c| c.user)
        .collect();
    let offline = members
        .into_iter()
        .filter(|u| !online.contains(u))
        .collect();
    notify(app, &message, &offline).await
}

/// What the push path knows about one recipient of a message.
struct Recipient {
    /// Their delivered-or-read pointer: pushes coalesced for seqs up to it have lapsed.
    acked: Seq,
    muted: bool,
    /// All their memberships, when they have an APNs device (for the badge).
    all: Option<Vec<Membership>>,
    /// Their unread total, for the APNs badge (counted when an APNs device is to be pushed).
    badge: Option<u64>,
}

/// Reads what the push path needs about `user`: their membership of `conv` (one read), and,
/// when they have an APNs device, all their memberships instead (one query, which holds the
/// same membership) for the badge.
async fn recipient(
    app: &App,
    conv: &ConversationId,
    user: &UserId,
    apns: bool,
) -> Result<Recipient, Error> {
    let now = app.now();
    let (membership, all) = if apns {
        let mine = app.stores.conversations.of_user(user).await?;
        (
            mine.iter().find(|m| &m.conversation == conv).cloned(),
            Some(mine),
        )
    } else {
        (app.stores.conversations.membership(conv, user).await?, None)
    };
    Ok(Recipient {
        acked: membership.as_ref().map_or(0, |m| m.delivered.max(m.read)),
        // A message request (not accepted, or declined) is never pushed, like a muted one.
        muted: membership.is_some_and(|m| m.muted_at(now) || m.request.is_incoming()),
        all,
        badge: None,
    })
}

async fn push_devices(app: &App, message: &Message, recipients: &[UserId]) -> Result<(), Error> {
    let now = app.now();
    let not_before = now - app.limits.push_window;
    let (mut sent, mut coalesced, mut failed, mut muted) = (0, 0, 0, 0);
    let mut passing_failure = None;
    let conv = &message.conversation;
    let devices = app.stores.push_devices.of_users(recipients).await?;
    // A user's delivered pointer lifts the coalescing: once they acked up to the pushed seq
    // (on any device), the next message pushes again. Read per user that has devices, so acks
    // themselves cost no extra write. The same read says whether they muted the conversation.
    let mut known: HashMap<UserId, Recipient> = HashMap::new();
    for device in devices.iter() {
        let apns = |d: &PushDevice| matches!(d.platform, Platform::Apns | Platform::ApnsSandbox);
        if !known.contains_key(&device.user) {
            let has_apns = devices.iter().any(|d| d.user == device.user && apns(d));
            let r = recipient(app, conv, &device.user, has_apns).await?;
            known.insert(device.user.clone(), r);
        }
        let user = known.get_mut(&device.user).expect("just read");
        if user.muted {
            muted += 1;
            continue;
        }
        let claim = PushClaim {
            user: device.user.clone(),
            device: device.device.clone(),
            conversation: conv.clone(),
            seq: message.seq,
            at: now,
            not_before,
            acked: user.acked,
        };
        if !app.stores.push_devices.claim(&claim).await? {
            coalesced += 1;
            continue;
        }
        let text = crate::attachments::preview(&message.body, &message.attachments);
        let mut n = Notification::for_device(device, conv, message.seq, &message.from, &text);
        if apns(device) {
            let badge = match (user.badge, user.all.clone()) {
                (Some(b), _) => b,
                (None, mine) => {
                    let mine = mine.unwrap_or_default();
                    super::conversations::unread_total(app, mine).await?
                }
            };
            user.badge = Some(badge);
            n = n.with_badge(badge);
        }
        match app.notifier.push(device, &n).await {
            Ok(()) => sent += 1,
            Err(NotifyError::Disabled | NotifyError::NotFound) => {
                // The platform says the token is gone: forget the device (and its endpoint).
                failed += 1;
                tracing::info!(user = %device.user, device = %device.device, "push token gone; device unregistered");
                app.stores
                    .push_devices
                    .remove(&device.user, &device.device)
                    .await?;
                app.stores
                    .push_devices
                    .release(&device.user, &device.device, conv)
                    .await?;
                if let Err(e) = app.notifier.unregister(&device.endpoint).await {
                    tracing::warn!(error = %e, "could not delete a disabled endpoint");
                }
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, user = %device.user, device = %device.device, "push failed");
                // Let a retry (or the next message) try again.
                app.stores
                    .push_devices
                    .release(&device.user, &device.device, conv)
                    .await?;
                passing_failure = Some(e);
            }
        }
    }
    tracing::info!(conversation = %message.conversation, seq = message.seq, sent, coalesced, failed, muted, "offline pushes");
    match passing_failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
