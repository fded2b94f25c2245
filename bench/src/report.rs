//! Result layer: merges what every connection saw into one report, and checks it: every
//! acknowledged message reached every recipient exactly once, under the seq its sender was
//! given, and each conversation's seqs are gapless.

use crate::client::Outcome;
use crate::plan::Plan;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// Summarises a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The machine a run ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub open_files_limit: u64,
    /// /proc/loadavg at the end of the run: other work on a shared machine skews results.
    pub loadavg: String,
}

/// The run's parameters, echoed so a result file explains itself.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub target: String,
    /// The embedded gateway's store: `memory` or `dynamodb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    pub url: String,
    pub topology: crate::Topology,
    pub connections: usize,
    /// `rate` (open loop, `rate_per_s`) or `window` (closed loop, `window` per connection).
    pub load: String,
    pub rate_per_s: Option<f64>,
    pub window: Option<usize>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub body_bytes: usize,
    pub connect_concurrency: usize,
    /// Connection churn: mean seconds between a connection's reconnects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_s: Option<f64>,
}

/// How the connections were opened.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectStats {
    pub seconds: f64,
    pub per_second: f64,
    pub latency_ms: Latency,
}

/// Message accounting over the whole run (warm-up and drain included).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Messages {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub error_codes: BTreeMap<String, u64>,
    /// Sends with no reply at all by the end of the drain.
    pub unanswered: u64,
    /// Acknowledged messages times their recipients.
    pub expected_deliveries: u64,
    pub delivered: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Live deliveries of a message its recipient already had (same seq; dropped, as a client
    /// does). With churn a retried send is delivered again on purpose; without, none.
    pub duplicated: u64,
    /// Messages a recipient got under two different seqs: stored twice. Never.
    pub stored_twice: u64,
    /// Of `delivered`, the messages that came by sync (after a reconnect, or at the end).
    pub delivered_by_sync: u64,
    /// Reconnects made (churn).
    pub reconnects: u64,
    /// Whether the run had churn (a redelivery is then expected, not a failure).
    #[serde(skip)]
    pub churn: bool,
    /// `sent` replies flagged `duplicate` to a first try (never expected: every client_msg_id is
    /// fresh; a send retried after a reconnect may rightly be a duplicate).
    pub duplicate_acks: u64,
    /// Deliveries of messages whose sender never got `sent`.
    pub delivered_unacked: u64,
    /// Deliveries whose (conversation, seq) differs from what the sender was told.
    pub seq_mismatches: u64,
    /// Seqs missing from 1..=max in the acknowledged seqs of each conversation.
    pub seq_gaps: u64,
    /// Two different messages acknowledged under one (conversation, seq).
    pub seq_collisions: u64,
    pub unexpected_frames: u64,
    /// Open-loop ticks skipped because a connection had `max_inflight` sends unanswered.
    pub skipped_sends: u64,
    /// Connections that ended before the run did.
    pub closed_early: u64,
}

/// Rates over the measurement window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub window_s: f64,
    pub offered_per_s: Option<f64>,
    pub acked_per_s: f64,
    pub delivered_per_s: f64,
}

/// What the process (generator and, in-process, the server) cost over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCost {
    /// CPU time over wall time; 100 % is one core.
    pub cpu_percent: f64,
    /// CPU microseconds per delivered message.
    pub cpu_us_per_delivered: Option<f64>,
    pub peak_rss_mib: f64,
    /// (seconds since the start, MiB) every 10 s.
    pub rss_mib_over_time: Vec<(f64, f64)>,
}

/// DynamoDB requests of the embedded gateway over the measured window, counted by the
/// adapter (`messenger_aws::metrics`), with the capacity units the emulator reported.
#[derive(Debug, Clone, Serialize)]
pub struct DynamoCost {
    /// Requests per operation (`GetItem`, `Query`, …).
    pub requests: BTreeMap<String, u64>,
    pub read_units: f64,
    pub write_units: f64,
    /// Per message acknowledged in the window.
    pub requests_per_message: Option<f64>,
    pub read_units_per_message: Option<f64>,
    pub write_units_per_message: Option<f64>,
}

/// One run's result, as written to the JSON file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub machine: Machine,
    pub connect: ConnectStats,
    pub messages: Messages,
    pub throughput: Throughput,
    /// send → `sent` at the sender, and send → `message` at the recipient.
    pub latency_ms: BTreeMap<&'static str, Latency>,
    pub process: ProcessCost,
    /// Only for the embedded gateway on DynamoDB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb: Option<DynamoCost>,
    /// True when nothing was lost, duplicated, unanswered, mis-sequenced or cut off.
    pub ok: bool,
}

