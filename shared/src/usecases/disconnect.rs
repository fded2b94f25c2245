//! Use case of the `$disconnect` route: forget the connection and record last-seen.

use crate::request::Caller;
use crate::{App, Error};

/// `$disconnect`: best effort (API Gateway may never send it); TTL and 410s clean up the rest.
pub async fn disconnect(app: &App, caller: &Caller) -> Result<(), Error> {
    app.stores
        .connections
        .disconnect(&caller.user, &caller.connection, app.now())
        .await?;
    tracing::info!("disconnected");
    Ok(())
}
