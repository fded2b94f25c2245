//! Route `ack`: move a delivered/read pointer and send receipts.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, usecases};

/// Handles an `ack` frame.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| {
        usecases::ack::ack(app, req, req.frame()?).await
    })
    .await
}
