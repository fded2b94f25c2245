//! Orchestration layer: one benchmark run from start to report.
//!
//! 1. Start the target in this process when asked (embedded gateway — on the in-memory store or
//!    on fresh DynamoDB tables — or reference server, each on a free loopback port), or take a URL.
//! 2. Open every connection, at most `connect_concurrency` handshakes at a time, before any load.
//! 3. Set up: a group topology creates its groups (`create_group` from each group's first member).
//! 4. Warm up, then measure for `duration`, printing a progress line each second.
//! 5. Stop sending and drain: wait until every send is answered and every acknowledged message
//!    delivered (or the drain timeout passes: what is still missing then is lost).
//! 6. Close the connections, merge their outcomes, check them, and report.

use crate::client::{self, Counters, Outcome, Pace, Schedule, Shared, Ws};
use crate::plan::{Plan, Topology};
use crate::reference::{self, ReferenceConfig};
use crate::report::{
    self, ConnectStats, DynamoCost, Latency, ProcessCost, Report, RunInfo, Throughput,
};
use crate::{BenchError, setup, sys};
use messenger::auth;
use messenger::domain::{DeviceId, UserId};
use messenger_aws::{DynamoStore, Snapshot};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What to load.
#[derive(Debug, Clone)]
pub enum Target {
    /// Any Messenger WebSocket endpoint (`ws://host:port/stage`); tokens are minted with
    /// `secret`, which must be the one the target verifies with.
    Url { url: String, secret: Vec<u8> },
    /// `messenger-local` started in this process on a free loopback port, over `Store`.
    Embedded(Store),
    /// The raw reference server started in this process on a free loopback port.
    Reference(ReferenceConfig),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Url { .. } => "url",
            Self::Embedded(_) => "embedded",
            Self::Reference(_) => "reference",
        }
    }
}

/// The stores behind an in-process embedded gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Store {
    /// `messenger::Stores::in_memory()`, as `messenger-local serve` runs by default.
    #[default]
    Memory,
    /// `DynamoStore` over new tables (`bench<time>-*`, created by the run) at `endpoint`
    /// (MiniStack, LocalStack or DynamoDB Local), appends queued per conversation in-process
    /// as `messenger-local` does.
    DynamoDb { endpoint: String },
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::DynamoDb { .. } => "dynamodb",
        }
    }
}

/// How much load to offer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Open loop: this many sends per second in total, spread evenly over the connections.
    Rate(f64),
    /// Closed loop: each connection keeps this many sends unanswered (capacity search).
    Window(usize),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub target: Target,
    pub topology: Topology,
    /// Open connections (one user each).
    pub connections: usize,
    pub load: Load,
    /// Measured time, after the warm-up.
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait for outstanding replies and deliveries after sending stops.
    pub drain_timeout: Duration,
    pub body_bytes: usize,
    /// Most WebSocket handshakes in progress at once.
    pub connect_concurrency: usize,
    /// Longest wait for one handshake.
    pub connect_timeout: Duration,
    /// Open loop: unanswered sends per connection before ticks are skipped.
    pub max_inflight: usize,
    /// User ids are `<prefix>-<n>`; fresh by default so conversations start at seq 1.
    pub user_prefix: Option<String>,
    /// Print a progress line each second on stderr.
    pub progress: bool,
    /// Connection churn: each connection closes, reconnects and syncs after a lifetime of
    /// about this long (uniform from half to one and a half times it), while sending.
    pub churn: Option<Duration>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            target: Target::Embedded(Store::Memory),
            topology: Topology::Pairs,
            connections: 100,
            load: Load::Rate(1000.0),
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            body_bytes: 100,
            connect_concurrency: 32,
            connect_timeout: Duration::from_secs(15),
            max_inflight: 1000,
            user_prefix: None,
            progress: true,
            churn: None,
        }
    }
}

/// A server this run started, stopped when dropped.
struct Started {
    url: String,
    secret: Vec<u8>,
    /// The DynamoDB store of an embedded gateway, for its request counters.
    dynamo: Option<DynamoStore>,
    _shutdown: Option<oneshot::Sender<()>>,
}

