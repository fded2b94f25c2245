//! The stream-driven `notify` function: pushes each stored message to its offline members and
//! publishes it to the topic, from the messages table's DynamoDB stream
//! (`messenger_aws::stream::notify`). The sender's ack does not wait for it, and a push is not
//! lost if a `send` invocation dies after its ack: the stream holds the record until this
//! function has handled it (retried on failure). Wiring only.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_stream().await
}
