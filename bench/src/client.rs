//! Load layer: the task behind one connection. It sends on schedule, matches every reply to
//! its request, and records every pushed `message` so the run can prove nothing was lost or
//! delivered twice.
//!
//! Latency needs no shared clock table: the send instant travels in the message itself (the
//! body starts with microseconds since the run's epoch, and `client_msg_id` is
//! `<sender index>-<n>`), and sender and recipient live in this process, on one monotonic clock.

use crate::plan::Plan;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Socket buffers sized for small chat frames. tungstenite's defaults (128 KiB to read and
/// 128 KiB to write per socket) would cost the generator over 1 GiB at 5,000 connections,
/// memory the server under test then cannot use.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Latency histograms count microseconds, up to a minute, with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

/// How sends are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Open loop: each connection sends every `period`, whatever the server does (first sends
    /// are spread over one period, so the aggregate rate is smooth).
    Every { period: Duration },
    /// Closed loop: each connection keeps `window` sends unanswered, sending the next one
    /// when a reply arrives. Finds the server's capacity.
    Window { window: usize },
}

/// When the phases of a run start and end, on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Time zero of the run: send timestamps are microseconds since this instant.
    pub epoch: Instant,
    /// End of the warm-up: latencies count for messages sent from here …
    pub measure_from: Instant,
    /// … to here, where sending stops and the drain begins.
    pub send_until: Instant,
}

impl Schedule {
    fn measured(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.send_until
    }
}

/// send → `sent` and send → `message` latencies of the whole run. One pair shared by every
/// connection, not one per connection: a 3-digit histogram up to a minute is ~270 KB, and 5,000
/// pairs of them would outweigh the sockets being measured.
#[derive(Debug)]
pub struct Latencies {
    pub sent: Histogram<u64>,
    pub delivery: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            sent: histogram(),
            delivery: histogram(),
        }
    }
}

/// Running totals every connection adds to, read by the progress line and the drain.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    pub delivered: AtomicU64,
    pub duplicates: AtomicU64,
    pub skipped: AtomicU64,
    pub closed: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    pub plan: Plan,
    pub schedule: Schedule,
    pub pace: Pace,
    /// Message body size in bytes (the timestamp prefix included).
    pub body_bytes: usize,
    /// An open-loop connection with this many unanswered sends skips its next tick instead of
    /// queueing more (counted as `skipped`), so an overloaded target cannot exhaust memory.
    pub max_inflight: usize,
    pub counters: Counters,
    pub latencies: Mutex<Latencies>,
}

/// A send the sender got `sent` for.
#[derive(Debug, Clone)]
pub struct Acked {
    pub n: u64,
    pub conversation: String,
    pub seq: u64,
    pub duplicate: bool,
}

/// A pushed `message` a recipient got.
#[derive(Debug, Clone)]
pub struct Received {
    pub sender: usize,
    pub n: u64,
    pub conversation: String,
    pub seq: u64,
}

/// Everything one connection saw, handed back when the run stops.
#[derive(Debug, Default)]
pub struct Outcome {
    pub index: usize,
    /// Sends written to the socket.
    pub sent: u64,
    pub acked: Vec<Acked>,
    /// `error` replies by code.
    pub errors: BTreeMap<String, u64>,
    /// Sends with neither `sent` nor `error` by the end of the drain.
    pub unanswered: u64,
    /// First receipt of each message (later receipts only count in `duplicates`).
    pub received: Vec<Received>,
    pub duplicates: u64,
    /// Frames that were not replies to our requests nor expected messages.
    pub unexpected: u64,
    pub skipped: u64,
    /// Why the socket ended before the run did, if it did.
    pub closed_early: Option<String>,
    /// Replies and deliveries that arrived within the measurement window.
    pub acked_in_window: u64,
    pub delivered_in_window: u64,
}

/// The fields of server frames the generator reads; borrowed where the JSON allows.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    id: Option<u64>,
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conversation: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default)]
    duplicate: bool,
}

struct Task {
    index: usize,
    shared: Arc<Shared>,
    /// Which senders this connection expects messages from.
    senders: HashSet<usize>,
    next_n: u64,
    /// Unanswered sends: n → when written.
    pending: HashMap<u64, Instant>,
    /// (sender, n) of every message received, to spot duplicates.
    seen: HashSet<(usize, u64)>,
    out: Outcome,
}

