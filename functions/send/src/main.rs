//! Route `send`: store a message, ack the sender, fan out to the members.
//! Wiring only: the route table (`messenger::routes`) says which actions this function serves
//! and which use case runs each.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(messenger::routes::Function::Send).await
}
