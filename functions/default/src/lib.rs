//! Route `$default`: every frame no other route took gets a typed error, never silence.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, Error};

/// Handles a frame with a missing or unknown `action` (malformed JSON lands here too, since API
/// Gateway cannot select a route for it; [`apigw::serve`] answers that with `bad_request`).
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |_, req| match req.action() {
        Some(action) => Err(Error::UnknownAction(action.to_owned())),
        None => Err(Error::BadRequest(
            "a frame needs an \"action\" string".into(),
        )),
    })
    .await
}
