//! Infrastructure layer: everything a route binary's `main` does, written once. Each
//! `functions/<dir>/src/main.rs` is one call: [`run_route`] with its [`Function`] from the route
//! table, [`run_authorizer`], or [`run_stream`].

use crate::dynamo::{DEFAULT_BUCKET, DynamoStore, Tables};
use crate::notifier::{PlatformApps, SnsNotifier};
use crate::poster::ApiGwPoster;
use crate::sdk::CallTimeouts;
use crate::stream::StreamEvent;
use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::Utc;
use lambda_runtime::{LambdaEvent, service_fn};
use messenger::auth::{Authenticator, IssuerConfig};
use messenger::domain::ConnectionId;
use messenger::ports::{PostError, Poster};
use messenger::routes::Function;
use messenger::{App, Limits, Stores};
use messenger_lambda::{AuthorizerEvent, WsEvent};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

/// Environment variables the route functions read (set by the IaC template).
pub mod env {
    /// Table of users' live connections and last-seen (one item per user).
    pub const PRESENCE_TABLE: &str = "MESSENGER_PRESENCE_TABLE";
    /// Table of memberships (with the `by_conversation` index).
    pub const MEMBERSHIPS_TABLE: &str = "MESSENGER_MEMBERSHIPS_TABLE";
    /// Table of conversation heads, message log buckets and idempotency keys.
    pub const MESSAGES_TABLE: &str = "MESSENGER_MESSAGES_TABLE";
    /// Table of push registrations and push claims.
    pub const DEVICES_TABLE: &str = "MESSENGER_DEVICES_TABLE";
    /// Optional: most members of a group.
    pub const MAX_GROUP_MEMBERS: &str = "MESSENGER_MAX_GROUP_MEMBERS";
    /// Optional: the `@connections` management endpoint. Without it, the first event's
    /// `https://{domainName}/{stage}` is used (right on AWS without a custom domain).
    pub const MANAGEMENT_ENDPOINT: &str = "MESSENGER_MANAGEMENT_ENDPOINT";
    /// Optional: longest message body in bytes.
    pub const MAX_BODY_BYTES: &str = "MESSENGER_MAX_BODY_BYTES";
    /// Optional: how long after sending its author may edit a message, in seconds.
    pub const EDIT_WINDOW_SECS: &str = "MESSENGER_EDIT_WINDOW_SECS";
    /// Optional: message retention in days (the TTL); unset keeps messages forever.
    pub const RETENTION_DAYS: &str = "MESSENGER_RETENTION_DAYS";
    /// Optional: seqs per message-log partition (must match every writer of the table).
    pub const LOG_BUCKET: &str = "MESSENGER_LOG_BUCKET";
    /// Optional: `false` when the stream-driven `notify` function pushes offline members instead
    /// of the `send` function (default `true`).
    pub const PUSH_INLINE: &str = "MESSENGER_PUSH_INLINE";
    /// Optional: the SNS topic every stored message is published to.
    pub const TOPIC_ARN: &str = "MESSENGER_TOPIC_ARN";
    /// Optional: the SNS topic reports of messages are published to (the function serving
    /// `report` only).
    pub const MODERATION_TOPIC_ARN: &str = "MESSENGER_MODERATION_TOPIC_ARN";
    /// Optional: SNS platform application for APNs (production).
    pub const APNS_APP_ARN: &str = "MESSENGER_APNS_APP_ARN";
    /// Optional: SNS platform application for the APNs sandbox.
    pub const APNS_SANDBOX_APP_ARN: &str = "MESSENGER_APNS_SANDBOX_APP_ARN";
    /// Optional: SNS platform application for FCM.
    pub const FCM_APP_ARN: &str = "MESSENGER_FCM_APP_ARN";
    /// The authorizer's HS256 secret (development tokens). Exclusive with [`JWT_ISSUER`].
    pub const JWT_SECRET: &str = "MESSENGER_JWT_SECRET";
    /// The identity provider whose tokens the authorizer accepts: what their `iss` must be.
    /// Exclusive with [`JWT_SECRET`].
    pub const JWT_ISSUER: &str = "MESSENGER_JWT_ISSUER";
    /// With [`JWT_ISSUER`]: the accepted audiences (app client ids), comma-separated.
    pub const JWT_AUDIENCE: &str = "MESSENGER_JWT_AUDIENCE";
    /// With [`JWT_ISSUER`], optional: the issuer's JWKS URL; unset, OpenID Connect discovery
    /// finds it (`<issuer>/.well-known/openid-configuration`).
    pub const JWKS_URL: &str = "MESSENGER_JWKS_URL";
    /// With [`JWT_ISSUER`], optional: the claim holding the user id (default `sub`).
    pub const JWT_USER_CLAIM: &str = "MESSENGER_JWT_USER_CLAIM";
    /// Optional: the S3 bucket attachments are kept in (unset: `upload` is refused). Reached
    /// at `AWS_ENDPOINT_URL` (path-style) when that is set, as on an emulator.
    pub const FILES_BUCKET: &str = "MESSENGER_FILES_BUCKET";
    /// Optional: the largest attachment, in bytes (default 25 MB).
    pub const MAX_FILE_BYTES: &str = "MESSENGER_MAX_FILE_BYTES";
    /// `true` only on an emulator: the authorizer then accepts messenger-local's public
    /// development secret as [`JWT_SECRET`]; anywhere else it refuses to start with it.
    pub const ALLOW_DEVELOPMENT_SECRET: &str = "MESSENGER_ALLOW_DEVELOPMENT_SECRET";
    /// Optional, per bucket: a per-user rate, `BURST,PER_MINUTE` (e.g. `60,300`), or `0` for
    /// none: `MESSENGER_RATE_SEND`, `…_GROUPS`, `…_READS`, `…_PRESENCE`, `…_PUSH`,
    /// `…_UPLOADS`.
    pub const RATE_PREFIX: &str = "MESSENGER_RATE_";
    /// Optional: most live connections per user (a new one closes the oldest).
    pub const MAX_CONNECTIONS_PER_USER: &str = "MESSENGER_MAX_CONNECTIONS_PER_USER";
    /// Optional: most groups a user may be in.
    pub const MAX_GROUPS_PER_USER: &str = "MESSENGER_MAX_GROUPS_PER_USER";
    /// Optional: most devices registered for push per user.
    pub const MAX_DEVICES_PER_USER: &str = "MESSENGER_MAX_DEVICES_PER_USER";
    /// Optional: most user ids per group-change frame (at most 46).
    pub const MAX_IDS_PER_FRAME: &str = "MESSENGER_MAX_IDS_PER_FRAME";
    /// Optional: most cursors in one `sync`.
    pub const MAX_SYNC_CURSORS: &str = "MESSENGER_MAX_SYNC_CURSORS";
}