async fn start(target: &Target) -> Result<Started, BenchError> {
    let bind = || async {
        TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| BenchError::Serve {
                what: target.name(),
                source,
            })
    };
    let (tx, rx) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = rx.await;
    };
    match target {
        Target::Url { url, secret } => Ok(Started {
            url: url.clone(),
            secret: secret.clone(),
            dynamo: None,
            _shutdown: None,
        }),
        Target::Embedded(store) => {
            let listener = bind().await?;
            let addr = listener.local_addr().map_err(|source| BenchError::Serve {
                what: "embedded",
                source,
            })?;
            let mut config = messenger_local::GatewayConfig::default();
            // A benchmark measures throughput: per-user rate limits would measure themselves.
            config.limits.rates = messenger::ratelimit::RateLimits::OFF;
            let (url, secret) = (
                format!("ws://{addr}/{}", config.stage),
                config.jwt_secret.clone(),
            );
            let (stores, dynamo) = match store {
                Store::Memory => (messenger::Stores::in_memory(), None),
                Store::DynamoDb { endpoint } => {
                    let store = fresh_dynamo_store(endpoint).await?;
                    let stores = messenger::Stores::from_one(Arc::new(store.clone()));
                    (stores, Some(store))
                }
            };
            tokio::spawn(async move {
                if let Err(e) = messenger_local::serve(listener, config, stores, stopped).await {
                    eprintln!("embedded gateway stopped: {e}");
                }
            });
            Ok(Started {
                url,
                secret,
                dynamo,
                _shutdown: Some(tx),
            })
        }
        Target::Reference(config) => {
            let listener = bind().await?;
            let addr = listener.local_addr().map_err(|source| BenchError::Serve {
                what: "reference",
                source,
            })?;
            let (url, secret) = (format!("ws://{addr}/"), config.jwt_secret.clone());
            let config = config.clone();
            tokio::spawn(async move {
                if let Err(e) = reference::serve(listener, config, stopped).await {
                    eprintln!("reference server stopped: {e}");
                }
            });
            Ok(Started {
                url,
                secret,
                dynamo: None,
                _shutdown: Some(tx),
            })
        }
    }
}

/// A `DynamoStore` over new tables named `bench<millis>-…` at `endpoint`, as messenger-local
/// runs it (appends queued per conversation in this process).
async fn fresh_dynamo_store(endpoint: &str) -> Result<DynamoStore, BenchError> {
    let sdk = messenger_aws::sdk::for_endpoint(endpoint).await;
    let prefix = format!("bench{}-", chrono::Utc::now().timestamp_millis());
    let store = DynamoStore::new(&sdk, messenger_aws::Tables::with_prefix(&prefix))
        .with_local_append_lock();
    store
        .create_tables()
        .await
        .map_err(|e| BenchError::Setup(format!("creating tables at {endpoint}: {e}")))?;
    Ok(store)
}

fn token_url(base: &str, secret: &[u8], user: &str) -> Result<String, BenchError> {
    let user = UserId::new(user).map_err(|e| BenchError::Config(e.to_string()))?;
    let device = DeviceId::new("bench").expect("a valid device id");
    let now = chrono::Utc::now();
    let token = auth::mint(
        secret,
        &user,
        Some(&device),
        now,
        now + chrono::Duration::hours(3),
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}token={token}"))
}

/// Opens every connection of the plan with at most `concurrency` handshakes at a time.
async fn connect_all(
    config: &BenchConfig,
    plan: &Plan,
    started: &Started,
) -> Result<(Vec<Ws>, ConnectStats), BenchError> {
    let began = Instant::now();
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let mut set = JoinSet::new();
    for (index, user) in plan.users.iter().enumerate() {
        let url = token_url(&started.url, &started.secret, user)?;
        let gate = gate.clone();
        let timeout = config.connect_timeout;
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let t0 = Instant::now();
            // Nagle off: small frames must not wait for the peer's delayed ACK.
            let connecting =
                tokio_tungstenite::connect_async_with_config(url, Some(client::ws_config()), true);
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok((ws, _))) => Ok((index, ws, t0.elapsed())),
                Ok(Err(source)) => Err(BenchError::Connect { index, source }),
                Err(_) => Err(BenchError::ConnectTimeout {
                    index,
                    seconds: timeout.as_secs(),
                }),
            }
        });
    }
    let mut slots: Vec<Option<Ws>> = (0..plan.len()).map(|_| None).collect();
    let mut latency = client::histogram();
    while let Some(joined) = set.join_next().await {
        let (index, ws, took) = joined??;
        latency.saturating_record((took.as_micros() as u64).max(1));
        slots[index] = Some(ws);
    }
    let seconds = began.elapsed().as_secs_f64();
    let conns = slots
        .into_iter()
        .map(|s| s.expect("every slot filled"))
        .collect();
    Ok((
        conns,
        ConnectStats {
            seconds,
            per_second: plan.len() as f64 / seconds.max(1e-9),
            latency_ms: Latency::of(&latency),
        },
    ))
}

