//! `messenger-local`: run Messenger on this machine, or mint a token for it.
//!
//! ```text
//! messenger-local serve [--port 8080] [--host 127.0.0.1] [--stage local] [options]
//! messenger-local token USER [--device D] [--hours 24]
//! messenger-local reports list [--days 7] [--gateway URL | --store dynamodb …]
//! messenger-local reports read ID [--gateway URL | --store dynamodb …]
//! ```
//!
//! `messenger-local help serve` (or `token`) lists every option.

use chrono::Utc;
use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use messenger::auth::{self, DEV_SECRET, IssuerConfig, IssuerVerifier};
use messenger::domain::{DeviceId, UserId};
use messenger::ratelimit::{Rate, RateLimits};
use messenger::{Limits, Stores};
use messenger_local::GatewayConfig;
use messenger_local::files::Files;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const ENVIRONMENT: &str = "\
The JWT secret is MESSENGER_JWT_SECRET, or a fixed development secret when unset (serve --issuer
accepts an identity provider's tokens instead).
Logs: RUST_LOG (default info).";

/// Run Messenger on this machine: an API Gateway WebSocket emulator that calls the route
/// handlers in-process. Or mint a token for it.
#[derive(Parser)]
#[command(name = "messenger-local", version, after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the WebSocket API (default ws://127.0.0.1:8080/local) until Ctrl-C
    #[command(after_help = ENVIRONMENT)]
    Serve(Box<ServeArgs>),
    /// Print a token the local gateway accepts (connect with ?token=...)
    #[command(after_help = ENVIRONMENT)]
    Token(TokenArgs),
    /// Read the reports users made (the operators' view: no client action reads them)
    #[command(subcommand)]
    Reports(ReportsCommand),
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// The reports of the last days, oldest first, one line each (or JSON)
    List {
        /// How many days back, today included
        #[arg(long, value_name = "N", default_value_t = 7,
              value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Print the reports as a JSON array
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        from: ReportSource,
    },
    /// One report in full, as JSON
    Read {
        /// The report's id (`reported` told the reporter; `list` shows it)
        id: String,
        #[command(flatten)]
        from: ReportSource,
    },
}

/// Where the reports are: a running gateway's store (`--store memory`, the default: it lives in
/// that process's memory), or DynamoDB read directly.
#[derive(Args)]
struct ReportSource {
    /// With --store memory: the running `messenger-local serve` to ask
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// With --store dynamodb: the messages table's name, when it is not PREFIX+messages (a
    /// deployed stack's: its MessagesTableName output)
    #[arg(long, value_name = "NAME")]
    messages_table: Option<String>,
    #[command(flatten, next_help_heading = "Store")]
    store: StoreArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Port to listen on (0: any free one; the banner shows which)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: String,
    /// Stage: the WebSocket URL is ws://HOST:PORT/STAGE
    #[arg(long, value_name = "NAME", default_value_t = GatewayConfig::default().stage)]
    stage: String,
    /// Largest message body a `send` accepts, in bytes
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().limits.max_body_bytes)]
    max_body_bytes: usize,
    /// How long after sending its author may edit a message, in seconds
    #[arg(
        long,
        value_name = "N",
        default_value_t = GatewayConfig::default().limits.edit_window.num_seconds()
    )]
    edit_window_secs: i64,
    /// Close a socket after this many seconds without a frame (API Gateway: 10 min)
    #[arg(
        long,
        value_name = "N",
        default_value_t = GatewayConfig::default().idle_timeout.as_secs()
    )]
    idle_timeout_secs: u64,
    /// Close every socket after this many seconds (API Gateway: 2 h)
    #[arg(
        long,
        value_name = "N",
        default_value_t = GatewayConfig::default().max_connection_duration.as_secs()
    )]
    max_connection_secs: u64,
    /// Make ROUTE two-way: its returned body goes back to the client, as with an API Gateway
    /// route response (repeatable; other routes reply through @connections only)
    #[arg(long = "two-way", value_name = "ROUTE")]
    two_way: Vec<String>,
    /// Most bytes waiting to be written to one socket; past it the socket is closed with 1013
    /// (a slow consumer) and the post answered 410
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().max_outbound_bytes)]
    max_outbound_bytes: usize,
    /// Close a socket whose client takes no frame for this many seconds
    #[arg(
        long,
        value_name = "N",
        default_value_t = GatewayConfig::default().write_timeout.as_secs()
    )]
    write_timeout_secs: u64,
    /// Close a connection that sends no complete request head for this many seconds
    #[arg(
        long,
        value_name = "N",
        default_value_t = GatewayConfig::default().handshake_timeout.as_secs()
    )]
    handshake_timeout_secs: u64,
    /// Most handshakes in progress at once; more connections are answered 429
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().max_handshakes)]
    max_handshakes: usize,
    #[command(
        flatten,
        next_help_heading = "Sign-in (default: development tokens from `messenger-local token`)"
    )]
    sign_in: SignInArgs,
    #[command(
        flatten,
        next_help_heading = "Per-user limits (docs/protocol.md \"Limits\")"
    )]
    limits: LimitArgs,
    #[command(flatten, next_help_heading = "Store")]
    store: StoreArgs,
    #[command(flatten, next_help_heading = "Attachments")]
    files: FilesArgs,
}

