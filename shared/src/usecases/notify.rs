//! Use case of offline push (`functions/notify`, fed by the messages stream; in-line after the
//! fan-out when embedded): push a stored message to the members it reached on no live
//! connection, coalesced per conversation and device, and publish it to the topic.

use crate::domain::{ConversationId, Message, Seq, UserId};
use crate::ports::NotifyError;
use crate::push::{MessageEvent, Notification, PushClaim};
use crate::{App, Error};
use std::collections::{BTreeSet, HashMap};

/// Pushes a stored message to the registered devices of the members it reached on no live
/// connection (`offline`), at most one push per conversation per device until the user acks the
/// pushed message (on any device) or the window passes; then publishes the message's event to
/// the topic. Both are attempted whatever the other did. An error means something may be
/// worth doing again — a store call failed, a push failed for a passing reason (its claim is
/// released, so a retry pushes it), or the publish failed: the stream-driven function reports
/// the record for retry (push claims keep a retry from pushing twice; topic events are at least
/// once). The `send` invocation, pushing in-line, only logs it.
pub async fn notify(app: &App, message: &Message, offline: &BTreeSet<UserId>) -> Result<(), Error> {
    let recipients: Vec<UserId> = offline
        .iter()
        .filter(|u| **u != message.from)
        .cloned()
        .collect();
    // Membership events are not worth waking a phone for; they arrive with the next sync.
    let pushed = if message.event.is_none() && !recipients.is_empty() {
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
/// `send` that stored it has already deleted the records PostToConnection found gone).
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
    let members = super::members_of(app, conv).await?;
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

async fn push_devices(app: &App, message: &Message, recipients: &[UserId]) -> Result<(), Error> {
    let now = app.now();
    let not_before = now - app.limits.push_window;
    let (mut sent, mut coalesced, mut failed) = (0, 0, 0);
    let mut passing_failure = None;
    let conv = &message.conversation;
    // A user's delivered pointer lifts the coalescing: once they acked up to the pushed seq
    // (on any device), the next message pushes again. Read per user that has devices, so acks
    // themselves cost no extra write.
    let mut acked: HashMap<UserId, Seq> = HashMap::new();
    for device in app.stores.push_devices.of_users(recipients).await? {
        let pointer = match acked.get(&device.user) {
            Some(p) => *p,
            None => {
                let m = app
                    .stores
                    .conversations
                    .membership(conv, &device.user)
                    .await?;
                let p = m.map_or(0, |m| m.delivered.max(m.read));
                acked.insert(device.user.clone(), p);
                p
            }
        };
        let claim = PushClaim {
            user: device.user.clone(),
            device: device.device.clone(),
            conversation: conv.clone(),
            seq: message.seq,
            at: now,
            not_before,
            acked: pointer,
        };
        if !app.stores.push_devices.claim(&claim).await? {
            coalesced += 1;
            continue;
        }
        let n = Notification::for_device(&device, conv, message.seq, &message.from, &message.body);
        match app.notifier.push(&device, &n).await {
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
    tracing::info!(conversation = %message.conversation, seq = message.seq, sent, coalesced, failed, "offline pushes");
    match passing_failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