/// Drives one connection until `stop` turns true, then closes it and reports.
pub async fn drive(
    mut ws: Ws,
    index: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut task = Task::new(index, shared.clone());
    let schedule = shared.schedule;
    let (open_loop, period) = match shared.pace {
        Pace::Every { period } => (true, period),
        // The ticker is disabled in closed loop; any period will do.
        Pace::Window { .. } => (false, Duration::from_secs(3600)),
    };
    // Spread first sends over one period so N connections do not fire in lockstep.
    let phase = period.mul_f64(index as f64 / shared.plan.len() as f64);
    let mut ticker = tokio::time::interval_at(schedule.epoch + phase, period);
    // Burst keeps the offered load honest (open loop): a tick delayed by an overloaded machine
    // is still sent, later, instead of silently lowering the rate.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);

    if let Pace::Window { window } = shared.pace {
        tokio::time::sleep_until(schedule.epoch).await;
        for _ in 0..window {
            if let Err(e) = task.send_next(&mut ws).await {
                task.out.closed_early = Some(format!("send failed: {e}"));
                break;
            }
        }
    }

    while task.out.closed_early.is_none() {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticker.tick(), if open_loop && Instant::now() < schedule.send_until => {
                if Instant::now() >= schedule.send_until {
                    continue;
                }
                if task.pending.len() >= shared.max_inflight {
                    task.out.skipped += 1;
                    Counters::add(&shared.counters.skipped, 1);
                } else if let Err(e) = task.send_next(&mut ws).await {
                    task.out.closed_early = Some(format!("send failed: {e}"));
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let replied = task.on_frame(text.as_str());
                    if replied
                        && !open_loop
                        && Instant::now() < schedule.send_until
                        && let Err(e) = task.send_next(&mut ws).await
                    {
                        task.out.closed_early = Some(format!("send failed: {e}"));
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    task.out.closed_early = Some(format!("closed by the server: {frame:?}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => task.out.closed_early = Some(format!("socket error: {e}")),
                None => task.out.closed_early = Some("socket ended".into()),
            },
        }
    }
    if task.out.closed_early.is_some() {
        Counters::add(&shared.counters.closed, 1);
    }
    // A polite close, so the gateway runs `$disconnect`; a slow peer must not hold the run up.
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    task.finish()
}

impl Task {
    fn new(index: usize, shared: Arc<Shared>) -> Self {
        Self {
            index,
            senders: shared.plan.senders[index].iter().copied().collect(),
            next_n: 1,
            pending: HashMap::new(),
            seen: HashSet::new(),
            out: Outcome {
                index,
                ..Outcome::default()
            },
            shared,
        }
    }

    fn send_frame(&self, n: u64, now: Instant) -> String {
        let micros = now.duration_since(self.shared.schedule.epoch).as_micros();
        let mut body = format!("{micros}:");
        // Pad to the configured size (the seed's messages are 100 bytes).
        let pad = self.shared.body_bytes.saturating_sub(body.len());
        body.extend(std::iter::repeat_n('x', pad));
        let (field, target) = self.shared.plan.targets[self.index].field();
        format!(
            r#"{{"action":"send","id":{n},"{field}":"{target}","client_msg_id":"{}-{n}","body":"{body}"}}"#,
            self.index
        )
    }

    async fn send_next(
        &mut self,
        ws: &mut Ws,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let n = self.next_n;
        self.next_n += 1;
        let now = Instant::now();
        let frame = self.send_frame(n, now);
        self.pending.insert(n, now);
        self.out.sent += 1;
        Counters::add(&self.shared.counters.sent, 1);
        ws.send(Message::text(frame)).await
    }

    /// Handles one server frame; true when it answered one of our sends.
    fn on_frame(&mut self, text: &str) -> bool {
        let now = Instant::now();
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            self.out.unexpected += 1;
            return false;
        };
        match frame.ty.as_ref() {
            "sent" => self.on_sent(&frame, now),
            "error" => {
                let Some(_) = frame.id.and_then(|n| self.pending.remove(&n)) else {
                    self.out.unexpected += 1;
                    return false;
                };
                let code = frame.code.as_deref().unwrap_or("?").to_owned();
                *self.out.errors.entry(code).or_default() += 1;
                Counters::add(&self.shared.counters.errors, 1);
                true
            }
            "message" => {
                self.on_message(&frame, now);
                false
            }
            _ => {
                self.out.unexpected += 1;
                false
            }
        }
    }

    fn on_sent(&mut self, frame: &Frame, now: Instant) -> bool {
        let (Some(n), Some(conversation), Some(seq)) = (frame.id, &frame.conversation, frame.seq)
        else {
            self.out.unexpected += 1;
            return false;
        };
        let Some(at) = self.pending.remove(&n) else {
            // A second reply to one request: the server answered twice.
            self.out.unexpected += 1;
            return false;
        };
        let schedule = &self.shared.schedule;
        if schedule.measured(at) {
            self.record(|l| &mut l.sent, now - at);
        }
        if schedule.measured(now) {
            self.out.acked_in_window += 1;
        }
        self.out.acked.push(Acked {
            n,
            conversation: conversation.to_string(),
            seq,
            duplicate: frame.duplicate,
        });
        Counters::add(&self.shared.counters.acked, 1);
        true
    }

    fn on_message(&mut self, frame: &Frame, now: Instant) {
        let parsed = frame
            .client_msg_id
            .as_deref()
            .and_then(|c| c.split_once('-'))
            .and_then(|(s, n)| Some((s.parse::<usize>().ok()?, n.parse::<u64>().ok()?)));
        let sent_micros = frame
            .body
            .as_deref()
            .and_then(|b| b.split_once(':'))
            .and_then(|(t, _)| t.parse::<u64>().ok());
        let (Some((sender, n)), Some(micros), Some(conversation), Some(seq)) =
            (parsed, sent_micros, &frame.conversation, frame.seq)
        else {
            self.out.unexpected += 1;
            return;
        };
        if !self.senders.contains(&sender) {
            self.out.unexpected += 1;
            return;
        }
        if !self.seen.insert((sender, n)) {
            self.out.duplicates += 1;
            Counters::add(&self.shared.counters.duplicates, 1);
            return;
        }
        let schedule = self.shared.schedule;
        let sent_at = schedule.epoch + Duration::from_micros(micros);
        if schedule.measured(sent_at) {
            self.record(|l| &mut l.delivery, now.saturating_duration_since(sent_at));
        }
        if schedule.measured(now) {
            self.out.delivered_in_window += 1;
        }
        self.out.received.push(Received {
            sender,
            n,
            conversation: conversation.to_string(),
            seq,
        });
        Counters::add(&self.shared.counters.delivered, 1);
    }

    fn finish(mut self) -> Outcome {
        self.out.unanswered = self.pending.len() as u64;
        self.out
    }
}

impl Task {
    fn record(&self, which: impl FnOnce(&mut Latencies) -> &mut Histogram<u64>, d: Duration) {
        let mut latencies = self
            .shared
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Saturates at the histogram's top (a minute) rather than failing the run.
        which(&mut latencies).saturating_record((d.as_micros() as u64).max(1));
    }
}
