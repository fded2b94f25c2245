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
    let existing = app.stores.push_devices.get(user, device).await?;
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
    if let Some(old) = existing.filter(|d| d.endpoint != endpoint)
        && let Err(e) = app.notifier.unregister(&old.endpoint).await
    {
        tracing::warn!(error = %e, endpoint = old.endpoint, "could not delete replaced endpoint");
    }
    app.stores
        .push_devices
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