/// Why the configuration could not be read. The message names the variable to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}: {1}")]
    Missing(&'static str, &'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The route functions' configuration, read once at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub tables: Tables,
    pub management_endpoint: Option<String>,
    pub limits: Limits,
    pub log_bucket: u64,
    /// Platform applications for mobile push (none: registrations are refused).
    pub push_apps: PlatformApps,
    pub topic_arn: Option<String>,
    pub moderation_topic_arn: Option<String>,
    /// Where attachments are kept (none: `upload` is refused).
    pub files_bucket: Option<String>,
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    what: &'static str,
) -> Result<String, ConfigError> {
    get(name)
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name, what))
}

fn optional(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Option<String> {
    get(name).filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: format!("{v:?}: {e}"),
            })
        })
        .transpose()
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let tables = Tables {
            presence: required(&get, env::PRESENCE_TABLE, "the presence table name")?,
            memberships: required(&get, env::MEMBERSHIPS_TABLE, "the memberships table name")?,
            messages: required(&get, env::MESSAGES_TABLE, "the messages table name")?,
            devices: required(&get, env::DEVICES_TABLE, "the push devices table name")?,
        };
        let mut limits = Limits::default();
        if let Some(n) = number(&get, env::MAX_BODY_BYTES)? {
            limits.max_body_bytes = n;
        }
        limits.retention = number(&get, env::RETENTION_DAYS)?.map(chrono::Duration::days);
        if let Some(n) = number(&get, env::MAX_GROUP_MEMBERS)? {
            limits.max_group_members = n;
        }
        if let Some(inline) = number(&get, env::PUSH_INLINE)? {
            limits.push_inline = inline;
        }
        if let Some(secs) = number(&get, env::EDIT_WINDOW_SECS)? {
            limits.edit_window = chrono::Duration::seconds(secs);
        }
        if let Some(n) = number(&get, env::MAX_FILE_BYTES)? {
            limits.attachments.max_bytes = n;
        }
        read_limits(&get, &mut limits)?;
        let log_bucket = number(&get, env::LOG_BUCKET)?.unwrap_or(DEFAULT_BUCKET);
        if log_bucket < 2 {
            return Err(ConfigError::Invalid {
                name: env::LOG_BUCKET,
                reason: "must be at least 2".into(),
            });
        }
        Ok(Self {
            tables,
            management_endpoint: optional(&get, env::MANAGEMENT_ENDPOINT),
            limits,
            log_bucket,
            push_apps: PlatformApps {
                apns: optional(&get, env::APNS_APP_ARN),
                apns_sandbox: optional(&get, env::APNS_SANDBOX_APP_ARN),
                fcm: optional(&get, env::FCM_APP_ARN),
            },
            topic_arn: optional(&get, env::TOPIC_ARN),
            moderation_topic_arn: optional(&get, env::MODERATION_TOPIC_ARN),
            files_bucket: optional(&get, env::FILES_BUCKET),
        })
    }
}

