//! Route `$connect`: registers the authorised connection (the authorizer has already run).
//! Wiring only: the route table (`messenger::routes`) says which actions this function serves
//! and which use case runs each.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(messenger::routes::Function::Connect).await
}
