//! The `$connect` REQUEST authorizer: verifies the JWT in the `token` query parameter and hands
//! the user (and device) to every route of the connection (`messenger_lambda::authorizer`).
//! Wiring only.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_authorizer().await
}