/// The per-user limits: rates and caps (each optional; the defaults are [`Limits`]').
fn read_limits(
    get: &impl Fn(&str) -> Option<String>,
    limits: &mut Limits,
) -> Result<(), ConfigError> {
    use messenger::ratelimit::{Bucket, Rate};
    for bucket in Bucket::ALL {
        let name = rate_variable(bucket);
        if let Some(v) = optional(get, name) {
            let rate: Rate = v
                .parse()
                .map_err(|reason| ConfigError::Invalid { name, reason })?;
            limits.rates.set(bucket, rate);
        }
    }
    let caps: [(&'static str, &mut usize); 5] = [
        (
            env::MAX_CONNECTIONS_PER_USER,
            &mut limits.max_connections_per_user,
        ),
        (env::MAX_GROUPS_PER_USER, &mut limits.max_groups_per_user),
        (env::MAX_DEVICES_PER_USER, &mut limits.max_devices_per_user),
        (env::MAX_IDS_PER_FRAME, &mut limits.max_ids_per_frame),
        (env::MAX_SYNC_CURSORS, &mut limits.max_sync_cursors),
    ];
    for (name, cap) in caps {
        if let Some(n) = number::<usize>(get, name)? {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
            *cap = n;
        }
    }
    if limits.max_ids_per_frame > messenger::MAX_IDS_PER_FRAME {
        return Err(ConfigError::Invalid {
            name: env::MAX_IDS_PER_FRAME,
            reason: format!(
                "at most {} (a group change is one DynamoDB transaction)",
                messenger::MAX_IDS_PER_FRAME
            ),
        });
    }
    Ok(())
}

/// The variable of a bucket's rate: `MESSENGER_RATE_SEND`, …
fn rate_variable(bucket: messenger::ratelimit::Bucket) -> &'static str {
    use messenger::ratelimit::Bucket;
    match bucket {
        Bucket::Send => "MESSENGER_RATE_SEND",
        Bucket::Groups => "MESSENGER_RATE_GROUPS",
        Bucket::Reads => "MESSENGER_RATE_READS",
        Bucket::Presence => "MESSENGER_RATE_PRESENCE",
        Bucket::Push => "MESSENGER_RATE_PUSH",
        Bucket::Uploads => "MESSENGER_RATE_UPLOADS",
    }
}

/// JSON logs on stdout (CloudWatch keeps each line as one event); level from `RUST_LOG`,
/// default `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// Stops the process before the runtime loop when the configuration is unusable: Lambda
/// reports the init failure, and the log says which variable to set.
fn fail_fast(e: &ConfigError) -> ! {
    tracing::error!(error = %e, "configuration error");
    eprintln!("messenger: configuration error: {e}");
    std::process::exit(2)
}