/// Prints one line a second until `stop` fires: rates over the last second and totals.
async fn progress(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let c = &shared.counters;
    let read = || {
        [
            c.sent.load(Ordering::Relaxed),
            c.acked.load(Ordering::Relaxed),
            c.delivered.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
            c.duplicates.load(Ordering::Relaxed),
            c.skipped.load(Ordering::Relaxed),
            c.closed.load(Ordering::Relaxed),
            c.reconnects.load(Ordering::Relaxed),
        ]
    };
    let mut last = read();
    let mut tick = tokio::time::interval_at(
        shared.schedule.epoch + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = read();
        let s = shared.schedule;
        let t = Instant::now();
        let phase = if t < s.measure_from {
            "warmup"
        } else if t < s.send_until {
            "measure"
        } else {
            "drain"
        };
        eprintln!(
            "[{:>4.0}s {phase:>7}] sent {:>6}/s acked {:>6}/s delivered {:>6}/s | in flight {:>6} \
             errors {} dup {} skipped {} closed {} reconnects {} | rss {:.0} MiB",
            t.duration_since(s.epoch).as_secs_f64(),
            now[0] - last[0],
            now[1] - last[1],
            now[2] - last[2],
            now[0].saturating_sub(now[1] + now[3]),
            now[3],
            now[4],
            now[5],
            now[6],
            now[7],
            crate::sys::rss_kib() as f64 / 1024.0,
        );
        last = now;
    }
}

/// The process's RSS every 10 s from `epoch` (and at the stop), as (seconds, MiB).
async fn sample_rss(epoch: Instant, mut stop: watch::Receiver<bool>) -> Vec<(f64, f64)> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(epoch, Duration::from_secs(10));
    let read = || {
        (
            Instant::now().duration_since(epoch).as_secs_f64(),
            crate::sys::rss_kib() as f64 / 1024.0,
        )
    };
    loop {
        tokio::select! {
            _ = stop.changed() => {
                samples.push(read());
                return samples;
            }
            _ = tick.tick() => samples.push(read()),
        }
    }
}

/// True when every send is answered and every acknowledged message delivered.
fn settled(c: &Counters, fanout: u64) -> bool {
    let sent = c.sent.load(Ordering::Relaxed);
    let acked = c.acked.load(Ordering::Relaxed);
    let errors = c.errors.load(Ordering::Relaxed);
    let delivered = c.delivered.load(Ordering::Relaxed);
    sent == acked + errors && delivered >= acked * fanout
}

