//! `messenger-bench`: load the Messenger WebSocket API and report latency, throughput, loss.
//!
//! ```text
//! messenger-bench [--embedded | --reference | --url URL [--secret S]] [options]
//! messenger-bench serve-reference [--port N] [--nagle]
//! messenger-bench lambda-init [--runs N] BIN...
//! ```

use anyhow::{Context, Result, bail};
use messenger_bench::reference::{self, ReferenceConfig};
use messenger_bench::{BenchConfig, Load, Store, Target, Topology};
use std::time::Duration;

const USAGE: &str = "\
usage:
  messenger-bench [TARGET] [OPTIONS]
    TARGET (default --embedded):
      --embedded              start messenger-local in this process
        --store memory|dynamodb   its store (default memory); dynamodb creates fresh tables
        --dynamodb-endpoint URL   for --store dynamodb (default: $MESSENGER_DYNAMODB_ENDPOINT),
                              e.g. MiniStack's: endpoint=$(localstack/ministack start)
      --reference             start the raw reference fan-out server in this process
      --reference-nagle       the reference server, leaving Nagle's algorithm on (like axum)
      --reference-read-buffer N   the reference server's read buffer per socket (default 8192;
                              tungstenite's and axum's default is 131072)
      --url ws://HOST:PORT/STAGE   any running gateway; tokens are minted with --secret
      --secret S              HS256 secret (default: the development secret)
    OPTIONS:
      --connections N         connections, one user each, in pairs (default 100)
      --groups G              groups of G members instead of pairs (2..=256; N a multiple of
                              G), created with create_group; every message goes to G-1 members
      --rate R                open loop: R sends/s in total (default 1000)
      --window W              closed loop instead: W unanswered sends per connection
      --duration S            measured seconds (default 10)
      --warmup S              seconds before measuring (default 2)
      --drain S               longest wait for stragglers after sending stops (default 10)
      --body-bytes B          message body size (default 100)
      --connect-concurrency C handshakes in progress at once (default 32)
      --max-inflight M        open loop: unanswered sends per connection before skipping (1000)
      --prefix P              user ids are P-<n> (default: fresh per run)
      --json FILE             write the JSON result there (default: stdout)
      --quiet                 no progress lines
  messenger-bench serve-reference [--port N] [--nagle]
      Serve the reference server on 127.0.0.1:N until Ctrl-C (for --url runs).
  messenger-bench lambda-init [--runs N] BIN...
      For each Lambda bootstrap BIN: size, and over N starts (default 10) the time from process
      start to its first GET /2018-06-01/runtime/invocation/next on a stub Runtime API
      (127.0.0.1), and VmRSS at that moment. JSON on stdout.

