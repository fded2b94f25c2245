//! The stream-driven `notify` function: pushes each stored message to its offline members and
//! publishes it to the topic, from the messages table's DynamoDB stream. The sender's ack does
//! not wait for it, and a push is not lost if a `send` invocation dies after its ack: the stream
//! holds the record until this function has handled it (retried on failure).

use messenger::{App, usecases::push};
use messenger_aws::stream::{ItemFailure, StreamEvent, StreamResponse};

/// Handles one batch; records that fail are reported for retry (`ReportBatchItemFailures`).
pub async fn handle(app: &App, bucket_size: u64, event: StreamEvent) -> StreamResponse {
    let mut response = StreamResponse::default();
    for record in &event.records {
        let Some((conv, seq)) = record.inserted_message(bucket_size) else {
            continue;
        };
        if let Err(e) = push::notify_stored(app, &conv, seq).await {
            tracing::error!(error = ?e, conversation = %conv, seq, "notify failed; retried");
            let id = record
                .dynamodb
                .sequence_number
                .clone()
                .unwrap_or_else(|| record.event_id.clone());
            response.batch_item_failures.push(ItemFailure {
                item_identifier: id,
            });
        }
    }
    response
}
