//! The port contract suite against DynamoDB on the emulator (started by tests/run.sh).

mod common;

messenger::contract_tests!(common::store());

/// The killed-mid-send contract only proves something if sends really were cut off in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_send_appends_were_really_cut_off() {
    let stats = messenger::contract::cancelled_appenders_leave_no_hole(common::store().await).await;
    println!("{stats:?}");
    assert!(stats.cancelled > 0, "no append was cancelled: {stats:?}");
}
