//! Route `$disconnect`: forgets the connection and records last-seen (best effort).

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, usecases};

/// Handles API Gateway's `$disconnect` event.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve_lifecycle(app, event, usecases::connect::disconnect).await
}
