//! The IaC template deployed on a running emulator (MiniStack), for the deployed-stack tests.
//!
//! [`DeployedStack::get`] runs `infra/deploy --target local` once per test binary against
//! `MESSENGER_DYNAMODB_ENDPOINT` (the emulator `tests/run.sh` starts; every service is on that
//! endpoint), with the host binaries next to this test binary (`target/debug/fn-*`, built by
//! `cargo build --workspace --bins`). Clients then talk to the deployed API Gateway WebSocket,
//! whose routes run the real Lambda binaries as emulator processes.

use crate::Client;
use messenger::auth;
use messenger::domain::{DeviceId, UserId};
use messenger_aws::{DynamoStore, Tables};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The secret the test stack's authorizer verifies tokens with (any 32+ characters).
const SECRET: &str = "deployed-stack-test-secret-0123456789";

/// The stacks' message retention (`MessageRetentionDays`).
pub const RETENTION_DAYS: i64 = 30;
/// The test stacks' per-user send rate (`RateLimitSend`): 10 at once, then one a second.
pub const SEND_RATE: &str = "10,60";
/// The test stacks' `MaxConnectionsPerUser`.
pub const MAX_CONNECTIONS: usize = 2;

/// A stack deployed from `infra/template.yaml`, with its outputs.
#[derive(Debug)]
pub struct DeployedStack {
    pub endpoint: String,
    pub name: String,
    pub outputs: HashMap<String, String>,
}

impl DeployedStack {
    /// The stack of this test binary, deployed on first use (a blocking call: the deploy script
    /// is a child process, and every test shares its stack). Development tokens (HS256).
    pub fn get() -> &'static DeployedStack {
        static STACK: OnceLock<DeployedStack> = OnceLock::new();
        STACK.get_or_init(|| Self::deploy("e2e", &["--jwt-secret", SECRET]))
    }

    /// A second stack, signing users in with its own Cognito user pool (`Identity=cognito`).
    /// Deploying it costs seconds: the zips are the first stack's.
    pub fn cognito() -> &'static DeployedStack {
        static STACK: OnceLock<DeployedStack> = OnceLock::new();
        STACK.get_or_init(|| Self::deploy("e2e-cognito", &["--identity", "cognito"]))
    }

    /// Runs `infra/deploy --target local` with these extra arguments against the emulator
    /// (the binaries next to this test binary); its exit status and its output.
    pub fn try_deploy(args: &[&str]) -> (std::process::ExitStatus, String) {
        let endpoint = std::env::var("MESSENGER_DYNAMODB_ENDPOINT")
            .expect("MESSENGER_DYNAMODB_ENDPOINT: a running MiniStack");
        let out = Command::new(workspace_root().join("infra/deploy"))
            .current_dir(workspace_root())
            .args(["--target", "local", "--endpoint", &endpoint])
            .arg("--binaries")
            .arg(bin_dir())
            .args(args)
            .output()
            .expect("run infra/deploy");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }

    fn deploy(prefix: &str, identity: &[&str]) -> Self {
        let endpoint = std::env::var("MESSENGER_DYNAMODB_ENDPOINT").expect(
            "MESSENGER_DYNAMODB_ENDPOINT: the deployed-stack test needs a running MiniStack \
             (tests/run.sh starts one; by hand: localstack/ministack start)",
        );
        let root = workspace_root();
        let bin_dir = bin_dir();
        for name in ["connect", "send", "authorizer"] {
            let bin = bin_dir.join(format!("fn-{name}"));
            assert!(
                bin.is_file(),
                "{} missing: run `cargo build --workspace --bins` first",
                bin.display()
            );
        }
        // A fresh stack per run: its tables start empty, whatever ran on this emulator before.
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp()
        );
        let outputs_file = std::env::temp_dir().join(format!("{name}-outputs.json"));
        let started = std::time::Instant::now();
        let status = Command::new(root.join("infra/deploy"))
            .current_dir(&root)
            .args(["--target", "local", "--endpoint", &endpoint])
            .args(["--stack-name", &name, "--stage", "e2e"])
            .args(identity)
            .arg("--binaries")
            .arg(&bin_dir)
            // Small log buckets: the scenarios cross partition boundaries, as the other tiers do.
            .args(["--param", "MessageLogBucket=10"])
            // Messages expire (the TTL attribute is then set; the tests check it).
            .args(["--param", &format!("MessageRetentionDays={RETENTION_DAYS}")])
            // Small per-user limits the security tests can reach (every other test stays within
            // them: its users each send a few messages from at most two devices).
            .args(["--param", &format!("RateLimitSend={SEND_RATE}")])
            .args([
                "--param",
                &format!("MaxConnectionsPerUser={MAX_CONNECTIONS}"),
            ])
            // Push on: an FCM platform application on the emulator.
            .args([
                "--param",
                &format!("FcmAppArn={}", fcm_application(&endpoint)),
            ])
            .arg("--outputs-json")
            .arg(&outputs_file)
            .status()
            .expect("run infra/deploy");
        assert!(status.success(), "infra/deploy failed: {status}");
        let outputs: HashMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(&outputs_file).expect("outputs file"))
                .expect("outputs JSON");
        let _ = std::fs::remove_file(&outputs_file);
        eprintln!(
            "deployed stack {name} in {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            outputs["WebSocketUrl"]
        );
        Self {
            endpoint,
            name,
            outputs,
        }
    }

    /// Held by a test for as long as it uses the stack, so that one test can have it alone
    /// ([`exclusive`](Self::exclusive)) while it counts the functions' invocations.
    pub async fn shared(&self) -> RwLockReadGuard<'static, ()> {
        gate().read().await
    }

    /// The stack to this test alone: every other test holds [`shared`](Self::shared).
    pub async fn exclusive(&self) -> RwLockWriteGuard<'static, ()> {
        gate().write().await
    }

    /// How many times each of these functions (`connect`, `send`, …) has run so far. MiniStack
    /// writes each invocation's START/END/REPORT lines to a log stream of its own in the
    /// function's log group (`/aws/lambda/<stack>-<function>`), so streams count invocations.
    /// Read with boto3 from `infra/.venv` (the deploy script's venv, installed by then).
    pub fn invocations(&self, functions: &[&str]) -> BTreeMap<String, usize> {
        const SCRIPT: &str = r#"
import boto3, json, sys
endpoint, stack, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1",
                    aws_access_key_id="test", aws_secret_access_key="test")
