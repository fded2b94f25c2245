//! Test support: which faults to inject, how often, and what was injected.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A fault AWS produces, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Throttled before the service did anything: DynamoDB `ThrottlingException`, API Gateway
    /// 429 `LimitExceededException`, SNS `Throttling`.
    Throttle,
    /// A TransactWriteItems cancelled with the reason `ThrottlingError` (a hot partition).
    ThrottleInTransaction,
    /// A TransactWriteItems cancelled with the reason `TransactionConflict`.
    Conflict,
    /// HTTP 500 before the service did anything.
    ServerError,
    /// No answer and nothing done: the request never reached the service (a connect or
    /// attempt timeout).
    Timeout,
    /// The request was carried out and its answer lost (the write committed, the reply
    /// timed out): the caller retries something that already happened.
    LostResponse,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 6] = [
        Fault::Throttle,
        Fault::ThrottleInTransaction,
        Fault::Conflict,
        Fault::ServerError,
        Fault::Timeout,
        Fault::LostResponse,
    ];

    /// Whether the request was carried out although the caller sees a failure.
    pub fn happened_anyway(self) -> bool {
        self == Fault::LostResponse
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where, how often and which faults to inject; counts what it injected. Shared (`Arc`) by
/// the wrappers it drives. Deterministic for a seed as far as the order of calls is.
#[derive(Debug)]
pub struct FaultPlan {
    seed: u64,
    /// Probability that a call gets a fault, in parts per million.
    rate_ppm: u64,
    faults: Vec<Fault>,
    /// Never fault a request's last SDK attempt (so every request eventually succeeds, and
    /// what is tested is the retries, not the caller's error handling).
    spare_last_attempt: bool,
    /// Only calls whose operation name contains one of these (empty: every call).
    operations: Vec<String>,
    /// Lost responses only on operations whose name contains one of these (`None`: on every
    /// operation the other faults go to).
    lossy_operations: Option<Vec<String>>,
    enabled: AtomicBool,
    state: AtomicU64,
    calls: AtomicU64,
    injected: Mutex<BTreeMap<(String, Fault), u64>>,
}

impl FaultPlan {
    /// Faults of every kind on `rate` (0.0 to 1.0) of the calls, from a PRNG seeded with `seed`.
    pub fn new(seed: u64, rate: f64) -> Self {
        Self {
            seed,
            rate_ppm: (rate.clamp(0.0, 1.0) * 1e6) as u64,
            faults: Fault::ALL.to_vec(),
            spare_last_attempt: false,
            operations: Vec::new(),
            lossy_operations: None,
            enabled: AtomicBool::new(true),
            state: AtomicU64::new(seed),
            calls: AtomicU64::new(0),
            injected: Mutex::default(),
        }
    }

    /// Only these kinds of fault.
    pub fn only(mut self, faults: &[Fault]) -> Self {
        self.faults = faults.to_vec();
        self
    }

    /// Only on operations whose name contains one of `names` (e.g. `TransactWriteItems`,
    /// `PostToConnection`, `append`).
    pub fn on_operations(mut self, names: &[&str]) -> Self {
        self.operations = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Lost responses only on operations whose name contains one of `names`; the other faults
    /// stay everywhere.
    pub fn lost_responses_only_on(mut self, names: &[&str]) -> Self {
        self.lossy_operations = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Never fault the last attempt the SDK makes of a request.
    pub fn sparing_last_attempt(mut self) -> Self {
        self.spare_last_attempt = true;
        self
    }

    /// The seed (print it with a failure, to replay the run).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The rate, 0.0 to 1.0.
    pub fn rate(&self) -> f64 {
        self.rate_ppm as f64 / 1e6
    }

    /// Stops (or resumes) injecting, e.g. to read the final state of a scenario cleanly.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// The next pseudo-random number (SplitMix64 over a shared counter).
    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Decides the fault (if any) for one call of `operation`, among those that can happen to
    /// it (`applicable`). `attempt` is the SDK's (attempt, max attempts) when known.
    pub fn pick(
        &self,
        operation: &str,
        applicable: &[Fault],
        attempt: Option<(u32, u32)>,
    ) -> Option<Fault> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        if !self.operations.is_empty() && !self.operations.iter().any(|o| operation.contains(o)) {
            return None;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.spare_last_attempt
            && let Some((n, max)) = attempt
            && n >= max
        {
            return None;
        }
        if self.next() % 1_000_000 >= self.rate_ppm {
            return None;
        }
        let candidates: Vec<Fault> = self
            .faults
            .iter()
            .copied()
            .filter(|f| applicable.contains(f))
            .filter(|f| {
                *f != Fault::LostResponse
                    || self
                        .lossy_operations
                        .as_ref()
                        .is_none_or(|ops| ops.iter().any(|o| operation.contains(o)))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let fault = candidates[(self.next() % candidates.len() as u64) as usize];
        *self
            .injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((operation.to_owned(), fault))
            .or_default() += 1;
        Some(fault)
    }

    /// Calls the plan was asked about (on the operations it covers, while enabled).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Faults injected, per (operation, fault).
    pub fn injected(&self) -> BTreeMap<(String, Fault), u64> {
        self.injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Faults injected, per kind.
    pub fn injected_by_fault(&self) -> BTreeMap<Fault, u64> {
        let mut out = BTreeMap::new();
        for ((_, f), n) in self.injected() {
            *out.entry(f).or_default() += n;
        }
        out
    }

    /// All faults injected.
    pub fn total_injected(&self) -> u64 {
        self.injected().values().sum()
    }

    /// One line: seed, rate, calls and what was injected.
    pub fn summary(&self) -> String {
        let by: Vec<String> = self
            .injected_by_fault()
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        format!(
            "fault plan seed {} rate {:.0} %: {} calls, {} faults ({})",
            self.seed,
            self.rate() * 100.0,
            self.calls(),
            self.total_injected(),
            by.join(", ")
        )
    }
}

/// A seed for a test run: `MESSENGER_FAULT_SEED` when set (to replay a failure), else random.
pub fn seed_from_env() -> u64 {
    std::env::var("MESSENGER_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| getrandom::u64().expect("OS randomness"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_kept_and_only_applicable_faults_are_picked() {
        let plan = FaultPlan::new(7, 0.2);
        let picked: Vec<_> = (0..10_000)
            .filter_map(|_| plan.pick("GetItem", &[Fault::Throttle, Fault::Timeout], None))
            .collect();
        assert!((1_700..2_300).contains(&picked.len()), "{}", picked.len());
        assert!(
            picked
                .iter()
                .all(|f| matches!(f, Fault::Throttle | Fault::Timeout))
        );
        assert_eq!(plan.total_injected(), picked.len() as u64);
        assert_eq!(plan.calls(), 10_000);
    }

    #[test]
    fn the_last_attempt_is_spared_and_a_disabled_plan_injects_nothing() {
        let plan = FaultPlan::new(1, 1.0).sparing_last_attempt();
        assert!(plan.pick("Query", &Fault::ALL, Some((1, 4))).is_some());
        assert!(plan.pick("Query", &Fault::ALL, Some((4, 4))).is_none());
        plan.set_enabled(false);
        assert!(plan.pick("Query", &Fault::ALL, Some((1, 4))).is_none());
        let lossy = FaultPlan::new(1, 1.0)
            .only(&[Fault::LostResponse])
            .lost_responses_only_on(&["GetItem"]);
        assert!(lossy.pick("PutItem", &Fault::ALL, None).is_none());
        assert_eq!(
            lossy.pick("GetItem", &Fault::ALL, None),
            Some(Fault::LostResponse)
        );
        let only = FaultPlan::new(1, 1.0).on_operations(&["Transact"]);
        assert!(only.pick("Query", &Fault::ALL, None).is_none());
        assert!(only.pick("TransactWriteItems", &Fault::ALL, None).is_some());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let plan = FaultPlan::new(seed, 0.5);
            (0..100)
                .map(|_| plan.pick("x", &Fault::ALL, None))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