/// Where attachments go, and their limits.
#[derive(Args)]
struct FilesArgs {
    /// Keep uploaded files in DIR (created when missing, kept on exit). Default: a fresh
    /// directory under the system temp dir, removed on exit
    #[arg(long, value_name = "DIR", conflicts_with = "s3_bucket")]
    files_dir: Option<std::path::PathBuf>,
    /// With --store dynamodb: keep files in this S3 bucket (on the DynamoDB endpoint's
    /// emulator, e.g. MiniStack; created with --create-tables) instead of a directory
    #[arg(long, value_name = "NAME")]
    s3_bucket: Option<String>,
    /// Largest file an upload accepts, in bytes
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().limits.attachments.max_bytes)]
    max_file_bytes: u64,
}

/// Per-user rate limits (`BURST,PER_MINUTE`, or 0 for none) and caps; the defaults are the
/// deployed stack's.
#[derive(Args)]
struct LimitArgs {
    /// `send`: a burst, then so many a minute
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.send)]
    rate_send: Rate,
    /// Group changes (create_group, add_members, remove_members, leave_group, rename_group),
    /// mute and unmute
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.groups)]
    rate_groups: Rate,
    /// Pulls (sync, history, conversations, receipts)
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.reads)]
    rate_reads: Rate,
    /// `presence`
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.presence)]
    rate_presence: Rate,
    /// register_push, unregister_push
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.push)]
    rate_push: Rate,
    /// Per user: uploads (files) at once, then per minute
    #[arg(long, value_name = "RATE", default_value_t = Limits::default().rates.uploads)]
    rate_uploads: Rate,
    /// Live connections per user; a new one past it closes the oldest
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_user,
          value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    max_connections_per_user: usize,
    /// Groups a user may be in
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_groups_per_user,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_groups_per_user: usize,
    /// Devices registered for push per user; a new one past it replaces the least recently
    /// registered
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_devices_per_user,
          value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    max_devices_per_user: usize,
    /// User ids per create_group/add_members/remove_members frame (at most 46)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_ids_per_frame,
          value_parser = clap::value_parser!(u16).range(1..=messenger::MAX_IDS_PER_FRAME as i64).map(usize::from))]
    max_ids_per_frame: usize,
    /// Cursors in one sync's `since`
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sync_cursors,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_sync_cursors: usize,
}

impl LimitArgs {
    fn apply(self, limits: &mut Limits) {
        limits.rates = RateLimits {
            send: self.rate_send,
            groups: self.rate_groups,
            reads: self.rate_reads,
            presence: self.rate_presence,
            push: self.rate_push,
            uploads: self.rate_uploads,
        };
        limits.max_connections_per_user = self.max_connections_per_user;
        limits.max_groups_per_user = self.max_groups_per_user;
        limits.max_devices_per_user = self.max_devices_per_user;
        limits.max_ids_per_frame = self.max_ids_per_frame;
        limits.max_sync_cursors = self.max_sync_cursors;
    }
}

