//! Lambda entry point of the devices routes: wiring only (see `messenger_aws::lambda`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(fn_devices::handle).await
}
