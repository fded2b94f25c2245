//! Adapter layer: the messages table's DynamoDB stream, as the stream-driven `notify` function
//! receives it (Lambda's event and partial-batch response types from `aws_lambda_events`). Only
//! the keys are read: the message itself is read back consistently by the use case.

use crate::dynamo;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use messenger::domain::{ConversationId, Seq};
use messenger::{App, usecases};
use serde::Deserialize;

pub use aws_lambda_events::dynamodb::Event as StreamEvent;
pub use aws_lambda_events::streams::DynamoDbEventResponse as StreamResponse;

/// The key of every item of the messages table.
#[derive(Deserialize)]
struct Keys {
    pk: String,
    sk: Seq,
}

/// The message a record inserted: `M#<conv>#<seq / bucket_size>` / seq. `None` for every other
/// item (heads, idempotency keys, group metadata, continuation markers — which sit in bucket `b`
/// under the first seq of bucket `b + 1` — and for updates and deletes).
pub fn inserted_message(record: &EventRecord, bucket_size: Seq) -> Option<(ConversationId, Seq)> {
    if record.event_name != "INSERT" {
        return None;
    }
    let keys: Keys = serde_dynamo::from_item(record.change.keys.clone()).ok()?;
    dynamo::message_at(&keys.pk, keys.sk, bucket_size)
}

/// Handles one batch of the `notify` function: pushes each inserted message to its offline
/// members and publishes it. Records that fail are reported for retry
/// (`ReportBatchItemFailures`); the push claims make a retried record push nothing twice.
pub async fn notify(app: &App, bucket_size: Seq, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let Some((conv, seq)) = inserted_message(record, bucket_size) else {
            continue;
        };
        if let Err(e) = usecases::notify::notify_stored(app, &conv, seq).await {
            tracing::error!(error = ?e, conversation = %conv, seq, "notify failed; retried");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(
                record
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or_else(|| record.event_id.clone()),
            );
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, pk: &str, sk: &str) -> EventRecord {
        serde_json::from_value(serde_json::json!({
            "awsRegion": "us-east-1", "eventID": "1", "eventName": name,
            "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"N": sk}}, "SequenceNumber": "100",
                         "SizeBytes": 10}
        }))
        .unwrap()
    }

    #[test]
    fn only_inserted_messages_are_picked() {
        let conv = ConversationId::new("dm:alice:bob").unwrap();
        let pick = |name, pk, sk| inserted_message(&record(name, pk, sk), 10);
        assert_eq!(
            pick("INSERT", "M#dm:alice:bob#0", "7"),
            Some((conv.clone(), 7))
        );
        assert_eq!(pick("INSERT", "M#dm:alice:bob#1", "10"), Some((conv, 10)));
        assert_eq!(
            pick("INSERT", "M#dm:alice:bob#0", "10"),
            None,
            "a continuation marker"
        );
        assert_eq!(pick("MODIFY", "M#dm:alice:bob#0", "7"), None);
        assert_eq!(pick("INSERT", "H#dm:alice:bob", "0"), None);
        assert_eq!(pick("INSERT", "I#alice#c-1", "0"), None);
        assert_eq!(pick("INSERT", "G#g:abc", "0"), None);
    }

    /// The recorded stream batch the `notify` binary is tested with parses into the event type.
    #[test]
    fn the_recorded_stream_event_parses() {
        let raw = include_str!("../../tests/fixtures/dynamodb-stream-event.json");
        let event: Event = serde_json::from_str(raw).unwrap();
        assert!(
            event
                .records
                .iter()
                .any(|r| inserted_message(r, 1000).is_some())
        );
    }
}
