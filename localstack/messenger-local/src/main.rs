//! `messenger-local`: run Messenger on this machine, or mint a token for it.
//!
//! ```text
//! messenger-local serve [--port 8080] [--host 127.0.0.1] [--stage local] [options]
//! messenger-local token USER [--device D] [--hours 24]
//! ```

use chrono::Utc;
use messenger::Stores;
use messenger::auth::{self, DEV_SECRET};
use messenger::domain::{DeviceId, UserId};
use messenger_local::GatewayConfig;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  messenger-local serve [--port N] [--host ADDR] [--stage NAME] [--max-body-bytes N]
                        [--idle-timeout-secs N] [--max-connection-secs N] [--two-way ROUTE]...
                        [--store memory|dynamodb] [--dynamodb-endpoint URL]
                        [--table-prefix P] [--create-tables]
      Serves the WebSocket API (default ws://127.0.0.1:8080/local) over an in-memory store, or
      over DynamoDB: tables P* (default messenger-*) at URL (default MESSENGER_DYNAMODB_ENDPOINT,
      else the AWS configuration in the environment); --create-tables creates missing ones.
  messenger-local token USER [--device DEVICE] [--hours N]
      Prints a token the local gateway accepts (connect with ?token=...).

The JWT secret is MESSENGER_JWT_SECRET, or a fixed development secret when unset.
Logs: RUST_LOG (default info).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("token") => token(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("expected a command\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("messenger-local: {e}");
            ExitCode::from(2)
        }
    }
}

fn secret() -> Vec<u8> {
    std::env::var("MESSENGER_JWT_SECRET")
        .unwrap_or_else(|_| DEV_SECRET.into())
        .into_bytes()
}

/// `--name value` options after the positional arguments.
struct Options<'a> {
    rest: &'a [String],
}

impl<'a> Options<'a> {
    fn parse(args: &'a [String], allowed: &[&str]) -> Result<(Vec<&'a str>, Self), String> {
        let split = args
            .iter()
            .position(|a| a.starts_with("--"))
            .unwrap_or(args.len());
        let (positional, rest) = args.split_at(split);
        for pair in rest.chunks(2) {
            let name = pair[0].as_str();
            if !allowed.contains(&name) {
                return Err(format!("unknown option {name}\n\n{USAGE}"));
            }
            if pair.len() < 2 {
                return Err(format!("{name} needs a value"));
            }
        }
        Ok((
            positional.iter().map(String::as_str).collect(),
            Self { rest },
        ))
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &'a str> {
        let name = name.to_owned();
        self.rest
            .chunks(2)
            .filter(move |p| p[0] == name)
            .map(|p| p[1].as_str())
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.all(name)
            .last()
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{name}: invalid value {v:?}"))
            })
            .transpose()
    }
}

/// Where the gateway keeps its data: in memory (the default), or DynamoDB (MiniStack,
/// LocalStack or AWS) with the production adapter.
enum StoreChoice {
    Memory,
    Dynamo {
        endpoint: Option<String>,
        prefix: String,
        create: bool,
    },
}

impl StoreChoice {
    fn from_options(opts: &Options<'_>, create: bool) -> Result<Self, String> {
        let store: String = opts.get("--store")?.unwrap_or_else(|| "memory".into());
        match store.as_str() {
            "memory" => Ok(Self::Memory),
            "dynamodb" => Ok(Self::Dynamo {
                endpoint: opts
                    .get("--dynamodb-endpoint")?
                    .or_else(|| std::env::var("MESSENGER_DYNAMODB_ENDPOINT").ok()),
                prefix: opts
                    .get("--table-prefix")?
                    .unwrap_or_else(|| "messenger-".into()),
                create,
            }),
            other => Err(format!("--store takes memory or dynamodb, not {other:?}")),
        }
    }