counts = {}
for fn in functions:
    n = 0
    try:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=f"/aws/lambda/{stack}-{fn}")
        for page in pages:
            n += len(page["logStreams"])
    except logs.exceptions.ResourceNotFoundException:
        pass
    counts[fn] = n
print(json.dumps(counts))
"#;
        let out = Command::new(workspace_root().join("infra/.venv/bin/python"))
            .args(["-c", SCRIPT, &self.endpoint, &self.name])
            .args(functions)
            .output()
            .expect("run infra/.venv/bin/python");
        assert!(
            out.status.success(),
            "counting invocations failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("invocation counts")
    }

    /// One stack output (panics with the list when absent).
    pub fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("no output {key} in {:?}", self.outputs))
    }

    /// The WebSocket URL without a token.
    pub fn url(&self) -> &str {
        self.output("WebSocketUrl")
    }

    /// A token the stack's authorizer accepts.
    pub fn token(&self, user: &str, device: &str) -> String {
        mint(SECRET, user, device)
    }

    /// Connects `user` on `device` with a valid token; `$connect` has run when this returns.
    pub async fn connect(&self, user: &str, device: &str) -> Client {
        let url = format!("{}?token={}", self.url(), self.token(user, device));
        Client::connect(&url, user)
            .await
            .unwrap_or_else(|e| panic!("{user}/{device} connects to the deployed API: {e}"))
    }

    /// Connects with `token` (any kind) on `device` (the `device` query parameter).
    pub async fn connect_with(&self, token: &str, device: &str, label: &str) -> Client {
        let url = format!("{}?token={token}&device={device}", self.url());
        Client::connect(&url, label)
            .await
            .unwrap_or_else(|e| panic!("{label}/{device} connects to the deployed API: {e}"))
    }

    /// Creates these users in the stack's Cognito user pool and signs them in
    /// (`tests/cognito_sign_in.py`, with infra/.venv's boto3, which infra/deploy installed).
    pub fn pool_users<const N: usize>(&self, emails: [&str; N]) -> [PoolUser; N] {
        let root = workspace_root();
        let out = Command::new(root.join("infra/.venv/bin/python"))
            .arg(root.join("tests/cognito_sign_in.py"))
            .args([&self.endpoint, "us-east-1"])
            .args([self.output("UserPoolId"), self.output("UserPoolClientId")])
            .args(emails)
            .output()
            .expect("run tests/cognito_sign_in.py");
        assert!(
            out.status.success(),
            "cognito_sign_in.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut users: HashMap<String, PoolUser> =
            serde_json::from_slice(&out.stdout).expect("the users' tokens as JSON");
        emails.map(|e| users.remove(e).expect("every user signed in"))
    }

    /// The private key the emulated user pool signs its `use` (`id` or `access`) tokens with.
    /// MiniStack keeps it in its STATE_DIR (localstack/ministack sets it); the tests forge
    /// tokens with it that differ from a genuine one in a single claim.
    pub fn pool_signing_key(&self, token_use: &str) -> jsonwebtoken::EncodingKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = self.pool_key(token_use).to_pkcs1_der().expect("PKCS#1 DER");
        jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())
    }

    /// The public half of [`Self::pool_signing_key`], PEM-encoded (what an attacker who read the
    /// JWKS would try as an HS256 secret).
    pub fn pool_public_key_pem(&self, token_use: &str) -> String {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        self.pool_key(token_use)
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a public key PEM")
    }

    fn pool_key(&self, token_use: &str) -> rsa::PrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        let path = workspace_root().join(format!(
            "localstack/.state/ministack-state/cognito-pool-keys/{}-{token_use}.pem",
            self.output("UserPoolId")
        ));
        let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (is MiniStack running from localstack/ministack?)",
                path.display()
            )
        });
        rsa::PrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 RSA key")
    }

    /// The SDK configuration of the emulator the stack runs on (its own tables, topics and
    /// endpoints, read as they are).
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        messenger_aws::sdk::for_endpoint(&self.endpoint).await
    }

    /// The deployed tables, through the production adapter (the item format the functions use).
    pub async fn store(&self) -> DynamoStore {
        let sdk = messenger_aws::sdk::for_endpoint(&self.endpoint).await;
        let tables = Tables {
            presence: self.output("PresenceTableName").to_owned(),
            memberships: self.output("MembershipsTableName").to_owned(),
            messages: self.output("MessagesTableName").to_owned(),
            devices: self.output("DevicesTableName").to_owned(),
        };
        DynamoStore::new(&sdk, tables).with_bucket_size(10)
    }
}

