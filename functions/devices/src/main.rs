//! Routes `register_push` and `unregister_push`: this device's offline push registration.
//! Wiring only: the route table (`messenger::routes`) says which actions this function serves
//! and which use case runs each.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(messenger::routes::Function::Devices).await
}
