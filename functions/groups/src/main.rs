//! Lambda entry point of the groups routes: wiring only (see `messenger_aws::lambda`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(fn_groups::handle).await
}
