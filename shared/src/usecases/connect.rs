//! Use case of the `$connect` route: register the connection the authorizer accepted.

use crate::domain::Connection;
use crate::ports::PostError;
use crate::protocol::{CloseReason, ServerFrame};
use crate::request::Caller;
use crate::{App, Error};

/// `$connect`: the authorizer has accepted the token; record the connection (and the user as
/// seen) so fan-out finds it. The connection counts as live until a little after API Gateway's
/// 2-hour limit, so one whose `$disconnect` never ran cannot linger.
///
/// A user has at most [`max_connections_per_user`](crate::Limits::max_connections_per_user)
/// live connections: a new one past that closes the user's oldest (a `closed` frame, then
/// DeleteConnection), so signing in on a new device always works and a socket that died without
/// `$disconnect` never locks its user out.
pub async fn connect(app: &App, caller: &Caller) -> Result<(), Error> {
    let now = app.now();
    let connected_at = caller.connected_at.unwrap_or(now);
    let evicted = app
        .stores
        .connections
        .put(
            &Connection {
                id: caller.connection.clone(),
                user: caller.user.clone(),
                device: caller.device.clone(),
                connected_at,
                expires_at: connected_at + app.limits.connection_ttl,
            },
            app.limits.max_connections_per_user,
        )
        .await?;
    let closed = ServerFrame::Closed {
        reason: CloseReason::TooManyConnections,
    }
    .to_json(None);
    for old in &evicted {
        // Told first, so a client knows not to reconnect (which would close another of its
        // user's connections). Best effort: the close below is what counts.
        if let Err(e) = app.poster.post(&old.id, &closed).await {
            tracing::debug!(connection = %old.id, error = %e, "could not tell the oldest connection why it closes");
        }
        match app.poster.close(&old.id).await {
            Ok(()) | Err(PostError::Gone) => {
                tracing::info!(closed = %old.id, device = %old.device, "oldest connection closed: too many connections")
            }
            // Its record is gone already: it gets no more frames, and closes at its idle or
            // 2-hour limit at the latest.
            Err(e) => {
                tracing::warn!(connection = %old.id, error = %e, "could not close the oldest connection")
            }
        }
    }
    tracing::info!(device = %caller.device, "connected");
    Ok(())
}