/// Runs one benchmark and reports what it saw. Lost or duplicated messages are in the report
/// (`ok` is false); an `Err` means the run itself could not be carried out.
pub async fn run(config: BenchConfig) -> Result<Report, BenchError> {
    if config.duration.is_zero() {
        return Err(BenchError::Config("the duration must be positive".into()));
    }
    let in_process = !matches!(config.target, Target::Url { .. });
    let fds = config.connections as u64 * if in_process { 2 } else { 1 } + 256;
    if let Err(e) = sys::raise_open_files(fds) {
        eprintln!("could not raise the open-file limit to {fds}: {e}");
    }
    let prefix = config.user_prefix.clone().unwrap_or_else(|| {
        format!(
            "bench{}",
            chrono::Utc::now().timestamp_millis() % 10_000_000_000
        )
    });
    let mut plan = Plan::new(config.topology, config.connections, &prefix)?;
    let started = start(&config.target).await?;
    let (mut conns, connect) = connect_all(&config, &plan, &started).await?;
    if config.progress {
        eprintln!(
            "{} connections open in {:.1}s ({:.0}/s) to {}",
            plan.len(),
            connect.seconds,
            connect.per_second,
            started.url
        );
    }
    if !plan.groups_of().is_empty() {
        let began = Instant::now();
        conns = setup::create_groups(&mut plan, conns, config.connect_concurrency).await?;
        if config.progress {
            eprintln!(
                "{} groups created in {:.1}s",
                plan.groups_of().len(),
                began.elapsed().as_secs_f64()
            );
        }
    }

    let pace = match config.load {
        Load::Rate(r) if r > 0.0 => Pace::Every {
            period: Duration::from_secs_f64(plan.len() as f64 / r),
        },
        Load::Rate(r) => return Err(BenchError::Config(format!("rate must be > 0, got {r}"))),
        Load::Window(w) => Pace::Window { window: w.max(1) },
    };
    // A little slack so every task is spawned before time zero.
    let epoch = Instant::now() + Duration::from_millis(100);
    let schedule = Schedule {
        epoch,
        measure_from: epoch + config.warmup,
        send_until: epoch + config.warmup + config.duration,
    };
    let fanout = plan.recipients.iter().map(Vec::len).max().unwrap_or(1) as u64;
    let urls = plan
        .users
        .iter()
        .map(|u| token_url(&started.url, &started.secret, u))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        plan,
        churn: config.churn,
        urls,
        connect_timeout: config.connect_timeout,
        schedule,
        pace,
        body_bytes: config.body_bytes,
        max_inflight: config.max_inflight.max(1),
        counters: Counters::default(),
        latencies: Default::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (index, ws) in conns.into_iter().enumerate() {
        tasks.spawn(client::drive(ws, index, shared.clone(), stop_rx.clone()));
    }
    let printer = config
        .progress
        .then(|| tokio::spawn(progress(shared.clone(), stop_rx.clone())));
    let rss_sampler = tokio::spawn(sample_rss(schedule.epoch, stop_rx.clone()));

    tokio::time::sleep_until(schedule.measure_from).await;
    let (cpu_from, _) = sys::usage();
    let db_from = started.dynamo.as_ref().map(DynamoStore::counters);
    tokio::time::sleep_until(schedule.send_until).await;
    let (cpu_to, _) = sys::usage();
    let db_window = started
        .dynamo
        .as_ref()
        .zip(db_from)
        .map(|(s, from)| s.counters().since(&from));
    let drain_deadline = Instant::now() + config.drain_timeout;
    while !settled(&shared.counters, fanout) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(shared.plan.len());
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined?);
    }
    if let Some(p) = printer {
        let _ = p.await;
    }
    let rss_mib = rss_sampler.await.unwrap_or_default();
    outcomes.sort_by_key(|o| o.index);
    let (_, peak_rss_kib) = sys::usage();
    let url = started.url.clone();
    // Stops the in-process server (its sockets are closed by now).
    drop(started);

    let merged = report::merge(&shared.plan, &outcomes, config.churn.is_some());
    let window = config.duration.as_secs_f64();
    let cpu = (cpu_to - cpu_from).as_secs_f64();
    let delivered_per_s = merged.delivered_in_window as f64 / window;
    let dynamodb = db_window.map(|w| dynamo_cost(&w, &merged));
    let mut latency_ms = BTreeMap::new();
    {
        let l = shared.latencies.lock().unwrap_or_else(|e| e.into_inner());
        latency_ms.insert("send_to_sent", Latency::of(&l.sent));
        latency_ms.insert("send_to_message", Latency::of(&l.delivery));
    }
    let (rate, window_per_conn) = match config.load {
        Load::Rate(r) => (Some(r), None),
        Load::Window(w) => (None, Some(w)),
    };
    Ok(Report {
        run: RunInfo {
            target: config.target.name().into(),
            store: match &config.target {
                Target::Embedded(store) => Some(store.name().into()),
                _ => None,
            },
            url,
            topology: config.topology,
            connections: config.connections,
            load: if rate.is_some() { "rate" } else { "window" }.into(),
            rate_per_s: rate,
            window: window_per_conn,
            duration_s: window,
            warmup_s: config.warmup.as_secs_f64(),
            body_bytes: config.body_bytes,
            connect_concurrency: config.connect_concurrency,
            churn_s: config.churn.map(|c| c.as_secs_f64()),
        },
        machine: sys::machine(),
        connect,
        ok: merged.messages.ok(),
        messages: merged.messages,
        throughput: Throughput {
            window_s: window,
            offered_per_s: rate,
            acked_per_s: merged.acked_in_window as f64 / window,
            delivered_per_s,
        },
        latency_ms,
        process: ProcessCost {
            cpu_percent: 100.0 * cpu / window,
            cpu_us_per_delivered: (merged.delivered_in_window > 0)
                .then(|| cpu * 1e6 / merged.delivered_in_window as f64),
            peak_rss_mib: peak_rss_kib as f64 / 1024.0,
            rss_mib_over_time: rss_mib,
        },
        dynamodb,
    })
}

/// DynamoDB requests and units over the measured window, in total and per message sent
/// (acknowledged) in it.
fn dynamo_cost(window: &Snapshot, merged: &report::Merged) -> DynamoCost {
    let per = |x: f64| (merged.acked_in_window > 0).then(|| x / merged.acked_in_window as f64);
    let requests: BTreeMap<String, u64> = window
        .0
        .iter()
        .map(|(op, s)| (op.clone(), s.requests))
        .collect();
    DynamoCost {
        requests_per_message: per(window.total_requests() as f64),
        write_units_per_message: per(window.write_units()),
        read_units_per_message: per(window.read_units()),
        requests,
        read_units: window.read_units(),
        write_units: window.write_units(),
    }
}
