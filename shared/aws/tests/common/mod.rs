//! Test support for the emulator suites: the endpoint from the environment, and stores over
//! fresh, uniquely named tables (so test binaries and tests can run in parallel).

#![allow(dead_code)] // each test file uses a different part

use messenger::contract::tag;
use messenger_aws::{DynamoStore, Tables};
use std::sync::Arc;

/// The variable the test script sets to the running emulator's endpoint.
pub const ENDPOINT_VAR: &str = "MESSENGER_DYNAMODB_ENDPOINT";

/// The emulator's endpoint. Unset means the suite was run without the emulator: fail loudly,
/// never skip.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VAR} is not set: these tests need a DynamoDB emulator. Run them with \
             `tests/emulator.sh` (it starts MiniStack, sets {ENDPOINT_VAR} and stops it after)"
        )
    })
}

/// A store over four new tables named `t<random>-…`, with the given log bucket size.
pub async fn store_with_bucket(bucket: u64) -> Arc<DynamoStore> {
    let sdk = messenger_aws::sdk::for_endpoint(&endpoint()).await;
    let store = DynamoStore::new(&sdk, Tables::with_prefix(&format!("t{}-", tag())))
        .with_bucket_size(bucket);
    store.create_tables().await.expect("create tables");
    Arc::new(store)
}

/// A store whose log buckets hold 10 seqs, so the contract's 30-message logs cross two
/// bucket boundaries.
pub async fn store() -> Arc<DynamoStore> {
    store_with_bucket(10).await
}
