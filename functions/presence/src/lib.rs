//! Route `presence`: online status and last-seen of users; doubles as a heartbeat.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, usecases};

/// Handles a `presence` frame.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| {
        usecases::presence::presence(app, req, req.frame()?).await
    })
    .await
}
