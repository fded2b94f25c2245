//! `messenger-bench`: load the Messenger WebSocket API and report latency, throughput, loss.
//!
//! ```text
//! messenger-bench [--embedded | --reference | --url URL [--secret S]] [options]
//! messenger-bench serve-reference [--port N] [--nagle]
//! messenger-bench lambda-init [--runs N] BIN...
//! messenger-bench fuzz [--frames N] [--tokens N] [--seed S] [--workers W]
//! ```
//!
//! `messenger-bench --help` lists every option.

use anyhow::{Context, Result};
use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use messenger_bench::reference::{self, ReferenceConfig};
use messenger_bench::{BenchConfig, Load, Store, Target, Topology};
use std::path::PathBuf;
use std::time::Duration;

/// mimalloc instead of the system's malloc, for every target alike (the gateway, the reference
/// server and the load generator share this process): see docs/benchmarks.md, "Findings".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_STATUS: &str = "\
Exit status: 0 when nothing was lost or duplicated, 1 when something was, 2 on errors.
Logs of the in-process gateway: RUST_LOG (default warn).";

/// Load the Messenger WebSocket API and report latency, throughput and loss (JSON), or run one
/// of the commands below.
#[derive(Parser)]
#[command(name = "messenger-bench", version, after_help = EXIT_STATUS)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the reference server on 127.0.0.1:PORT until Ctrl-C (for --url runs)
    ServeReference(ServeReferenceArgs),
    /// For each Lambda bootstrap BIN: its size, and over N starts the time from process start to
    /// its first GET /2018-06-01/runtime/invocation/next on a stub Runtime API (127.0.0.1), and
    /// VmRSS at that moment. JSON on stdout
    LambdaInit(LambdaInitArgs),
    /// Fuzz the handler stack in process: N mutated frames of every action (structure-aware,
    /// byte-level, random bytes) and mutated tokens through the authorizer, from a seed; checks
    /// every frame is answered by a result or a typed error. JSON report on stdout; exit 1 with
    /// the seed and the frame on the first failure
    Fuzz(FuzzArgs),
}

#[derive(Args)]
struct FuzzArgs {
    /// Frames in total
    #[arg(long, value_name = "N", default_value_t = messenger_bench::fuzz::FuzzConfig::default().frames)]
    frames: u64,
    /// Authorizer tokens in total
    #[arg(long, value_name = "N", default_value_t = messenger_bench::fuzz::FuzzConfig::default().tokens)]
    tokens: u64,
    /// PRNG seed (worker w uses seed + w) [default: random]
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Worker threads
    #[arg(long, value_name = "W", default_value_t = 1)]
    workers: usize,
}

#[derive(Args)]
struct ServeReferenceArgs {
    /// Port to listen on
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Leave Nagle's algorithm on (like axum)
    #[arg(long)]
    nagle: bool,
}

#[derive(Args)]
struct LambdaInitArgs {
    /// Starts per binary
    #[arg(long, value_name = "N", default_value_t = 10)]
    runs: usize,
    /// Lambda bootstrap binaries
    #[arg(value_name = "BIN", required = true)]
    bins: Vec<PathBuf>,
}

