//! Routes `create_group`, `add_members`, `remove_members`, `leave_group`, `rename_group` and
//! `conversations` (the inbox): one function behind six route keys.

use messenger::apigw::{self, WsEvent, WsResponse};
use messenger::{App, Error, usecases::groups};

/// Handles a group frame or an inbox request.
pub async fn handle(app: &App, event: WsEvent) -> WsResponse {
    apigw::serve(app, event, async |app, req| match req.action() {
        Some("create_group") => groups::create_group(app, req, req.frame()?).await,
        Some("add_members") => groups::add_members(app, req, req.frame()?).await,
        Some("remove_members") => groups::remove_members(app, req, req.frame()?).await,
        Some("leave_group") => groups::leave_group(app, req, req.frame()?).await,
        Some("rename_group") => groups::rename_group(app, req, req.frame()?).await,
        Some("conversations") => groups::conversations(app, req, req.frame()?).await,
        other => Err(Error::UnknownAction(other.unwrap_or_default().to_owned())),
    })
    .await
}
