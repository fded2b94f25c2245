//! Lambda entry point of the `$connect` authorizer: wiring only (see `messenger_aws::lambda`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_authorizer(fn_authorizer::handle).await
}
