//! Lambda entry point of the `sync` route: wiring only (see `messenger_aws::lambda`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(fn_sync::handle).await
}
