//! CI smoke test: the load generator against an in-process embedded gateway, for correctness
//! only (nothing lost, nothing duplicated, something delivered). Never asserts on speed: CI
//! machines are shared and slow.

use messenger_bench::{BenchConfig, Load, Store, Target, Topology, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_against_the_embedded_gateway_loses_and_duplicates_nothing() {
    // GIVEN an embedded gateway and 6 connections in 3 pairs
    let config = BenchConfig {
        target: Target::Embedded(Store::Memory),
        connections: 6,
        load: Load::Rate(60.0),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(2),
        // A hang guard only: a healthy gateway settles in milliseconds.
        drain_timeout: Duration::from_secs(20),
        connect_concurrency: 4,
        progress: false,
        ..BenchConfig::default()
    };

    // WHEN the generator sends for about two seconds
    let report = run(config).await.expect("the run completes");

    // THEN every acknowledged message reached its recipient exactly once, in seq order
    let m = &report.messages;
    assert!(m.delivered > 0, "nothing was delivered: {m:?}");
    assert_eq!(m.lost, 0, "{m:?}");
    assert_eq!(m.duplicated, 0, "{m:?}");
    assert_eq!(m.unanswered, 0, "{m:?}");
    assert_eq!(m.errors, 0, "{m:?}");
    assert!(report.ok, "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_run_against_the_reference_server_is_consistent_too() {
    // GIVEN the reference server and 4 connections, each keeping 2 sends in flight
    let config = BenchConfig {
        target: Target::Reference(Default::default()),
        connections: 4,
        load: Load::Window(2),
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        drain_timeout: Duration::from_secs(20),
        progress: false,
        ..BenchConfig::default()
    };

    // WHEN it runs
    let report = run(config).await.expect("the run completes");

    // THEN the reference server passes the same checks (the yardstick itself is sound)
    assert!(report.messages.delivered > 0, "{:?}", report.messages);
    assert!(report.ok, "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_group_run_delivers_every_message_to_every_other_member_once() {
    // GIVEN an embedded gateway and 2 groups of 3 members, created through `create_group`
    let config = BenchConfig {
        target: Target::Embedded(Store::Memory),
        topology: Topology::Groups { size: 3 },
        connections: 6,
        load: Load::Rate(30.0),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(20),
        progress: false,
        ..BenchConfig::default()
    };

    // WHEN every member writes to its group for about a second
    let report = run(config).await.expect("the run completes");

    // THEN each acknowledged message reached the 2 other members exactly once, gapless after
    // the group_created event
    let m = &report.messages;
    assert!(m.acked > 0, "{m:?}");
    assert_eq!(m.expected_deliveries, 2 * m.acked, "{m:?}");
    assert_eq!(m.delivered, m.expected_deliveries, "{m:?}");
    assert_eq!(m.unexpected_frames, 0, "{m:?}");
    assert!(report.ok, "{}", report.summary());
}
