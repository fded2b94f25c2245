//! The fuzz smoke run of the test command: 6,000 mutated frames of every action through the
//! real handler stack, and 2,000 mutated tokens through the authorizer, from a random seed
//! (printed; `MESSENGER_FUZZ_SEED` replays one). The long run (10 million frames) is
//! `messenger-bench fuzz` (docs/reliability.md).

use messenger_bench::fuzz::{FuzzConfig, run};

#[test]
fn mutated_frames_and_tokens_are_all_answered_and_none_panics() {
    let seed = std::env::var("MESSENGER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("fuzz seed {seed} (MESSENGER_FUZZ_SEED={seed} replays it)");
    let config = FuzzConfig {
        frames: 6_000,
        tokens: 2_000,
        seed,
        workers: 2,
        ..FuzzConfig::default()
    };
    let report = run(&config).unwrap_or_else(|f| panic!("{f}"));
    println!("{}", serde_json::to_string(&report).unwrap());
    assert_eq!(report.frames, 6_000);
    // The mutations reach past parsing: some frames were handled by their use case. Every
    // result frame counts — 780 to 1,070 of the 6,000 over 26 seeds; the six kinds this counted
    // before (sent, acked, sync, history, presence, group) summed 276 to 429 and fell under 300
    // in 7 of those seeds, since message requests refuse more mutated sends.
    let results: u64 = report
        .replies
        .iter()
        .filter(|(kind, _)| !kind.starts_with("error:") && !kind.starts_with("unanswered:"))
        .map(|(_, n)| n)
        .sum();
    assert!(results > 300, "{:?}", report.replies);
    // … and every kind of refusal was met.
    for code in ["bad_request", "unknown_action", "forbidden"] {
        assert!(
            report.replies.contains_key(&format!("error:{code}")),
            "no {code}: {:?}",
            report.replies
        );
    }
    assert!(report.tokens_allowed > 0, "no valid token among the cases");
}