/// The benchmark run (no command): one target, one load.
#[derive(Args)]
struct RunArgs {
    /// Start messenger-local in this process (the default target)
    #[arg(long, help_heading = "Target", conflicts_with_all = REFERENCE_OR_URL)]
    embedded: bool,
    /// The store of --embedded; dynamodb creates fresh tables [default: memory]
    #[arg(long, value_enum, help_heading = "Target", conflicts_with_all = REFERENCE_OR_URL)]
    store: Option<StoreKind>,
    /// The endpoint of --store dynamodb, e.g. MiniStack's (endpoint=$(localstack/ministack
    /// start)) [default: $MESSENGER_DYNAMODB_ENDPOINT]
    #[arg(long, value_name = "URL", help_heading = "Target", conflicts_with_all = REFERENCE_OR_URL)]
    dynamodb_endpoint: Option<String>,
    /// Start the raw reference fan-out server in this process
    #[arg(long, help_heading = "Target", conflicts_with = "url")]
    reference: bool,
    /// The reference server, leaving Nagle's algorithm on (like axum)
    #[arg(long, help_heading = "Target", conflicts_with = "url")]
    reference_nagle: bool,
    /// The reference server with this read buffer per socket, in bytes [default: 8192;
    /// tungstenite's and axum's is 131072]
    #[arg(
        long,
        value_name = "N",
        help_heading = "Target",
        conflicts_with = "url"
    )]
    reference_read_buffer: Option<usize>,
    /// Any running gateway (ws://HOST:PORT/STAGE); tokens are minted with --secret
    #[arg(long, help_heading = "Target")]
    url: Option<String>,
    /// The HS256 secret of --url [default: the development secret]
    #[arg(long, value_name = "S", help_heading = "Target", requires = "url")]
    secret: Option<String>,

    /// Connections, one user each, in pairs
    #[arg(long, value_name = "N", default_value_t = BenchConfig::default().connections)]
    connections: usize,
    /// Groups of G members (2 to 256, N a multiple of G) instead of pairs, created with
    /// create_group; every message goes to G-1 members
    #[arg(
        long,
        value_name = "G",
        value_parser = RangedU64ValueParser::<usize>::new().range(2..=256)
    )]
    groups: Option<usize>,
    /// Open loop: R sends/s in total
    #[arg(long, value_name = "R", default_value_t = default_rate())]
    rate: f64,
    /// Closed loop instead: W unanswered sends per connection
    #[arg(long, value_name = "W", conflicts_with = "rate")]
    window: Option<usize>,
    /// Measured seconds
    #[arg(long, value_name = "S", default_value_t = BenchConfig::default().duration.as_secs_f64())]
    duration: f64,
    /// Seconds before measuring
    #[arg(long, value_name = "S", default_value_t = BenchConfig::default().warmup.as_secs_f64())]
    warmup: f64,
    /// Longest wait for stragglers after sending stops, in seconds
    #[arg(
        long,
        value_name = "S",
        default_value_t = BenchConfig::default().drain_timeout.as_secs_f64()
    )]
    drain: f64,
    /// Message body size in bytes
    #[arg(long, value_name = "B", default_value_t = BenchConfig::default().body_bytes)]
    body_bytes: usize,
    /// Handshakes in progress at once
    #[arg(long, value_name = "C", default_value_t = BenchConfig::default().connect_concurrency)]
    connect_concurrency: usize,
    /// Open loop: unanswered sends per connection before skipping
    #[arg(long, value_name = "M", default_value_t = BenchConfig::default().max_inflight)]
    max_inflight: usize,
    /// Connection churn: each connection closes, reconnects (sending its unanswered sends
    /// again) and syncs about every S seconds while sending, and syncs at the end; a message
    /// it already has is dropped, as a client does
    #[arg(long, value_name = "S")]
    churn_secs: Option<f64>,
    /// User ids are P-<n> [default: fresh per run]
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Write the JSON result there [default: stdout]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress lines
    #[arg(long)]
    quiet: bool,
}

/// The targets other than `--embedded`, which the embedded gateway's options conflict with.
const REFERENCE_OR_URL: [&str; 4] = [
    "reference",
    "reference_nagle",
    "reference_read_buffer",
    "url",
];

/// The value of `--store`.
#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    /// messenger-local's in-memory store
    Memory,
    /// DynamoDB at --dynamodb-endpoint, through the production adapter
    #[value(name = "dynamodb")]
    DynamoDb,
}

fn default_rate() -> f64 {
    match BenchConfig::default().load {
        Load::Rate(rate) => rate,
        Load::Window(_) => unreachable!("the default load is open loop"),
    }
}

