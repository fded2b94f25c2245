//! The port contract suite on DynamoDB (the emulator) with faults injected under the SDK client
//! on 20 % of the requests: throttling, transactions cancelled for throttling or a conflict,
//! 500s, timeouts, and lost responses (the write happened, its answer did not arrive). The
//! store's retries must keep every property of the contract.
//!
//! The SDK's last attempt of a request is spared, so every request eventually gets through:
//! what is tested here is the adapter's retries and their classification; callers seeing
//! errors, and retrying, is the end-to-end scenarios' part (tests/faults.rs). Lost responses go
//! only to the operations whose contract answer a retry cannot change: the append transaction
//! (its token tells its own write from a duplicate) and reads. A conditional single-item write
//! (join, advance, set_role, push claim) retried after a lost response finds its own change
//! and answers "nothing changed" (docs/reliability.md).

mod common;

use messenger_aws::faults::{Fault, FaultPlan, seed_from_env};
use std::sync::Arc;

/// The rate of every suite in this file.
const RATE: f64 = 0.2;

fn plan() -> Arc<FaultPlan> {
    Arc::new(
        FaultPlan::new(seed_from_env(), RATE)
            .sparing_last_attempt()
            .lost_responses_only_on(&["TransactWriteItems", "GetItem", "BatchGetItem", "Query"]),
    )
}

async fn faulty_store() -> Arc<messenger_aws::DynamoStore> {
    let plan = plan();
    eprintln!(
        "fault seed {} (MESSENGER_FAULT_SEED replays it)",
        plan.seed()
    );
    Arc::new(common::faulty_store(plan).await)
}

messenger::contract_tests!(faulty_store());

/// The suite above only proves something if the faults really hit the append transaction:
/// every kind of fault, many times, and 200 concurrent appends plus the idempotency races still
/// come out gapless and exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_fault_hit_the_append_transaction_and_nothing_was_lost() {
    let plan = plan();
    let store = Arc::new(common::faulty_store(plan.clone()).await);
    messenger::contract::gapless_concurrent_appends(store.clone()).await;
    messenger::contract::idempotent_append(store.clone()).await;
    let stats = messenger::contract::cancelled_appenders_leave_no_hole(store).await;
    println!("{}; {stats:?}", plan.summary());
    let injected = plan.injected();
    for fault in Fault::ALL {
        let n = injected
            .get(&("TransactWriteItems".to_owned(), fault))
            .copied()
            .unwrap_or(0);
        assert!(
            n > 0,
            "no {fault} on TransactWriteItems: {}",
            plan.summary()
        );
    }
}

/// The amend transaction (edit, delete, reaction) under its worst fault: a lost response (the
/// transaction committed, its answer did not arrive). Here every answer of a TransactWriteItems
/// is lost, the SDK's retries included, so the store's own retry runs and finds the head moved
/// by its own lost try. Every amendment must still be answered as applied, exactly once: the
/// retry recognises the entry its lost try wrote (not `Unchanged`, which recomputing the change
/// on the changed message would say, and nothing written twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_amendment_whose_answers_were_all_lost_is_applied_once() {
    let plan = Arc::new(
        FaultPlan::new(seed_from_env(), 1.0)
            .only(&[Fault::LostResponse])
            .on_operations(&["TransactWriteItems"]),
    );
    let store = Arc::new(common::faulty_store(plan.clone()).await);
    messenger::contract::concurrent_amendments_stay_gapless(store.clone()).await;
    messenger::contract::amendments_change_the_message_and_append_an_entry(store).await;
    println!("{}", plan.summary());
}
