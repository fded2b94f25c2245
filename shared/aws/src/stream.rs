//! Adapter layer: the messages table's DynamoDB stream, as the stream-driven `notify` function
//! receives it (Lambda's event and partial-batch response types from `aws_lambda_events`). Only
//! the keys are read: the message itself is read back consistently by the use case.

use crate::dynamo;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use messenger::domain::{ConversationId, Seq};
use messenger::{App, usecases};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;

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

/// Records of one batch handled at once: a batch of 100 takes a few round trips' time, not a
/// hundred (each record is a few DynamoDB reads and SNS calls).
pub const RECORD_CONCURRENCY: usize = 16;

/// Records still running this long before the invocation's deadline are given up and reported
/// for retry, so the invocation answers instead of timing out (a timeout retries the whole
/// batch, and would count against the mapping's retries).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Handles one batch of the `notify` function: pushes each inserted message to its offline
/// members and publishes it, [`RECORD_CONCURRENCY`] records at a time, until `deadline` (less
/// [`DEADLINE_MARGIN`]). Records that fail or do not finish in time are reported for retry
/// (`ReportBatchItemFailures`: Lambda retries from the earliest one, up to the mapping's retry
/// limit, then sends the batch's position to the on-failure queue). Push claims make a retried
/// record push nothing twice; topic events are at least once.
pub async fn notify(
    app: &App,
    bucket_size: Seq,
    event: Event,
    deadline: Option<Instant>,
) -> DynamoDbEventResponse {
    let give_up_at = deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d));
    let mut pending = event
        .records
        .iter()
        .filter_map(|r| inserted_message(r, bucket_size).map(|at| (r, at)));
    let mut in_flight = FuturesUnordered::new();
    let mut failed = Vec::new();
    loop {
        while in_flight.len() < RECORD_CONCURRENCY {
            let Some((record, (conv, seq))) = pending.next() else {
                break;
            };
            in_flight.push(async move {
                let work = usecases::notify::notify_stored(app, &conv, seq);
                let outcome = match give_up_at {
                    Some(at) => match tokio::time::timeout_at(at, work).await {
                        Ok(r) => r.map_err(|e| format!("{e:?}")),
                        Err(_) => Err("not finished before the invocation's deadline".into()),
                    },
                    None => work.await.map_err(|e| format!("{e:?}")),
                };
                (record, conv, seq, outcome)
            });
        }
        let Some((record, conv, seq, outcome)) = in_flight.next().await else {
            break;
        };
        if let Err(error) = outcome {
            tracing::error!(%error, conversation = %conv, seq, "notify failed; retried");
            failed.push(record);
        }
    }
    let mut response = DynamoDbEventResponse::default();
    for record in failed {
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

    mod batches {
        use super::*;
        use async_trait::async_trait;
        use messenger::domain::{ClientMsgId, ConnectionId, NewMessage, UserId};
        use messenger::ports::{Notifier, NotifyError, PostError, Poster};
        use messenger::push::{MessageEvent, Notification, Platform, PushDevice};
        use messenger::{App, Limits};
        use std::sync::{Arc, Mutex};
        use tokio::sync::Barrier;

        struct NoSockets;
        #[async_trait]
        impl Poster for NoSockets {
            async fn post(&self, _: &ConnectionId, _: &str) -> Result<(), PostError> {
                Err(PostError::Gone)
            }
            async fn close(&self, _: &ConnectionId) -> Result<(), PostError> {
                Err(PostError::Gone)
            }
        }

        /// Publishes topic events; the first `together` of them wait for one another (so they
        /// only get through if that many are handled at once), `failing` seqs fail and
        /// `hanging` ones never answer.
        struct Topic {
            together: Barrier,
            together_seqs: u64,
            failing: Vec<u64>,
            hanging: Vec<u64>,
            published: Mutex<Vec<u64>>,
        }

        #[async_trait]
        impl Notifier for Topic {
            async fn register(
                &self,
                _: Platform,
                _: &str,
                _: &UserId,
                _: Option<&str>,
            ) -> Result<String, NotifyError> {
                unreachable!()
            }
            async fn unregister(&self, _: &str) -> Result<(), NotifyError> {
                Ok(())
            }
            async fn push(&self, _: &PushDevice, _: &Notification) -> Result<(), NotifyError> {
                Ok(())
            }
            async fn publish(&self, e: &MessageEvent) -> Result<(), NotifyError> {
                if e.seq <= self.together_seqs {
                    self.together.wait().await;
                }
                if self.hanging.contains(&e.seq) {
                    std::future::pending::<()>().await;
                }
                if self.failing.contains(&e.seq) {
                    return Err(NotifyError::Failed("SNS throttled".into()));
                }
                self.published.lock().unwrap().push(e.seq);
                Ok(())
            }
            async fn report(&self, _: &messenger::moderation::Report) -> Result<(), NotifyError> {
                unreachable!("the stream publishes no reports")
            }
        }

        /// An app whose log holds `n` messages of `dm:alice:bob`, and a stream batch inserting
        /// them (sequence number = seq).
        async fn stored(n: u64, topic: Arc<Topic>) -> (App, Event) {
            let app = App::in_memory(Arc::new(NoSockets), Limits::default()).with_notifier(topic);
            let conv = ConversationId::new("dm:alice:bob").unwrap();
            let mut records = Vec::new();
            for seq in 1..=n {
                let m = NewMessage {
                    conversation: conv.clone(),
                    from: UserId::new("alice").unwrap(),
                    client_msg_id: ClientMsgId::new(format!("c-{seq}")).unwrap(),
                    digest: messenger::domain::RequestDigest::of("send", &conv, &["hi"]),
                    body: "hi".into(),
                    event: None,
                    sent_at: chrono::Utc::now(),
                    expires_at: None,
                    reply_to: None,
                    attachments: Vec::new(),
                };
                app.stores.messages.append(m).await.unwrap();
                let mut r = record("INSERT", "M#dm:alice:bob#0", &seq.to_string());
                r.change.sequence_number = Some(seq.to_string());
                records.push(r);
            }
            let mut event = Event::default();
            event.records = records;
            (app, event)
        }

        fn failed_seqs(r: &DynamoDbEventResponse) -> Vec<String> {
            let mut ids: Vec<String> = r
                .batch_item_failures
                .iter()
                .filter_map(|f| f.item_identifier.clone())
                .collect();
            ids.sort();
            ids
        }

        #[tokio::test]
        async fn records_are_handled_together_and_each_failed_one_is_reported() {
            // GIVEN 20 stored messages whose first 16 topic events only get through together,
            // and whose 3rd and 18th fail
            let topic = Arc::new(Topic {
                together: Barrier::new(RECORD_CONCURRENCY),
                together_seqs: RECORD_CONCURRENCY as u64,
                failing: vec![3, 18],
                hanging: vec![],
                published: Mutex::default(),
            });
            let (app, event) = stored(20, topic.clone()).await;
            // WHEN the batch is handled (a one-at-a-time handler would never finish)
            let handled = notify(&app, 1000, event, None);
            let r = tokio::time::timeout(Duration::from_secs(20), handled)
                .await
                .expect("16 records handled at once");
            // THEN exactly the failed records are reported for retry, the others published
            assert_eq!(failed_seqs(&r), ["18", "3"]);
            assert_eq!(topic.published.lock().unwrap().len(), 18);
        }

        #[tokio::test]
        async fn a_record_unfinished_near_the_deadline_is_reported_instead_of_timing_out() {
            // GIVEN 4 stored messages, the publish of the 2nd hanging
            let topic = Arc::new(Topic {
                together: Barrier::new(1),
                together_seqs: 0,
                failing: vec![],
                hanging: vec![2],
                published: Mutex::default(),
            });
            let (app, event) = stored(4, topic.clone()).await;
            // WHEN the invocation's deadline is the margin plus 100 ms away
            let deadline = Instant::now() + DEADLINE_MARGIN + Duration::from_millis(100);
            let r = notify(&app, 1000, event, Some(deadline)).await;
            // THEN it answers in time, reporting the hanging record for retry
            assert_eq!(failed_seqs(&r), ["2"]);
            assert_eq!(topic.published.lock().unwrap().len(), 3);
        }
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
