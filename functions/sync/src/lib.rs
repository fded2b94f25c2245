//! Routes `sync` and `history`: what a device missed, and older pages of a conversation.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, Error, usecases::sync};

/// Handles a `sync` or `history` frame (both routes integrate with this function).
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| match req.action() {
        Some("history") => sync::history(app, req, req.frame()?).await,
        Some("sync") => sync::sync(app, req, req.frame()?).await,
        other => Err(Error::UnknownAction(other.unwrap_or_default().to_owned())),
    })
    .await
}