/// An identity provider whose tokens the gateway accepts instead of the development ones.
#[derive(Args)]
struct SignInArgs {
    /// Accept this identity provider's ID and access tokens (RS256/ES256, verified against its
    /// JWKS): what their `iss` must be, e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID
    #[arg(long, value_name = "URL", requires = "audience")]
    issuer: Option<String>,
    /// With --issuer: an accepted audience, the app client id (repeatable, or comma-separated)
    #[arg(long, value_name = "ID", value_delimiter = ',', requires = "issuer")]
    audience: Vec<String>,
    /// With --issuer: the issuer's JWKS URL (default: found by OpenID Connect discovery at
    /// ISSUER/.well-known/openid-configuration). Plain http only from this machine
    #[arg(long, value_name = "URL", requires = "issuer")]
    jwks_url: Option<String>,
    /// With --issuer: the claim holding the user id
    #[arg(long, value_name = "CLAIM", default_value = "sub", requires = "issuer")]
    user_claim: String,
}

impl SignInArgs {
    /// The issuer's verifier, or `None` for development tokens; and a line saying which.
    fn verifier(self) -> Result<(Option<Arc<IssuerVerifier>>, String), String> {
        let Some(issuer) = self.issuer else {
            let line = "Token:       messenger-local token <user> [--device <device>]".into();
            return Ok((None, line));
        };
        let mut config = IssuerConfig::new(issuer, self.audience);
        config.user_claim = self.user_claim;
        let line = format!(
            "Tokens:      issued by {} for {} (user id: {}; name the device with &device=<id>)",
            config.issuer,
            config.audiences.join(", "),
            config.user_claim
        );
        let verifier = messenger_lambda::jwks::issuer_verifier(config, self.jwks_url)
            .map_err(|e| format!("--issuer: {e}"))?;
        Ok((Some(verifier), line))
    }
}

/// Where the gateway keeps its data: in memory (the default), or DynamoDB (MiniStack,
/// LocalStack or AWS) with the production adapter.
#[derive(Args)]
struct StoreArgs {
    /// Where the gateway keeps its data
    #[arg(long = "store", value_name = "STORE", value_enum, default_value_t = StoreKind::Memory)]
    kind: StoreKind,
    /// The DynamoDB endpoint of --store dynamodb (MiniStack, LocalStack); without one, the AWS
    /// configuration in the environment (profile, region, AWS_ENDPOINT_URL)
    #[arg(
        long,
        value_name = "URL",
        env = "MESSENGER_DYNAMODB_ENDPOINT",
        hide_env_values = true
    )]
    dynamodb_endpoint: Option<String>,
    /// Table name prefix of --store dynamodb (tables messenger-presence,
    /// messenger-memberships, …)
    #[arg(long, value_name = "P", default_value = "messenger-")]
    table_prefix: String,
    /// With --store dynamodb: create the tables that are missing
    #[arg(long)]
    create_tables: bool,
}

/// The value of `--store`.
#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    /// In this process's memory, gone when it exits
    Memory,
    /// DynamoDB (MiniStack, LocalStack or AWS) through the production adapter (needs the
    /// `dynamodb` feature: cargo run -p messenger-local --features dynamodb -- serve …)
    #[value(name = "dynamodb")]
    DynamoDb,
}

#[derive(Args)]
struct TokenArgs {
    /// The user the token is for (its `sub`)
    #[arg(value_parser = |s: &str| UserId::new(s))]
    user: UserId,
    /// The device it names (its `device` claim)
    #[arg(long, value_parser = |s: &str| DeviceId::new(s))]
    device: Option<DeviceId>,
    /// Hours until it expires
    #[arg(long, value_name = "N", default_value_t = 24)]
    hours: i64,
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (clap's code), before anything starts.
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Token(args) => {
            token(args);
            Ok(())
        }
        Command::Reports(command) => reports(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("messenger-local: {e}");
            ExitCode::FAILURE
        }
    }
}

fn secret() -> Vec<u8> {
    std::env::var("MESSENGER_JWT_SECRET")
        .unwrap_or_else(|_| DEV_SECRET.into())
        .into_bytes()
}