/// A [`Poster`] whose management endpoint is configured, or learnt from the first event
/// (`https://{domainName}/{stage}`); its client is built once either way.
pub struct RoutePoster {
    sdk: SdkConfig,
    inner: OnceLock<ApiGwPoster>,
}

impl RoutePoster {
    /// A poster for `endpoint`, or one that learns it from the first event when `None`.
    pub fn new(sdk: &SdkConfig, endpoint: Option<&str>) -> Self {
        let inner = OnceLock::new();
        if let Some(e) = endpoint {
            let _ = inner.set(ApiGwPoster::new(sdk, e, CallTimeouts::default()));
        }
        Self {
            sdk: sdk.clone(),
            inner,
        }
    }

    /// Learns the endpoint from an event when none is known yet.
    pub fn learn(&self, event: &WsEvent) {
        let ctx = &event.request_context;
        if let (Some(domain), Some(stage)) = (&ctx.domain_name, &ctx.stage) {
            self.inner.get_or_init(|| {
                let endpoint = format!("https://{domain}/{stage}");
                tracing::info!(%endpoint, "management endpoint taken from the event");
                ApiGwPoster::new(&self.sdk, &endpoint, CallTimeouts::default())
            });
        }
    }
}

#[async_trait]
impl Poster for RoutePoster {
    async fn post(&self, conn: &ConnectionId, data: &str) -> Result<(), PostError> {
        match self.inner.get() {
            Some(p) => p.post(conn, data).await,
            None => Err(no_endpoint()),
        }
    }

    async fn close(&self, conn: &ConnectionId) -> Result<(), PostError> {
        match self.inner.get() {
            Some(p) => p.close(conn).await,
            None => Err(no_endpoint()),
        }
    }
}

fn no_endpoint() -> PostError {
    PostError::Failed(format!("no management endpoint: set {}", env::MANAGEMENT_ENDPOINT).into())
}

/// Builds the app of a route function: the DynamoDB store and the poster, once.
pub fn build_app(sdk: &SdkConfig, config: &Config) -> (App, Arc<RoutePoster>) {
    let store = Arc::new(
        DynamoStore::new(sdk, config.tables.clone())
            .with_bucket_size(config.log_bucket)
            .with_local_append_lock(),
    );
    let poster = Arc::new(RoutePoster::new(sdk, config.management_endpoint.as_deref()));
    let stores = Stores::from_one(store);
    let mut app = App::new(stores, poster.clone(), config.limits.clone());
    if config.topic_arn.is_some()
        || config.moderation_topic_arn.is_some()
        || config.push_apps != PlatformApps::default()
    {
        let notifier = SnsNotifier::new(sdk, config.push_apps.clone(), config.topic_arn.clone())
            .with_moderation_topic(config.moderation_topic_arn.clone());
        app = app.with_notifier(Arc::new(notifier));
    }
    if let Some(bucket) = &config.files_bucket {
        match crate::S3Objects::new(sdk, bucket, sdk.endpoint_url()) {
            Ok(objects) => app = app.with_objects(Arc::new(objects)),
            Err(reason) => fail_fast(&ConfigError::Invalid {
                name: env::FILES_BUCKET,
                reason,
            }),
        }
    }
    (app, poster)
}

/// The whole `main` of a WebSocket route function: tracing, config (or exit with a clear
/// message), SDK clients, then the runtime loop handing each event to
/// [`messenger_lambda::handle`] — which decodes the event and runs [`messenger_lambda::serve`],
/// the same code the embedded gateway hands its decoded invocations to.
pub async fn run_route(function: Function) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = Config::from_env().unwrap_or_else(|e| fail_fast(&e));
    let sdk = crate::sdk::load().await;
    let (app, poster) = build_app(&sdk, &config);
    let (app, poster) = (&app, &poster);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<WsEvent>| async move {
        poster.learn(&event.payload);
        Ok::<_, Infallible>(messenger_lambda::handle(app, function, event.payload).await)
    }))
    .await
}

