//! Route `send`: store a message, ack the sender, fan out to the members.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, usecases};

/// Handles a `send` frame.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| {
        usecases::send::send(app, req, req.frame()?).await
    })
    .await
}
