//! The port contract suite against DynamoDB on the emulator (started by tests/run.sh).

mod common;

use messenger::contract::Raced;
use messenger_aws::DynamoStore;
use std::sync::Arc;

messenger::contract_tests!(common::store(), check_races = really_raced);

/// The log's race tests only prove something on DynamoDB if the races happened: concurrent
/// appends lost the conversation head to each other (DynamoDB cancelled their transactions and
/// they were retried: more transactions than messages), and cancellations cut appends in flight.
fn really_raced(store: &Arc<DynamoStore>, raced: Raced) {
    match raced {
        Raced::Concurrently { appends } => {
            let transactions = store
                .counters()
                .0
                .get("TransactWriteItems")
                .map_or(0, |s| s.requests);
            let appends = appends as u64;
            println!(
                "{appends} concurrent appends: {transactions} transactions, {} lost the race",
                transactions.saturating_sub(appends)
            );
            assert!(
                transactions > appends,
                "{appends} appends took {transactions} transactions: none contended"
            );
        }
        Raced::Cancelled(stats) => {
            println!("{stats:?}");
            assert!(
                stats.cancelled > 0,
                "no append was cut in flight: {stats:?}"
            );
        }
    }
}

/// The object-store contract on the emulator's S3, through a real HTTP client.
mod s3 {
    use messenger::contract::ObjectClient;
    use messenger::ports::Objects;
    use messenger_aws::testing::{HttpObjectClient, fresh_bucket};
    use std::sync::Arc;

    async fn objects() -> (Arc<dyn Objects>, Arc<dyn ObjectClient>) {
        (
            Arc::new(fresh_bucket().await),
            Arc::new(HttpObjectClient::default()),
        )
    }

    messenger::object_contract_tests!(objects());
}