impl StoreArgs {
    /// The stores, where files go, and a line saying what they are.
    async fn open(self, files: &FilesArgs) -> Result<(Stores, Files, String), String> {
        let local = || match &files.files_dir {
            Some(dir) => (
                Files::Directory(dir.clone()),
                format!("files in {}", dir.display()),
            ),
            None => (
                Files::Temporary,
                "files in a temporary directory".to_owned(),
            ),
        };
        if files.s3_bucket.is_some() && !matches!(self.kind, StoreKind::DynamoDb) {
            return Err("--s3-bucket needs --store dynamodb".into());
        }
        match self.kind {
            StoreKind::Memory => {
                let (files, where_) = local();
                Ok((
                    Stores::in_memory(),
                    files,
                    format!("in-memory store, {where_}"),
                ))
            }
            #[cfg(not(feature = "dynamodb"))]
            StoreKind::DynamoDb => Err(
                "this messenger-local was built without DynamoDB support (the AWS SDK); build it \
                 with the `dynamodb` feature: cargo run -p messenger-local --features dynamodb \
                 -- serve --store dynamodb …"
                    .into(),
            ),
            #[cfg(feature = "dynamodb")]
            StoreKind::DynamoDb => {
                let (endpoint, prefix) = (self.dynamodb_endpoint, self.table_prefix);
                // An explicit endpoint is an emulator (test credentials); otherwise the usual
                // AWS configuration chain (AWS_ENDPOINT_URL, profiles, region) applies.
                let sdk = match &endpoint {
                    Some(e) => messenger_aws::sdk::for_endpoint(e).await,
                    None => messenger_aws::sdk::load().await,
                };
                let tables = messenger_aws::Tables::with_prefix(&prefix);
                let store = messenger_aws::DynamoStore::new(&sdk, tables).with_local_append_lock();
                if self.create_tables {
                    store
                        .create_tables()
                        .await
                        .map_err(|e| format!("cannot create tables: {e}"))?;
                }
                let at = endpoint
                    .as_deref()
                    .unwrap_or("the AWS account in the environment");
                let (files, where_) = match &files.s3_bucket {
                    None => local(),
                    Some(bucket) => {
                        let objects =
                            messenger_aws::S3Objects::new(&sdk, bucket, endpoint.as_deref())?;
                        if self.create_tables {
                            objects
                                .create_bucket()
                                .await
                                .map_err(|e| format!("cannot create bucket {bucket}: {e}"))?;
                        }
                        (
                            Files::Store(Arc::new(objects)),
                            format!("files in S3 bucket {bucket}"),
                        )
                    }
                };
                let described = format!("DynamoDB at {at}, tables {prefix}*, {where_}");
                Ok((
                    Stores::from_one(std::sync::Arc::new(store)),
                    files,
                    described,
                ))
            }
        }
    }
}

fn reports(command: ReportsCommand) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (path, from) = match &command {
            ReportsCommand::List { days, from, .. } => {
                (format!("/_local/reports?days={days}"), from)
            }
            ReportsCommand::Read { id, from } => (format!("/_local/reports/{id}"), from),
        };
        let found: serde_json::Value = match from.store.kind {
            StoreKind::Memory => serde_json::from_str(&http_get(&from.gateway, &path).await?)
                .map_err(|e| format!("the gateway's answer is not JSON: {e}"))?,
            StoreKind::DynamoDb => {
                let (stores, _) = ReportSource::open(from).await?;
                let reports = stores.reports.as_ref();
                match &command {
                    ReportsCommand::List { days, .. } => {
                        let all = messenger_local::reports::recent(reports, *days, Utc::now())
                            .await
                            .map_err(|e| e.to_string())?;
                        serde_json::to_value(all).map_err(|e| e.to_string())?
                    }
                    ReportsCommand::Read { id, .. } => {
                        let id: messenger::moderation::ReportId = id.parse()?;
                        let r = reports.report(&id).await.map_err(|e| e.to_string())?;
                        serde_json::to_value(r.ok_or("no such report")?)
                            .map_err(|e| e.to_string())?
                    }
                }
            }
        };
        let out = match command {
            ReportsCommand::List { json: false, .. } => {
                let all: Vec<messenger::moderation::Report> =
                    serde_json::from_value(found).map_err(|e| e.to_string())?;
                all.iter()
                    .map(|r| messenger_local::reports::line(r) + "\n")
                    .collect::<String>()
            }
            _ => serde_json::to_string_pretty(&found).map_err(|e| e.to_string())? + "\n",
        };
        print!("{out}");
        Ok(())
    })
}