/// The whole `main` of the stream-driven `notify` function: like [`run_route`], for DynamoDB
/// Streams batches of the messages table ([`crate::stream::notify`]).
pub async fn run_stream() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = Config::from_env().unwrap_or_else(|e| fail_fast(&e));
    let sdk = crate::sdk::load().await;
    let (app, _) = build_app(&sdk, &config);
    let (app, bucket) = (&app, config.log_bucket);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            let deadline = invocation_deadline(event.context.deadline);
            Ok::<_, Infallible>(crate::stream::notify(app, bucket, event.payload, deadline).await)
        },
    ))
    .await
}

/// The invocation's deadline (milliseconds since the epoch, from the Runtime API) on this
/// process's monotonic clock; `None` when it has passed or is unknown.
fn invocation_deadline(deadline_ms: u64) -> Option<tokio::time::Instant> {
    let left = i64::try_from(deadline_ms).ok()? - Utc::now().timestamp_millis();
    let left = std::time::Duration::from_millis(u64::try_from(left).ok()?);
    Some(tokio::time::Instant::now() + left)
}

/// The authorizer's token verification, from its environment: an identity provider's tokens
/// ([`env::JWT_ISSUER`] and [`env::JWT_AUDIENCE`], optionally [`env::JWKS_URL`] and
/// [`env::JWT_USER_CLAIM`]) or development HS256 tokens ([`env::JWT_SECRET`]); exactly one.
pub fn authenticator_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Authenticator, ConfigError> {
    let issuer = optional(&get, env::JWT_ISSUER);
    let secret = optional(&get, env::JWT_SECRET);
    match (issuer, secret) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            name: env::JWT_SECRET,
            reason: format!("set it or {}, not both", env::JWT_ISSUER),
        }),
        (None, Some(secret)) => {
            let allowed = optional(&get, env::ALLOW_DEVELOPMENT_SECRET).as_deref() == Some("true");
            if secret == messenger::auth::DEV_SECRET && !allowed {
                return Err(ConfigError::Invalid {
                    name: env::JWT_SECRET,
                    reason: format!(
                        "it is messenger-local's public development secret, with which anyone \
                         can sign in as anyone; it is accepted only on an emulator ({}=true)",
                        env::ALLOW_DEVELOPMENT_SECRET
                    ),
                });
            }
            Ok(Authenticator::Hs256(secret.into_bytes()))
        }
        (None, None) => Err(ConfigError::Missing(
            "MESSENGER_JWT_ISSUER (or MESSENGER_JWT_SECRET)",
            "the identity provider whose tokens are accepted (or the development HS256 secret)",
        )),
        (Some(issuer), None) => {
            let audiences = required(&get, env::JWT_AUDIENCE, "the accepted audiences")?
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            let mut config = IssuerConfig::new(issuer, audiences);
            if let Some(claim) = optional(&get, env::JWT_USER_CLAIM) {
                config.user_claim = claim;
            }
            messenger_lambda::jwks::issuer_verifier(config, optional(&get, env::JWKS_URL))
                .map(Authenticator::Issuer)
                .map_err(|reason| ConfigError::Invalid {
                    name: env::JWT_ISSUER,
                    reason,
                })
        }
    }
}

