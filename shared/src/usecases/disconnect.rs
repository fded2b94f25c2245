//! Use case of the `$disconnect` route: forget the connection and record last-seen.

use crate::request::Caller;
use crate::{App, Error};

/// `$disconnect`: best effort (API Gateway may never send it); TTL and 410s clean up the rest.
pub async fn disconnect(app: &App, caller: &Caller) -> Result<(), Error> {
    app.stores
        .connections
        .remove(&caller.user, &caller.connection)
        .await?;
    app.stores.last_seen.touch(&caller.user, app.now()).await?;
    tracing::info!("disconnected");
    Ok(())
}