    /// The stores, and a line saying what they are.
    async fn open(self) -> Result<(Stores, String), String> {
        match self {
            Self::Memory => Ok((Stores::in_memory(), "in-memory store".into())),
            Self::Dynamo {
                endpoint,
                prefix,
                create,
            } => {
                // An explicit endpoint is an emulator (test credentials); otherwise the usual
                // AWS configuration chain (AWS_ENDPOINT_URL, profiles, region) applies.
                let sdk = match &endpoint {
                    Some(e) => messenger_aws::sdk::for_endpoint(e).await,
                    None => messenger_aws::sdk::load().await,
                };
                let tables = messenger_aws::Tables::with_prefix(&prefix);
                let store = messenger_aws::DynamoStore::new(&sdk, tables).with_local_append_lock();
                if create {
                    store
                        .create_tables()
                        .await
                        .map_err(|e| format!("cannot create tables: {e}"))?;
                }
                let at = endpoint
                    .as_deref()
                    .unwrap_or("the AWS account in the environment");
                let described = format!("DynamoDB at {at}, tables {prefix}*");
                Ok((Stores::from_one(std::sync::Arc::new(store)), described))
            }
        }
    }
}

fn token(args: &[String]) -> Result<(), String> {
    let (positional, opts) = Options::parse(args, &["--device", "--hours"])?;
    let [user] = positional[..] else {
        return Err(format!("token takes one USER\n\n{USAGE}"));
    };
    let user = UserId::new(user).map_err(|e| e.to_string())?;
    let device = opts
        .get::<String>("--device")?
        .map(DeviceId::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let hours: i64 = opts.get("--hours")?.unwrap_or(24);
    let now = Utc::now();
    println!(
        "{}",
        auth::mint(
            &secret(),
            &user,
            device.as_ref(),
            now,
            now + chrono::Duration::hours(hours)
        )
    );
    Ok(())
}

fn serve(args: &[String]) -> Result<(), String> {
    let allowed = [
        "--port",
        "--host",
        "--stage",
        "--max-body-bytes",
        "--idle-timeout-secs",
        "--max-connection-secs",
        "--two-way",
        "--store",
        "--dynamodb-endpoint",
        "--table-prefix",
    ];
    // The one flag without a value.
    let create_tables = args.iter().any(|a| a == "--create-tables");
    let args: Vec<String> = args
        .iter()
        .filter(|a| *a != "--create-tables")
        .cloned()
        .collect();
    let (positional, opts) = Options::parse(&args, &allowed)?;
    if !positional.is_empty() {
        return Err(format!("serve takes no arguments\n\n{USAGE}"));
    }
    let mut config = GatewayConfig {
        jwt_secret: secret(),
        ..GatewayConfig::default()
    };
    let port: u16 = opts.get("--port")?.unwrap_or(8080);
    let host: String = opts.get("--host")?.unwrap_or_else(|| "127.0.0.1".into());
    if let Some(stage) = opts.get("--stage")? {
        config.stage = stage;
    }
    if let Some(n) = opts.get("--max-body-bytes")? {
        config.limits.max_body_bytes = n;
    }
    if let Some(s) = opts.get("--idle-timeout-secs")? {
        config.idle_timeout = Duration::from_secs(s);
    }
    if let Some(s) = opts.get("--max-connection-secs")? {
        config.max_connection_duration = Duration::from_secs(s);
    }
    config.two_way_routes = opts.all("--two-way").map(str::to_owned).collect();
    let store = StoreChoice::from_options(&opts, create_tables)?;

    // Logs on stderr: stdout carries only what a script reads (the URLs).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stage = config.stage.clone();
        let (stores, described) = store.open().await?;
        // Written once; a reader that stops reading (`| head -2`) must not stop the server.
        let banner = format!(
            "Messenger local gateway ready ({described})\n  Web app:     http://{addr}/\n  WebSocket:   ws://{addr}/{stage}?token=<token>\n  Management:  http://{addr}/{stage}/@connections/<connectionId>\n  Pushes:      http://{addr}/_local/pushes\n  Token:       messenger-local token <user> [--device <device>]\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        messenger_local::serve(listener, config, stores, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}
