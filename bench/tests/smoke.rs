//! CI smoke test: the load generator against an in-process embedded gateway, for correctness
//! only (nothing lost, nothing duplicated, something delivered). Never asserts on speed: CI
//! machines are shared and slow. Then the `messenger-bench` binary's command line: `--help`
//! explains every option, usage errors exit with 2, and a short run through it exits with 0.

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

const BIN: &str = env!("CARGO_BIN_EXE_messenger-bench");

/// Runs the binary to completion with `args`.
fn bench(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("MESSENGER_DYNAMODB_ENDPOINT")
        .output()
        .unwrap()
}

/// Whether `help` has a line listing `option` that says what it does.
fn describes(help: &str, option: &str) -> bool {
    help.lines().any(|line| {
        let Some(rest) = line.trim_start().strip_prefix(option) else {
            return false;
        };
        // Past the name and its value placeholder, some words.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('<') {
            Some(r) => r.split_once('>').map_or("", |(_, after)| after),
            None => rest,
        };
        rest.split_whitespace().count() >= 2
    })
}

#[test]
fn help_describes_every_option_of_every_command() {
    let commands: [(&[&str], &[&str]); 3] = [
        (
            &["-h"],
            &[
                "serve-reference",
                "lambda-init",
                "--embedded",
                "--store",
                "--dynamodb-endpoint",
                "--reference",
                "--reference-nagle",
                "--reference-read-buffer",
                "--url",
                "--secret",
                "--connections",
                "--groups",
                "--rate",
                "--window",
                "--duration",
                "--warmup",
                "--drain",
                "--body-bytes",
                "--connect-concurrency",
                "--max-inflight",
                "--prefix",
                "--json",
                "--quiet",
            ],
        ),
        (&["serve-reference", "--help"], &["--port", "--nagle"]),
        (&["help", "lambda-init"], &["--runs", "<BIN>..."]),
    ];
    for (args, options) in commands {
        let out = bench(args);
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        let help = String::from_utf8(out.stdout).unwrap();
        for option in options {
            assert!(
                describes(&help, option),
                "{args:?} does not describe {option}:\n{help}"
            );
        }
    }
    let help = String::from_utf8(bench(&["--help"]).stdout).unwrap();
    assert!(help.contains("Exit status: 0"), "{help}");
}

#[test]
fn usage_errors_exit_with_2_and_say_what_is_wrong() {
    let cases: [(&[&str], &str); 9] = [
        (&["--bogus"], "--bogus"),
        (&["--embedded", "--reference"], "cannot be used with"),
        (
            &["--url", "ws://127.0.0.1:1/local", "--reference-nagle"],
            "cannot be used with",
        ),
        (
            &["--store", "dynamodb", "--reference"],
            "cannot be used with",
        ),
        (&["--store", "dynamodb"], "MESSENGER_DYNAMODB_ENDPOINT"),
        (
            &["--dynamodb-endpoint", "http://127.0.0.1:1"],
            "needs --store dynamodb",
        ),
        (&["--rate", "10", "--window", "1"], "cannot be used with"),
        (&["--groups", "257"], "2..=256"),
        (&["lambda-init"], "<BIN>"),
    ];
    for (args, says) in cases {
        let out = bench(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
}

#[test]
fn a_short_run_through_the_binary_exits_0_with_its_json_on_stdout() {
    // GIVEN the reference server chosen by its read-buffer option alone (as bench/run.sh does)
    let args = [
        "--reference-read-buffer",
        "131072",
        "--connections",
        "2",
        "--window",
        "1",
        "--duration",
        "0.2",
        "--warmup",
        "0",
        "--quiet",
    ];

    // WHEN the binary runs
    let out = bench(&args);

    // THEN it exits 0 (nothing lost) and prints the run's JSON result
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["run"]["target"], "reference", "{report}");
    assert_eq!(report["run"]["load"], "window", "{report}");
    assert_eq!(report["messages"]["lost"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_with_connection_churn_loses_nothing_and_stores_nothing_twice() {
    // GIVEN an embedded gateway and 6 connections that each reconnect about every 0.6 s
    let config = BenchConfig {
        target: Target::Embedded(Store::Memory),
        connections: 6,
        load: Load::Rate(60.0),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(3),
        drain_timeout: Duration::from_secs(20),
        connect_concurrency: 4,
        progress: false,
        churn: Some(Duration::from_millis(600)),
        ..BenchConfig::default()
    };

    // WHEN the generator sends for about three seconds, reconnecting and syncing
    let report = run(config).await.expect("the run completes");

    // THEN connections did churn, and every acknowledged message reached its recipient (live
    // or by sync), under the seq its sender got, stored once
    println!("{}", report.summary());
    let m = &report.messages;
    assert!(m.reconnects >= 6, "{m:?}");
    assert!(m.delivered > 0, "{m:?}");
    assert_eq!((m.lost, m.stored_twice, m.unanswered), (0, 0, 0), "{m:?}");
    assert!(report.ok, "{}", report.summary());
}
