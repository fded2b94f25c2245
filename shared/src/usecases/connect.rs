//! Use cases of the `$connect` and `$disconnect` routes: register and forget a connection.

use crate::apigw::Caller;
use crate::domain::Connection;
use crate::{App, Error};

/// `$connect`: the authorizer has accepted the token; record the connection so fan-out finds
/// it. Its record expires (TTL) a little after API Gateway's 2-hour limit, so a connection whose
/// `$disconnect` never ran cannot linger.
pub async fn connect(app: &App, caller: &Caller) -> Result<(), Error> {
    let now = app.now();
    let connected_at = caller.connected_at.unwrap_or(now);
    app.connections
        .put(&Connection {
            id: caller.connection.clone(),
            user: caller.user.clone(),
            device: caller.device.clone(),
            connected_at,
            expires_at: connected_at + app.limits.connection_ttl,
        })
        .await?;
    app.last_seen.touch(&caller.user, now).await?;
    tracing::info!(device = %caller.device, "connected");
    Ok(())
}

/// `$disconnect`: best effort (API Gateway may never send it); TTL and 410s clean up the rest.
pub async fn disconnect(app: &App, caller: &Caller) -> Result<(), Error> {
    app.connections
        .remove(&caller.user, &caller.connection)
        .await?;
    app.last_seen.touch(&caller.user, app.now()).await?;
    tracing::info!("disconnected");
    Ok(())
}
