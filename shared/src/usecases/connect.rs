//! Use case of the `$connect` route: register the connection the authorizer accepted.

use crate::domain::Connection;
use crate::request::Caller;
use crate::{App, Error};

/// `$connect`: the authorizer has accepted the token; record the connection (and the user as
/// seen) so fan-out finds it. The connection counts as live until a little after API Gateway's
/// 2-hour limit, so one whose `$disconnect` never ran cannot linger.
pub async fn connect(app: &App, caller: &Caller) -> Result<(), Error> {
    let now = app.now();
    let connected_at = caller.connected_at.unwrap_or(now);
    app.stores
        .connections
        .put(&Connection {
            id: caller.connection.clone(),
            user: caller.user.clone(),
            device: caller.device.clone(),
            connected_at,
            expires_at: connected_at + app.limits.connection_ttl,
        })
        .await?;
    tracing::info!(device = %caller.device, "connected");
    Ok(())
}