/// The merged outcome of every connection.
pub struct Merged {
    pub messages: Messages,
    pub acked_in_window: u64,
    pub delivered_in_window: u64,
}

/// Merges the connections' outcomes and checks delivery against the plan; `churn` says
/// whether connections reconnected (then a message may rightly be delivered twice).
pub fn merge(plan: &Plan, outcomes: &[Outcome], churn: bool) -> Merged {
    let mut m = Messages {
        churn,
        ..Messages::default()
    };
    let (mut acked_in_window, mut delivered_in_window) = (0, 0);
    // (sender, n) → (conversation, seq) of every acknowledged message.
    let mut acked: HashMap<(usize, u64), (&str, u64)> = HashMap::new();
    for o in outcomes {
        m.sent += o.sent;
        m.acked += o.acked.len() as u64;
        for (code, n) in &o.errors {
            m.errors += n;
            *m.error_codes.entry(code.clone()).or_default() += n;
        }
        m.unanswered += o.unanswered;
        m.duplicated += o.duplicates;
        m.stored_twice += o.stored_twice;
        m.delivered_by_sync += o.by_sync;
        m.reconnects += o.reconnects;
        m.unexpected_frames += o.unexpected;
        m.skipped_sends += o.skipped;
        m.closed_early += u64::from(o.closed_early.is_some());
        acked_in_window += o.acked_in_window;
        delivered_in_window += o.delivered_in_window;
        for a in &o.acked {
            m.duplicate_acks += u64::from(a.duplicate && !a.retried);
            acked.insert((o.index, a.n), (a.conversation.as_str(), a.seq));
            m.expected_deliveries += plan.recipients[o.index].len() as u64;
        }
    }

    // Every recipient must have each acknowledged message once, with the seq the sender got.
    let mut delivered_pairs = 0u64;
    for o in outcomes {
        m.delivered += o.received.len() as u64;
        for r in &o.received {
            match acked.get(&(r.sender, r.n)) {
                Some((conv, seq)) => {
                    delivered_pairs += 1;
                    if *conv != r.conversation || *seq != r.seq {
                        m.seq_mismatches += 1;
                    }
                }
                None => m.delivered_unacked += 1,
            }
        }
    }
    // Each delivered pair is a distinct (recipient, sender, n): duplicates were dropped at the
    // recipient and senders only reach their planned recipients.
    m.lost = m.expected_deliveries.saturating_sub(delivered_pairs);

    // Seqs per conversation: unique, and gapless after those the set-up took.
    let mut by_conv: HashMap<&str, Vec<u64>> = HashMap::new();
    for (conv, seq) in acked.values() {
        by_conv.entry(conv).or_default().push(*seq);
    }
    for (conv, seqs) in by_conv.iter_mut() {
        seqs.sort_unstable();
        let before = seqs.len() as u64;
        seqs.dedup();
        m.seq_collisions += before - seqs.len() as u64;
        let max = seqs.last().copied().unwrap_or(0);
        let reserved = plan.reserved_seqs.get(*conv).copied().unwrap_or(0);
        m.seq_gaps += max.saturating_sub(reserved + seqs.len() as u64);
    }

    Merged {
        messages: m,
        acked_in_window,
        delivered_in_window,
    }
}

impl Messages {
    /// Nothing lost, duplicated, unanswered, mis-sequenced or cut off.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && (self.duplicated == 0 || self.churn)
            && self.stored_twice == 0
            && self.duplicate_acks == 0
            && self.unanswered == 0
            && self.delivered_unacked == 0
            && self.seq_mismatches == 0
            && self.seq_gaps == 0
            && self.seq_collisions == 0
            && self.closed_early == 0
    }
}

