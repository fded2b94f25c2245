//! Adapter layer: DynamoDB Streams records of the messages table, as the stream-driven
//! `notify` function receives them. Only the keys are read (the message itself is read back,
//! consistently), so the event type stays small and independent of the image format.

use crate::dynamo;
use messenger::domain::{ConversationId, Seq};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A batch of stream records (Lambda's DynamoDB Streams event).
#[derive(Debug, Clone, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

/// One change to one item.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    pub dynamodb: Change,
}

/// The item's keys, in DynamoDB JSON (`{"pk": {"S": "…"}, "sk": {"N": "7"}}`).
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    #[serde(rename = "Keys")]
    pub keys: HashMap<String, HashMap<String, String>>,
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: Option<String>,
}

/// Partial-batch response: the records to retry (Lambda's `ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl StreamRecord {
    /// The message this record inserted: `M#<conv>#<seq / bucket_size>` / seq. `None` for every
    /// other item (heads, idempotency keys, group metadata, continuation markers — which sit in
    /// bucket `b` under the first seq of bucket `b + 1` — and for updates and deletes).
    pub fn inserted_message(&self, bucket_size: Seq) -> Option<(ConversationId, Seq)> {
        if self.event_name != "INSERT" {
            return None;
        }
        let pk = self.dynamodb.keys.get(dynamo::PK)?.get("S")?;
        let seq: Seq = self.dynamodb.keys.get(dynamo::SK)?.get("N")?.parse().ok()?;
        dynamo::message_at(pk, seq, bucket_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, pk: &str, sk: &str) -> StreamRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1", "eventName": name,
            "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"N": sk}}, "SequenceNumber": "100"}
        }))
        .unwrap()
    }

    #[test]
    fn only_inserted_messages_are_picked() {
        let conv = ConversationId::new("dm:alice:bob").unwrap();
        let pick = |name, pk, sk| record(name, pk, sk).inserted_message(10);
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
}