/// A user of the stack's Cognito user pool, signed in.
#[derive(Debug, serde::Deserialize)]
pub struct PoolUser {
    /// Their user id (the tokens' `sub`).
    pub sub: String,
    pub id_token: String,
    pub access_token: String,
}

/// target/<profile>/deps/deployed-<hash> → target/<profile>, where fn-* are.
fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The lock behind [`DeployedStack::shared`] and [`DeployedStack::exclusive`].
fn gate() -> &'static RwLock<()> {
    static GATE: OnceLock<RwLock<()>> = OnceLock::new();
    GATE.get_or_init(|| RwLock::new(()))
}

/// A fresh FCM platform application on the emulator (on a thread of its own: `deploy` runs
/// inside the tests' runtime, which cannot block on another future).
fn fcm_application(endpoint: &str) -> String {
    let endpoint = endpoint.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sdk = messenger_aws::sdk::for_endpoint(&endpoint).await;
            messenger_aws::testing::platform_application(&sdk).await
        })
    })
    .join()
    .expect("create the platform application")
}

/// A token for `user` on `device` signed with `secret`, valid for an hour.
pub fn mint(secret: &str, user: &str, device: &str) -> String {
    let now = chrono::Utc::now();
    auth::mint(
        secret.as_bytes(),
        &UserId::new(user).unwrap(),
        Some(&DeviceId::new(device).unwrap()),
        now,
        now + chrono::Duration::hours(1),
    )
}

/// The HTTP status of a refused WebSocket handshake (panics if the handshake succeeds).
pub async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("{url}: the handshake was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{url}: expected an HTTP refusal, got {e}"),
    }
}
