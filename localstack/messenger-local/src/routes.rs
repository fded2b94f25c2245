//! The embedded gateway's route integration: every route key goes to what the route table
//! (`messenger::routes`) integrates it with — a function, through the same handler the Lambda
//! binaries run, or a MOCK integration that the gateway answers itself, as API Gateway does.

use messenger::App;
use messenger::routes::{Integration, Route};
use messenger_lambda::{Invocation, WsEvent, WsResponse};

/// Invokes what `route` is integrated with, in-process. A MOCK route (the heartbeat) runs
/// nothing and answers 200 with no body, so nothing goes back to the client; the frame still
/// counted as activity for the idle timeout when it arrived.
pub async fn invoke(app: &App, route: Route, event: WsEvent) -> WsResponse {
    match route.integration() {
        Integration::Lambda(function) => messenger_lambda::handle(app, function, event).await,
        Integration::Mock => messenger_lambda::status(200),
    }
}

/// [`invoke`] with the event already decoded: the embedded gateway hands a frame's invocation
/// over in-process (it knows the caller from the connection's `$connect`), and the same
/// [`messenger_lambda::serve`] the Lambda binaries reach through the JSON event serves it.
pub async fn serve(app: &App, route: Route, invocation: Invocation<'_>) -> WsResponse {
    match route.integration() {
        Integration::Lambda(function) => messenger_lambda::serve(app, function, invocation).await,
        Integration::Mock => messenger_lambda::status(200),
    }
}
