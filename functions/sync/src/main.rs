//! Routes `sync` and `history`: what a device missed, and older pages of a conversation.
//! Wiring only: the route table (`messenger::routes`) says which actions this function serves
//! and which use case runs each.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_route(messenger::routes::Function::Sync).await
}
