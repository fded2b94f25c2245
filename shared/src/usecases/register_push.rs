//! Use case of the `register_push` route: this device receives pushes while offline.

use crate::ports::NotifyError;
use crate::protocol::{RegisterPushFrame, ServerFrame};
use crate::push::PushDevice;
use crate::request::Request;
use crate::{App, Error};

/// Longest device token we accept (APNs tokens are 64 hex digits, FCM's about 160 characters).
const MAX_TOKEN_LEN: usize = 4096;

/// `register_push`: the caller's device receives pushes while it has no live connection. A new
/// token for the same device updates (and re-enables) its endpoint; another platform replaces it.
///
/// A token belongs to one device at a time. One that another device registered (another
/// user's, when a phone changed hands or someone else signed in on it) is taken from that
/// device first: its registration is removed, so nothing of its user's is pushed to this token
/// any more, before the endpoint becomes this user's.
///
/// A user has at most [`max_devices_per_user`](crate::Limits::max_devices_per_user) devices
/// registered: a new device past that replaces the least recently registered one.
pub async fn register_push(
    app: &App,
    req: &Request,
    frame: RegisterPushFrame,
) -> Result<(), Error> {
    let (user, device) = (&req.caller.user, &req.caller.device);
    let token = frame.token.trim();
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::BadRequest(format!(
            "a device token is 1 to {MAX_TOKEN_LEN} printable ASCII characters"
        )));
    }
    let devices = &app.stores.push_devices;
    let existing = devices.get(user, device).await?;
    let mut taken = None;
    if let Some((holder, holder_device)) = devices.token_holder(frame.platform, token).await?
        && (&holder, &holder_device) != (user, device)
    {
        taken = devices
            .remove_if_token(&holder, &holder_device, token)
            .await?;
        if let Some(t) = &taken {
            tracing::info!(from = %t.user, from_device = %t.device, "push token moved to another device");
        }
    }
    let reuse = existing
        .as_ref()
        .filter(|d| d.platform == frame.platform)
        .map(|d| d.endpoint.as_str());
    let endpoint = match app
        .notifier
        .register(frame.platform, token, user, reuse)
        .await
    {
        Ok(e) => e,
        Err(NotifyError::Disabled) => {
            return Err(Error::BadRequest(
                "the push platform rejected this token".into(),
            ));
        }
        Err(NotifyError::Unsupported(why)) => return Err(Error::BadRequest(why)),
        Err(e) => return Err(e.into()),
    };
    // Endpoints no registration uses any more: this device's old one, and the one of the device
    // the token was taken from (unless it is the endpoint this device now uses).
    for old in existing.iter().chain(&taken) {
        if old.endpoint != endpoint
            && let Err(e) = app.notifier.unregister(&old.endpoint).await
        {
            tracing::warn!(error = %e, endpoint = old.endpoint, "could not delete replaced endpoint");
        }
    }
    if existing.is_none() {
        make_room(app, req).await?;
    }
    devices
        .put(&PushDevice {
            user: user.clone(),
            device: device.clone(),
            platform: frame.platform,
            token: token.to_owned(),
            endpoint,
            preview: frame.preview,
            registered_at: app.now(),
        })
        .await?;
    let reply = ServerFrame::PushRegistered {
        device: device.clone(),
        platform: frame.platform,
        preview: frame.preview,
    };
    req.reply(app, &reply).await;
    Ok(())
}

/// Before a new device is registered: at the limit, the least recently registered devices go
/// (their registrations and endpoints).
async fn make_room(app: &App, req: &Request) -> Result<(), Error> {
    let max = app.limits.max_devices_per_user;
    let user = &req.caller.user;
    let mut mine = app
        .stores
        .push_devices
        .of_users(std::slice::from_ref(user))
        .await?;
    if max == 0 || mine.len() < max {
        return Ok(());
    }
    mine.sort_by(|a, b| (a.registered_at, &a.device).cmp(&(b.registered_at, &b.device)));
    for old in mine.iter().take(mine.len() + 1 - max) {
        app.stores
            .push_devices
            .remove(&old.user, &old.device)
            .await?;
        if let Err(e) = app.notifier.unregister(&old.endpoint).await {
            tracing::warn!(error = %e, endpoint = old.endpoint, "could not delete a replaced device's endpoint");
        }
        tracing::info!(replaced = %old.device, "device limit reached: least recently registered device replaced");
    }
    Ok(())
}
