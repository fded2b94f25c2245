//! Routes `register_push` and `unregister_push`: this device's offline push registration.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, Error, usecases::push};

/// Handles a push registration frame.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| match req.action() {
        Some("register_push") => push::register_push(app, req, req.frame()?).await,
        Some("unregister_push") => push::unregister_push(app, req).await,
        other => Err(Error::UnknownAction(other.unwrap_or_default().to_owned())),
    })
    .await
}
