//! Route `$connect`: registers the authorised connection (the authorizer has already run).

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, usecases};

/// Handles API Gateway's `$connect` event; a non-2xx status refuses the WebSocket handshake.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve_lifecycle(app, event, usecases::connect::connect).await
}