/// The whole `main` of the `$connect` authorizer: tracing, its token verification (or exit),
/// then the runtime loop ([`messenger_lambda::authorizer::handle`]). It calls no AWS service;
/// with an issuer it fetches the issuer's keys over HTTPS, cached for the container's life.
/// When they cannot be had the invocation fails, and API Gateway answers the handshake 500.
pub async fn run_authorizer() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let auth =
        authenticator_from_lookup(|k| std::env::var(k).ok()).unwrap_or_else(|e| fail_fast(&e));
    tracing::info!(authenticator = ?auth, "authorizer configured");
    let auth = &auth;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<AuthorizerEvent>| async move {
            messenger_lambda::authorizer::handle(auth, &event.payload, Utc::now())
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const TABLES: [(&str, &str); 4] = [
        (env::PRESENCE_TABLE, "p"),
        (env::MEMBERSHIPS_TABLE, "m"),
        (env::MESSAGES_TABLE, "l"),
        (env::DEVICES_TABLE, "d"),
    ];

    #[test]
    fn the_authorizer_takes_exactly_one_kind_of_token() {
        let hs = authenticator_from_lookup(lookup(&[(env::JWT_SECRET, "s3cret")])).unwrap();
        assert!(matches!(hs, Authenticator::Hs256(s) if s == b"s3cret"));
        let issuer = [
            (
                env::JWT_ISSUER,
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X",
            ),
            (env::JWT_AUDIENCE, "client-a, client-b"),
            (env::JWT_USER_CLAIM, "cognito:username"),
        ];
        match authenticator_from_lookup(lookup(&issuer)).unwrap() {
            Authenticator::Issuer(v) => {
                assert_eq!(v.config().audiences, ["client-a", "client-b"]);
                assert_eq!(v.config().user_claim, "cognito:username");
                assert!(v.config().is_cognito());
            }
            other => panic!("{other:?}"),
        }
        let mut both = issuer.to_vec();
        both.push((env::JWT_SECRET, "s3cret"));
        let dev = messenger::auth::DEV_SECRET;
        let on_emulator = [
            (env::JWT_SECRET, dev),
            (env::ALLOW_DEVELOPMENT_SECRET, "true"),
        ];
        assert!(authenticator_from_lookup(lookup(&on_emulator)).is_ok());
        let e = authenticator_from_lookup(lookup(&[(env::JWT_SECRET, dev)])).unwrap_err();
        assert!(e.to_string().contains("public development secret"), "{e}");
        let refused = [
            both,
            vec![],
            vec![(env::JWT_ISSUER, "https://id.example.com/")],
            vec![
                (env::JWT_ISSUER, "https://id.example.com/"),
                (env::JWT_AUDIENCE, ","),
            ],
            vec![
                (env::JWT_ISSUER, "https://id.example.com/"),
                (env::JWT_AUDIENCE, "app"),
                (env::JWKS_URL, "http://id.example.com/keys"),
            ],
        ];
        for vars in refused {
            assert!(
                authenticator_from_lookup(lookup(&vars)).is_err(),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn a_missing_table_is_named() {
        let e = Config::from_lookup(lookup(&TABLES[..3])).unwrap_err();
        assert!(e.to_string().contains(env::DEVICES_TABLE), "{e}");
    }

    #[test]
    fn optional_settings_are_parsed_or_refused() {
        let mut vars = TABLES.to_vec();
        vars.extend([
            (env::RETENTION_DAYS, "30"),
            (env::LOG_BUCKET, "500"),
            (env::EDIT_WINDOW_SECS, "60"),
        ]);
        let c = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(c.limits.retention, Some(chrono::Duration::days(30)));
        assert_eq!(c.limits.edit_window, chrono::Duration::seconds(60));
        assert_eq!((c.log_bucket, c.management_endpoint), (500, None));
        assert_eq!(c.tables.messages, "l");
        vars.push((env::MAX_BODY_BYTES, "lots"));
        let e = Config::from_lookup(lookup(&vars)).unwrap_err();
        assert!(e.to_string().contains(env::MAX_BODY_BYTES), "{e}");
    }

    #[test]
    fn limits_are_read_per_bucket_and_cap_and_refused_when_invalid() {
        use messenger::ratelimit::Rate;
        let mut vars = TABLES.to_vec();
        vars.extend([
            ("MESSENGER_RATE_SEND", "5,60"),
            ("MESSENGER_RATE_READS", "0"),
            (env::MAX_CONNECTIONS_PER_USER, "3"),
            (env::MAX_IDS_PER_FRAME, "46"),
        ]);
        let c = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            c.limits.rates.send,
            Rate {
                burst: 5,
                per_minute: 60
            }
        );
        assert!(c.limits.rates.reads.is_off());
        assert_eq!(c.limits.rates.groups, Limits::default().rates.groups);
        assert_eq!(
            (
                c.limits.max_connections_per_user,
                c.limits.max_ids_per_frame
            ),
            (3, 46)
        );
        for (name, bad) in [
            ("MESSENGER_RATE_PUSH", "lots"),
            (env::MAX_IDS_PER_FRAME, "47"),
            (env::MAX_GROUPS_PER_USER, "0"),
        ] {
            let mut vars = TABLES.to_vec();
            vars.push((name, bad));
            let e = Config::from_lookup(lookup(&vars)).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
