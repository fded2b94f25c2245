//! Use case of the `unregister_push` route: this device gets no more pushes.

use crate::protocol::ServerFrame;
use crate::request::Request;
use crate::{App, Error};

/// `unregister_push`: the caller's device gets no more pushes.
pub async fn unregister_push(app: &App, req: &Request) -> Result<(), Error> {
    let (user, device) = (&req.caller.user, &req.caller.device);
    if let Some(old) = app.stores.push_devices.remove(user, device).await? {
        app.notifier.unregister(&old.endpoint).await?;
    }
    req.reply(
        app,
        &ServerFrame::PushUnregistered {
            device: device.clone(),
        },
    )
    .await;
    Ok(())
}