fn main() -> std::process::ExitCode {
    // Usage errors exit with 2 (clap's code), before anything starts.
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("messenger-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// A usage error found after parsing: clap's message and usage line, exit status 2.
fn usage_error(kind: ErrorKind, message: &str) -> ! {
    Cli::command().error(kind, message).exit()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl RunArgs {
    /// The embedded gateway's store; the endpoint defaults to `MESSENGER_DYNAMODB_ENDPOINT`
    /// (read only for `--store dynamodb`: bench/run.sh exports it for its in-memory runs too).
    fn store(&self) -> Store {
        match (self.store, &self.dynamodb_endpoint) {
            (None | Some(StoreKind::Memory), None) => Store::Memory,
            (None | Some(StoreKind::Memory), Some(_)) => usage_error(
                ErrorKind::MissingRequiredArgument,
                "--dynamodb-endpoint needs --store dynamodb",
            ),
            (Some(StoreKind::DynamoDb), endpoint) => Store::DynamoDb {
                endpoint: endpoint
                    .clone()
                    .or_else(|| std::env::var("MESSENGER_DYNAMODB_ENDPOINT").ok())
                    .unwrap_or_else(|| {
                        usage_error(
                            ErrorKind::MissingRequiredArgument,
                            "--store dynamodb needs --dynamodb-endpoint URL or \
                             MESSENGER_DYNAMODB_ENDPOINT",
                        )
                    }),
            },
        }
    }

    /// What to load: clap has already refused two targets at once.
    fn target(&self) -> Target {
        if let Some(url) = &self.url {
            let secret = self
                .secret
                .as_deref()
                .unwrap_or(messenger::auth::DEV_SECRET);
            return Target::Url {
                url: url.clone(),
                secret: secret.as_bytes().to_vec(),
            };
        }
        if self.reference || self.reference_nagle || self.reference_read_buffer.is_some() {
            let defaults = ReferenceConfig::default();
            return Target::Reference(ReferenceConfig {
                nodelay: !self.reference_nagle,
                read_buffer_bytes: self
                    .reference_read_buffer
                    .unwrap_or(defaults.read_buffer_bytes),
                ..defaults
            });
        }
        Target::Embedded(self.store())
    }

    fn config(&self) -> BenchConfig {
        BenchConfig {
            target: self.target(),
            topology: match self.groups {
                Some(size) => Topology::Groups { size },
                None => Topology::Pairs,
            },
            connections: self.connections,
            load: match self.window {
                Some(w) => Load::Window(w),
                None => Load::Rate(self.rate),
            },
            duration: secs(self.duration),
            warmup: secs(self.warmup),
            drain_timeout: secs(self.drain),
            body_bytes: self.body_bytes,
            connect_concurrency: self.connect_concurrency,
            max_inflight: self.max_inflight,
            user_prefix: self.prefix.clone(),
            progress: !self.quiet,
            churn: self.churn_secs.map(secs),
            ..BenchConfig::default()
        }
    }
}

fn real_main(cli: Cli) -> Result<bool> {
    let config = cli.command.is_none().then(|| cli.run.config());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match cli.command {
        Some(Command::ServeReference(args)) => runtime
            .block_on(serve_reference(args.port, !args.nagle))
            .map(|()| true),
        Some(Command::LambdaInit(args)) => lambda_init(&args).map(|()| true),
        Some(Command::Fuzz(args)) => fuzz(&args),
        None => {
            let config = config.expect("built above for a run");
            let report = runtime.block_on(messenger_bench::run(config))?;
            eprintln!("{}", report.summary());
            let json = serde_json::to_string_pretty(&report)?;
            match cli.run.json {
                Some(path) => std::fs::write(&path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{json}"),
            }
            Ok(report.ok)
        }
    }
}

fn fuzz(args: &FuzzArgs) -> Result<bool> {
    let config = messenger_bench::fuzz::FuzzConfig {
        frames: args.frames,
        tokens: args.tokens,
        seed: args.seed.unwrap_or_else(clock_seed),
        workers: args.workers,
        ..Default::default()
    };
    eprintln!(
        "fuzzing {} frames and {} tokens, seed {}, {} worker(s)",
        config.frames, config.tokens, config.seed, config.workers
    );
    match messenger_bench::fuzz::run(&config) {
        Ok(report) => {
            eprintln!(
                "{} frames in {:.1} s ({:.0}/s), {} tokens ({} allowed), 0 failures",
                report.frames,
                report.seconds,
                report.frames_per_second,
                report.tokens,
                report.tokens_allowed
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(true)
        }
        Err(failure) => {
            eprintln!("FAILED: {failure}");
            Ok(false)
        }
    }
}

/// A seed from the clock (the run prints it, so a failure can be replayed).
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn lambda_init(args: &LambdaInitArgs) -> Result<()> {
    let mut reports = Vec::new();
    for bin in &args.bins {
        let r = messenger_bench::lambda_init::measure(bin, args.runs)
            .with_context(|| format!("measuring {}", bin.display()))?;
        eprintln!(
            "{}: {:.1} MB; init ms min {:.1} median {:.1} max {:.1}; RSS {:.1} MiB",
            bin.display(),
            r.size_bytes as f64 / 1e6,
            r.init_ms_min,
            r.init_ms_median,
            r.init_ms_max,
            r.rss_kib_median as f64 / 1024.0
        );
        reports.push(r);
    }
    println!("{}", serde_json::to_string_pretty(&reports)?);
    Ok(())
}

async fn serve_reference(port: u16, nodelay: bool) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    println!(
        "reference server ready: ws://{}/?token=<token>",
        listener.local_addr()?
    );
    let config = ReferenceConfig {
        nodelay,
        ..ReferenceConfig::default()
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    reference::serve(listener, config, shutdown).await?;
    Ok(())
}
