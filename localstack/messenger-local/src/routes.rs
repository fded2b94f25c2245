//! The embedded gateway's route integration: every route key goes to the function the route
//! table (`messenger::routes`) names, through the same handler the Lambda binaries run.

use messenger::App;
use messenger::routes::Route;
use messenger_lambda::{WsEvent, WsResponse};

/// Invokes the function integrated with `route`, in-process.
pub async fn invoke(app: &App, route: Route, event: WsEvent) -> WsResponse {
    messenger_lambda::handle(app, route.function(), event).await
}