impl ReportSource {
    #[cfg(not(feature = "dynamodb"))]
    async fn open(&self) -> Result<(Stores, String), String> {
        // Reports keep no files: where files would go does not matter here.
        let no_files = FilesArgs {
            files_dir: None,
            s3_bucket: None,
            max_file_bytes: 0,
        };
        let store = StoreArgs {
            kind: self.store.kind,
            dynamodb_endpoint: self.store.dynamodb_endpoint.clone(),
            table_prefix: self.store.table_prefix.clone(),
            create_tables: false,
        };
        let (stores, _, line) = store.open(&no_files).await?;
        Ok((stores, line))
    }

    /// The store the reports are read from (only the messages table is read).
    #[cfg(feature = "dynamodb")]
    async fn open(&self) -> Result<(Stores, String), String> {
        let sdk = match &self.store.dynamodb_endpoint {
            Some(e) => messenger_aws::sdk::for_endpoint(e).await,
            None => messenger_aws::sdk::load().await,
        };
        let mut tables = messenger_aws::Tables::with_prefix(&self.store.table_prefix);
        if let Some(name) = &self.messages_table {
            tables.messages = name.clone();
        }
        let described = format!("DynamoDB table {}", tables.messages);
        let store = messenger_aws::DynamoStore::new(&sdk, tables);
        Ok((Stores::from_one(Arc::new(store)), described))
    }
}

/// A plain HTTP/1.0 GET of `path` on the gateway at `base` (`http://HOST:PORT`): its body, or
/// why not.
async fn http_get(base: &str, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("--gateway {base}: expected http://HOST:PORT"))?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.map_err(|e| {
        format!("cannot reach the gateway at {base}: {e} (is `messenger-local serve` running?)")
    })?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("a malformed HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        return Err(format!("the gateway answered {status}: {body}"));
    }
    Ok(body.to_owned())
}

fn token(args: TokenArgs) {
    let now = Utc::now();
    let expires = now + chrono::Duration::hours(args.hours);
    println!(
        "{}",
        auth::mint(&secret(), &args.user, args.device.as_ref(), now, expires)
    );
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = GatewayConfig {
        jwt_secret: secret(),
        stage: args.stage,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connection_duration: Duration::from_secs(args.max_connection_secs),
        two_way_routes: args.two_way.into_iter().collect(),
        max_outbound_bytes: args.max_outbound_bytes,
        write_timeout: Duration::from_secs(args.write_timeout_secs),
        handshake_timeout: Duration::from_secs(args.handshake_timeout_secs),
        max_handshakes: args.max_handshakes,
        ..GatewayConfig::default()
    };
    config.limits.max_body_bytes = args.max_body_bytes;
    config.limits.edit_window = chrono::Duration::seconds(args.edit_window_secs.max(0));
    config.limits.attachments.max_bytes = args.files.max_file_bytes;
    let files = args.files;
    args.limits.apply(&mut config.limits);
    let (host, port) = (args.host, args.port);
    let sign_in = args.sign_in;

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
        let (stores, files, described) = args.store.open(&files).await?;
        config.files = files;
        // Built inside the runtime: the JWKS client's connection pool lives on it.
        let (issuer, tokens) = sign_in.verifier()?;
        config.issuer = issuer;
        // Written once; a reader that stops reading (`| head -2`) must not stop the server.
        let banner = format!(
            "Messenger local gateway ready ({described})\n  Web app:     http://{addr}/\n  WebSocket:   ws://{addr}/{stage}?token=<token>\n  Management:  http://{addr}/{stage}/@connections/<connectionId>\n  Pushes:      http://{addr}/_local/pushes\n  {tokens}\n"
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
