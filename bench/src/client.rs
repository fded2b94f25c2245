//! Load layer: the task behind one connection. It sends on schedule, matches every reply to
//! its request, and records every pushed `message` so the run can prove nothing was lost or
//! delivered twice.
//!
//! Latency needs no shared clock table: the send instant travels in the message itself (the
//! body starts with microseconds since the run's epoch, and `client_msg_id` is
//! `<sender index>-<n>`), and sender and recipient live in this process, on one monotonic clock.
//!
//! With churn ([`Shared::churn`]), a connection also closes and reconnects now and then, as a
//! phone does: after reconnecting it sends its unanswered sends again (same `client_msg_id`),
//! and syncs from its cursors; it syncs once more when sending stops, and during the drain.
//! A message it already has (same conversation and seq) is dropped, as a client does.

use crate::plan::Plan;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    pub reconnects: AtomicU64,
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
    /// Connection churn: each connection closes and reconnects after a lifetime drawn
    /// uniformly from half to one and a half times this, while sending.
    pub churn: Option<Duration>,
    /// The token URL of each connection (to reconnect).
    pub urls: Vec<String>,
    /// Longest wait for one handshake.
    pub connect_timeout: Duration,
}

/// A send the sender got `sent` for.
#[derive(Debug, Clone)]
pub struct Acked {
    pub n: u64,
    pub conversation: String,
    pub seq: u64,
    pub duplicate: bool,
    /// It was sent again after a reconnect (so `duplicate` is expected when the first try
    /// was stored).
    pub retried: bool,
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
    /// Live deliveries of a message it already had (same seq): dropped, as a client does.
    pub duplicates: u64,
    /// Messages it had under one seq and then got under another: stored twice.
    pub stored_twice: u64,
    /// Of `received`, the messages that came by sync rather than live.
    pub by_sync: u64,
    /// Times it closed and reconnected (churn).
    pub reconnects: u64,
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
    /// Absent on the messages of a `sync` page.
    #[serde(rename = "type", borrow, default)]
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
    /// A `sync` page's messages.
    #[serde(borrow, default)]
    messages: Vec<Frame<'a>>,
    #[serde(default)]
    more: bool,
}

/// Request ids of syncs: above any send's `n`.
const SYNC_IDS: u64 = 1 << 48;

/// The seqs a connection has of one conversation: everything up to `prefix`, and `above` it.
#[derive(Debug, Default)]
struct Had {
    prefix: u64,
    above: BTreeSet<u64>,
}

impl Had {
    fn insert(&mut self, seq: u64) {
        if seq <= self.prefix {
            return;
        }
        self.above.insert(seq);
        while self.above.remove(&(self.prefix + 1)) {
            self.prefix += 1;
        }
    }
}

struct Task {
    index: usize,
    shared: Arc<Shared>,
    /// Which senders this connection expects messages from.
    senders: HashSet<usize>,
    next_n: u64,
    /// Unanswered sends: n → when written.
    pending: HashMap<u64, Instant>,
    /// (sender, n) → seq of every message received, to spot duplicates.
    seen: HashMap<(usize, u64), u64>,
    /// Sends made again after a reconnect.
    retried: HashSet<u64>,
    /// What it has of each conversation (its cursors for sync).
    had: HashMap<String, Had>,
    /// The sync in flight, if any.
    syncing: Option<u64>,
    next_sync: u64,
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

