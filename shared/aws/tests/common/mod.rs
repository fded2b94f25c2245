//! Test support for the emulator suites: stores over fresh, uniquely named tables on the
//! emulator (so test binaries and tests can run in parallel).

#![allow(dead_code)] // each test file uses a different part

pub mod counting;

use messenger_aws::DynamoStore;
use std::sync::Arc;

#[allow(unused_imports)] // not every test file needs it
pub use messenger_aws::testing::emulator_endpoint as endpoint;

/// A store over new tables, with the given log bucket size.
pub async fn store_with_bucket(bucket: u64) -> Arc<DynamoStore> {
    Arc::new(messenger_aws::testing::fresh_store(bucket).await)
}

/// A store whose log buckets hold 10 seqs, so the contract's 30-message logs cross two
/// bucket boundaries.
pub async fn store() -> Arc<DynamoStore> {
    store_with_bucket(10).await
}

/// A store over new tables whose requests go through `plan`'s faults.
pub async fn faulty_store(plan: std::sync::Arc<messenger_aws::faults::FaultPlan>) -> DynamoStore {
    messenger_aws::testing::fresh_store_with_faults(10, plan)
        .await
        .0
}