Exit status: 0 when nothing was lost or duplicated, 1 when something was, 2 on errors.
Logs of the in-process gateway: RUST_LOG (default warn).";

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("messenger-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `--flag` and `--name value` arguments.
struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        self.0.len() != before
    }

    fn value<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        let Some(i) = self.0.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.0.len() {
            bail!("{name} needs a value");
        }
        let raw = self.0.remove(i + 1);
        self.0.remove(i);
        raw.parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{name} {raw:?}: {e}"))
    }

    fn done(self) -> Result<()> {
        if let Some(a) = self.0.first() {
            bail!("unexpected argument {a:?}\n\n{USAGE}");
        }
        Ok(())
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn real_main() -> Result<bool> {
    let mut args = Args(std::env::args().skip(1).collect());
    if args.flag("-h") || args.flag("--help") {
        println!("{USAGE}");
        return Ok(true);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    if args.0.first().map(String::as_str) == Some("serve-reference") {
        args.0.remove(0);
        let port: u16 = args.value("--port")?.unwrap_or(8090);
        let nagle = args.flag("--nagle");
        args.done()?;
        return runtime
            .block_on(serve_reference(port, !nagle))
            .map(|()| true);
    }

    if args.0.first().map(String::as_str) == Some("lambda-init") {
        args.0.remove(0);
        let runs: usize = args.value("--runs")?.unwrap_or(10);
        if args.0.is_empty() || args.0.iter().any(|a| a.starts_with("--")) {
            bail!("lambda-init needs one or more binaries\n\n{USAGE}");
        }
        let mut reports = Vec::new();
        for bin in &args.0 {
            let r = messenger_bench::lambda_init::measure(std::path::Path::new(bin), runs)
                .with_context(|| format!("measuring {bin}"))?;
            eprintln!(
                "{bin}: {:.1} MB; init ms min {:.1} median {:.1} max {:.1}; RSS {:.1} MiB",
                r.size_bytes as f64 / 1e6,
                r.init_ms_min,
                r.init_ms_median,
                r.init_ms_max,
                r.rss_kib_median as f64 / 1024.0
            );
            reports.push(r);
        }
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(true);
    }
    let secret = args
        .value::<String>("--secret")?
        .map(String::into_bytes)
        .unwrap_or_else(|| messenger::auth::DEV_SECRET.as_bytes().to_vec());
    let url: Option<String> = args.value("--url")?;
    let embedded = args.flag("--embedded");
    let store_name: Option<String> = args.value("--store")?;
    let endpoint: Option<String> = args.value("--dynamodb-endpoint")?;
    let store = match store_name.as_deref() {
        None | Some("memory") if endpoint.is_none() => Store::Memory,
        None | Some("memory") => bail!("--dynamodb-endpoint needs --store dynamodb"),
        Some("dynamodb") => Store::DynamoDb {
            endpoint: endpoint
                .or_else(|| std::env::var("MESSENGER_DYNAMODB_ENDPOINT").ok())
                .context(
                    "--store dynamodb needs --dynamodb-endpoint URL or MESSENGER_DYNAMODB_ENDPOINT",
                )?,
        },
        Some(other) => bail!("--store {other:?}: expected memory or dynamodb"),
    };

    let reference = args.flag("--reference");
    let reference_nagle = args.flag("--reference-nagle");
    let read_buffer: Option<usize> = args.value("--reference-read-buffer")?;
    let reference_config = ReferenceConfig {
        nodelay: !reference_nagle,
        read_buffer_bytes: read_buffer
            .unwrap_or_else(|| ReferenceConfig::default().read_buffer_bytes),
        ..ReferenceConfig::default()
    };
    let target = match (url, embedded, reference, reference_nagle) {
        (Some(url), false, false, false) => Target::Url { url, secret },
        (None, _, false, false) if read_buffer.is_none() => Target::Embedded(store.clone()),
        (None, false, _, _) if reference || reference_nagle || read_buffer.is_some() => {
            Target::Reference(reference_config)
        }
        _ => bail!("choose one target: --embedded, --reference, --reference-nagle or --url"),
    };
    if store != Store::Memory && !matches!(target, Target::Embedded(_)) {
        bail!("--store applies to the embedded gateway only");
    }
    let defaults = BenchConfig::default();
    let window: Option<usize> = args.value("--window")?;
    let rate: Option<f64> = args.value("--rate")?;
    let load = match (window, rate) {
        (Some(_), Some(_)) => bail!("--rate and --window exclude each other"),
        (Some(w), None) => Load::Window(w),
        (None, Some(r)) => Load::Rate(r),
        (None, None) => defaults.load,
    };
    let config = BenchConfig {
        target,
        topology: match args.value("--groups")? {
            Some(size) => Topology::Groups { size },
            None => Topology::Pairs,
        },
        connections: args.value("--connections")?.unwrap_or(defaults.connections),
        load,
        duration: args
            .value("--duration")?
            .map(secs)
            .unwrap_or(defaults.duration),
        warmup: args.value("--warmup")?.map(secs).unwrap_or(defaults.warmup),
        drain_timeout: args
            .value("--drain")?
            .map(secs)
            .unwrap_or(defaults.drain_timeout),
        body_bytes: args.value("--body-bytes")?.unwrap_or(defaults.body_bytes),
        connect_concurrency: args
            .value("--connect-concurrency")?
            .unwrap_or(defaults.connect_concurrency),
        max_inflight: args
            .value("--max-inflight")?
            .unwrap_or(defaults.max_inflight),
        user_prefix: args.value("--prefix")?,
        progress: !args.flag("--quiet"),
        ..defaults
    };
    let json_file: Option<String> = args.value("--json")?;
    args.done()?;

    let report = runtime.block_on(messenger_bench::run(config))?;
    eprintln!("{}", report.summary());
    let json = serde_json::to_string_pretty(&report)?;
    match json_file {
        Some(path) => {
            std::fs::write(&path, json + "\n").with_context(|| format!("writing {path}"))?
        }
        None => println!("{json}"),
    }
    Ok(report.ok)
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