    let mut churn_at = task.next_churn(Instant::now());
    let mut end_sync_at = Some(schedule.send_until + Duration::from_millis(500));
    let mut drain_sync = tokio::time::interval_at(
        schedule.send_until + Duration::from_secs(2),
        Duration::from_secs(2),
    );
    while task.out.closed_early.is_none() {
        let churning = churn_at.filter(|t| *t < schedule.send_until);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(churning.unwrap_or(schedule.epoch)), if churning.is_some() => {
                match task.reconnect(ws).await {
                    Ok(fresh) => ws = fresh,
                    Err(e) => {
                        task.out.closed_early = Some(e);
                        return task.finish();
                    }
                }
                churn_at = task.next_churn(Instant::now());
            }
            _ = tokio::time::sleep_until(end_sync_at.unwrap_or(schedule.epoch)), if end_sync_at.is_some() && shared.churn.is_some() => {
                end_sync_at = None;
                if let Err(e) = task.sync(&mut ws).await {
                    task.out.closed_early = Some(format!("sync failed: {e}"));
                }
            }
            _ = drain_sync.tick(), if shared.churn.is_some() && Instant::now() >= schedule.send_until => {
                if task.syncing.is_none() && let Err(e) = task.sync(&mut ws).await {
                    task.out.closed_early = Some(format!("sync failed: {e}"));
                }
            }
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
                    let (replied, more) = task.on_frame(text.as_str());
                    if more && let Err(e) = task.sync(&mut ws).await {
                        task.out.closed_early = Some(format!("sync failed: {e}"));
                    }
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
            seen: HashMap::new(),
            retried: HashSet::new(),
            had: HashMap::new(),
            syncing: None,
            next_sync: SYNC_IDS,
            out: Outcome {
                index,
                ..Outcome::default()
            },
            shared,
        }
    }

    /// When this connection next closes and reconnects, with churn.
    fn next_churn(&self, now: Instant) -> Option<Instant> {
        let mean = self.shared.churn?;
        // Uniform in [mean/2, 3·mean/2): a deterministic spread per connection and round.
        let r = (self.index as u64 * 2_654_435_761 + self.out.reconnects * 40_503) % 1000;
        Some(now + mean.mul_f64(0.5 + r as f64 / 1000.0))
    }

    /// Closes the socket and opens a new one as the same user (the gateway runs `$disconnect`
    /// and `$connect`); then sends again what was unanswered, and syncs.
    async fn reconnect(&mut self, mut ws: Ws) -> Result<Ws, String> {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        drop(ws);
        let url = self.shared.urls[self.index].clone();
        let mut last = String::new();
        for attempt in 0..10u32 {
            let connecting =
                tokio_tungstenite::connect_async_with_config(&url, Some(ws_config()), true);
            match tokio::time::timeout(self.shared.connect_timeout, connecting).await {
                Ok(Ok((mut fresh, _))) => {
                    self.out.reconnects += 1;
                    Counters::add(&self.shared.counters.reconnects, 1);
                    self.syncing = None;
                    // Replies to these may have been lost with the old socket: the same frames
                    // again (same id, same client_msg_id), as a client does.
                    let mut unanswered: Vec<u64> = self.pending.keys().copied().collect();
                    unanswered.sort_unstable();
                    for n in unanswered {
                        self.retried.insert(n);
                        let frame = self.send_frame(n, self.pending[&n]);
                        fresh
                            .send(Message::text(frame))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    self.sync(&mut fresh).await.map_err(|e| e.to_string())?;
                    return Ok(fresh);
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
        }
        Err(format!("reconnect failed: {last}"))
    }

    /// Asks for everything after its cursors (one page; the reply asks for the next).
    async fn sync(&mut self, ws: &mut Ws) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.next_sync += 1;
        let id = self.next_sync;
        self.syncing = Some(id);
        let since: BTreeMap<&str, u64> = self
            .had
            .iter()
            .map(|(c, h)| (c.as_str(), h.prefix))
            .collect();
        let frame = serde_json::json!({"action":"sync","id":id,"since":since,"limit":100});
        ws.send(Message::text(frame.to_string())).await
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

    /// Handles one server frame: (it answered one of our sends, another sync page is due).
    fn on_frame(&mut self, text: &str) -> (bool, bool) {
        let now = Instant::now();
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            self.out.unexpected += 1;
            return (false, false);
        };
        match frame.ty.as_ref() {
            "sent" => (self.on_sent(&frame, now), false),
            "error" => {
                let Some(_) = frame.id.and_then(|n| self.pending.remove(&n)) else {
                    self.out.unexpected += 1;
                    return (false, false);
                };
                let code = frame.code.as_deref().unwrap_or("?").to_owned();
                *self.out.errors.entry(code).or_default() += 1;
                Counters::add(&self.shared.counters.errors, 1);
                (true, false)
            }
            "message" => {
                self.on_message(&frame, now, false);
                (false, false)
            }
            "sync" if frame.id.is_some() && frame.id == self.syncing => {
                for m in &frame.messages {
                    self.on_message(m, now, true);
                }
                if !frame.more {
                    self.syncing = None;
                }
                (false, frame.more)
            }
            // A page of a sync abandoned by a reconnect.
            "sync" => (false, false),
            _ => {
                self.out.unexpected += 1;
                (false, false)
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
            // A second reply to one request: the server answered twice, or (with churn) the
            // first try's reply arrived after all.
            if !self.retried.contains(&n) {
                self.out.unexpected += 1;
            }
            return false;
        };
        self.had
            .entry(conversation.to_string())
            .or_default()
            .insert(seq);
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
            retried: self.retried.contains(&n),
        });
        Counters::add(&self.shared.counters.acked, 1);
        true
    }

    fn on_message(&mut self, frame: &Frame, now: Instant, via_sync: bool) {
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
        let (Some(conversation), Some(seq)) = (&frame.conversation, frame.seq) else {
            self.out.unexpected += 1;
            return;
        };
        self.had
            .entry(conversation.to_string())
            .or_default()
            .insert(seq);
        let (Some((sender, n)), Some(micros)) = (parsed, sent_micros) else {
            // A sync also returns the group's creation event and other non-generator frames.
            if !via_sync {
                self.out.unexpected += 1;
            }
            return;
        };
        if sender == self.index {
            // Its own message, back from a sync.
            return;
        }
        if !self.senders.contains(&sender) {
            self.out.unexpected += 1;
            return;
        }
        match self.seen.get(&(sender, n)) {
            Some(had) if *had == seq => {
                // Already had: dropped, as a client does. Live twice counts (without churn it
                // should not happen); a sync overlapping live delivery is expected.
                if !via_sync {
                    self.out.duplicates += 1;
                    Counters::add(&self.shared.counters.duplicates, 1);
                }
                return;
            }
            Some(_) => {
                self.out.stored_twice += 1;
                return;
            }
            None => {}
        }
        self.seen.insert((sender, n), seq);
        let schedule = self.shared.schedule;
        let sent_at = schedule.epoch + Duration::from_micros(micros);
        if schedule.measured(sent_at) && !via_sync {
            self.record(|l| &mut l.delivery, now.saturating_duration_since(sent_at));
        }
        if schedule.measured(now) {
            self.out.delivered_in_window += 1;
        }
        self.out.by_sync += u64::from(via_sync);
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