impl Report {
    /// A one-screen human summary (the JSON has everything).
    pub fn summary(&self) -> String {
        let m = &self.messages;
        let t = &self.throughput;
        let lat = |k: &str| {
            self.latency_ms
                .get(k)
                .map(|l| {
                    format!(
                        "p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms (n={})",
                        l.p50, l.p90, l.p99, l.max, l.count
                    )
                })
                .unwrap_or_default()
        };
        format!(
            "{} {} conns, {}: delivered {:.0}/s acked {:.0}/s over {:.1}s\n  \
             send->sent     {}\n  send->message  {}\n  \
             sent {} acked {} errors {} unanswered {} delivered {} ({} by sync) lost {} \
             duplicated {} stored twice {} seq gaps {} mismatches {} closed early {} skipped {} \
             reconnects {}\n  \
             connect {:.1}s ({:.0}/s); cpu {:.0}% ({} us/msg); peak rss {:.0} MiB; {}",
            self.run.target,
            self.run.connections,
            match (self.run.rate_per_s, self.run.window) {
                (Some(r), _) => format!("rate {r}/s"),
                (_, Some(w)) => format!("closed loop window {w}"),
                _ => String::new(),
            },
            t.delivered_per_s,
            t.acked_per_s,
            t.window_s,
            lat("send_to_sent"),
            lat("send_to_message"),
            m.sent,
            m.acked,
            m.errors,
            m.unanswered,
            m.delivered,
            m.delivered_by_sync,
            m.lost,
            m.duplicated,
            m.stored_twice,
            m.seq_gaps,
            m.seq_mismatches,
            m.closed_early,
            m.skipped_sends,
            m.reconnects,
            self.connect.seconds,
            self.connect.per_second,
            self.process.cpu_percent,
            self.process
                .cpu_us_per_delivered
                .map_or("-".into(), |u| format!("{u:.0}")),
            self.process.peak_rss_mib,
            if self.ok { "OK" } else { "FAILED" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;
    use crate::client::{Acked, Received};

    fn outcome(index: usize) -> Outcome {
        Outcome {
            index,
            ..Outcome::default()
        }
    }

    fn acked(n: u64, seq: u64) -> Acked {
        Acked {
            n,
            conversation: "dm:u-0:u-1".into(),
            seq,
            duplicate: false,
            retried: false,
        }
    }

    fn received(sender: usize, n: u64, seq: u64) -> Received {
        Received {
            sender,
            n,
            conversation: "dm:u-0:u-1".into(),
            seq,
        }
    }

    /// u-0 sent 3 messages (seqs 1..3), u-1 sent 1 (seq 4).
    fn pair() -> (Plan, Outcome, Outcome) {
        let plan = Plan::new(Topology::Pairs, 2, "u").unwrap();
        let mut a = outcome(0);
        a.sent = 3;
        a.acked = vec![acked(1, 1), acked(2, 2), acked(3, 3)];
        let mut b = outcome(1);
        b.sent = 1;
        b.acked = vec![acked(1, 4)];
        a.received = vec![received(1, 1, 4)];
        (plan, a, b)
    }

    #[test]
    fn a_complete_run_is_ok() {
        let (plan, a, mut b) = pair();
        b.received = vec![received(0, 1, 1), received(0, 2, 2), received(0, 3, 3)];
        let m = merge(&plan, &[a, b], false).messages;
        assert_eq!((m.expected_deliveries, m.delivered, m.lost), (4, 4, 0));
        assert!(m.ok(), "{m:?}");
    }

    #[test]
    fn a_missing_delivery_is_lost() {
        let (plan, a, mut b) = pair();
        b.received = vec![received(0, 1, 1), received(0, 3, 3)];
        let m = merge(&plan, &[a, b], false).messages;
        assert_eq!(m.lost, 1);
        assert!(!m.ok());
    }

    #[test]
    fn a_wrong_seq_a_gap_and_a_duplicate_are_caught() {
        let (plan, mut a, mut b) = pair();
        b.received = vec![received(0, 1, 1), received(0, 2, 2), received(0, 3, 9)];
        b.duplicates = 1;
        a.acked[2].seq = 5; // seq 3 never acknowledged: a hole in 1..=5
        let m = merge(&plan, &[a, b], false).messages;
        assert_eq!(m.seq_mismatches, 1);
        assert_eq!(m.seq_gaps, 1);
        assert_eq!(m.duplicated, 1);
        assert!(!m.ok());
    }

    /// Like [`pair`], but seq 1 went to an event before the load (a group's creation).
    fn pair_after_an_event() -> [Outcome; 2] {
        let (_, mut a, mut b) = pair();
        for x in a.acked.iter_mut().chain(b.acked.iter_mut()) {
            x.seq += 1;
        }
        a.received = vec![received(1, 1, 5)];
        b.received = vec![received(0, 1, 2), received(0, 2, 3), received(0, 3, 4)];
        [a, b]
    }

    #[test]
    fn seqs_taken_by_the_set_up_are_no_gap() {
        let mut plan = Plan::new(Topology::Pairs, 2, "u").unwrap();
        assert_eq!(
            merge(&plan, &pair_after_an_event(), false)
                .messages
                .seq_gaps,
            1
        );
        plan.reserved_seqs.insert("dm:u-0:u-1".into(), 1);
        let m = merge(&plan, &pair_after_an_event(), false).messages;
        assert_eq!(m.seq_gaps, 0);
        assert!(m.ok(), "{m:?}");
    }

    #[test]
    fn two_messages_under_one_seq_collide() {
        let (plan, a, mut b) = pair();
        b.acked[0].seq = 3;
        b.received = vec![received(0, 1, 1), received(0, 2, 2), received(0, 3, 3)];
        let m = merge(&plan, &[a, b], false).messages;
        assert_eq!(m.seq_collisions, 1);
        assert!(!m.ok());
    }
}
