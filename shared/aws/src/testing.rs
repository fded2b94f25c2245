//! Test support (feature `test-support`): runs a route binary against a stub Lambda Runtime
//! API on 127.0.0.1 that hands it one event, records its response, and doubles as the
//! `@connections` management endpoint so the frames it posts are recorded too.

use crate::dynamo::{DynamoStore, Tables};
use crate::lambda::env;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What one invocation of a route binary did.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The body the binary posted to `/runtime/invocation/{id}/response` (or `/error`).
    pub response: Value,
    /// Whether it reported an invocation error instead of a response.
    pub is_error: bool,
    /// PostToConnection calls: (connection id, frame).
    pub posts: Vec<(String, Value)>,
}

/// The connection id of the recorded WebSocket events in `shared/tests/fixtures/`.
pub const FIXTURE_CONNECTION: &str = "ZLtyMcR7IAMCFZQ=";

impl Invocation {
    /// Asserts a 200 response whose only PostToConnection was to the recorded event's
    /// connection, and returns that frame (the route's reply).
    pub fn only_reply(&self) -> &Value {
        assert!(!self.is_error, "{self:?}");
        assert_eq!(self.response["statusCode"], 200, "{self:?}");
        assert_eq!(self.posts.len(), 1, "{:?}", self.posts);
        let (conn, frame) = &self.posts[0];
        assert_eq!(conn, FIXTURE_CONNECTION);
        frame
    }
}

/// The request id the stub hands out.
pub const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

#[derive(Default)]
struct Recorded {
    served: bool,
    posts: Vec<(String, Value)>,
}

struct HttpRequest {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().unwrap_or(0),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).await?;
    }
    Ok(Some(HttpRequest { method, path, body }))
}

/// Connection ids are percent-encoded in the management API's path (`=` → `%3D`).
fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn respond(w: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // A client that went away is the test's concern (it sees no response), not the stub's.
    let _ = w.write_all(head.as_bytes()).await;
    let _ = w.write_all(body).await;
}

async fn serve_connection(
    stream: TcpStream,
    event: Arc<Value>,
    recorded: Arc<Mutex<Recorded>>,
    done: mpsc::UnboundedSender<(bool, Value)>,
) {
    let mut r = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut r).await {
        let w = r.get_mut();
        let path = percent_decode(&req.path);
        if req.method == "GET" && path.ends_with("/runtime/invocation/next") {
            let first = !std::mem::replace(&mut recorded.lock().unwrap().served, true);
            if !first {
                // One event per test: leave the runtime waiting until the test kills it.
                std::future::pending::<()>().await;
            }
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            let headers = [
                ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:test".to_owned(),
                ),
                ("content-type", "application/json".to_owned()),
            ];
            respond(w, "200 OK", &headers, event.to_string().as_bytes()).await;
        } else if req.method == "POST" && path.contains("/runtime/") {
            let is_error = path.ends_with("/error");
            let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            respond(w, "202 Accepted", &[], b"{}").await;
            let _ = done.send((is_error, body));
        } else if req.method == "POST" && path.contains("/@connections/") {
            let conn = path.rsplit('/').next().unwrap_or("").to_owned();
            let frame = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            recorded.lock().unwrap().posts.push((conn, frame));
            respond(w, "200 OK", &[], b"").await;
        } else {
            respond(w, "404 Not Found", &[], b"").await;
        }
    }
}

/// Runs the binary at `bin` with exactly `vars` as its environment (plus the runtime's own
/// variables), hands it `event`, and returns what it answered and posted. The stub is also the
/// management endpoint: `{endpoint}/prod` is in [`env::MANAGEMENT_ENDPOINT`] unless `vars`
/// sets it. Panics when the binary exits or gives no answer within 60 s.
pub async fn invoke_once(bin: &Path, vars: &[(String, String)], event: Value) -> Invocation {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
    let addr = listener.local_addr().unwrap();
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let event = Arc::new(event);
    let server = {
        let recorded = recorded.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(
                    stream,
                    event.clone(),
                    recorded.clone(),
                    done_tx.clone(),
                ));
            }
        })
    };
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env(env::MANAGEMENT_ENDPOINT, format!("http://{addr}/prod"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn the route binary");
    let answer = tokio::select! {
        a = done_rx.recv() => a,
        status = child.wait() => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err).await;
            }
            panic!("{} exited ({status:?}) before answering:\n{err}", bin.display());
        }
        _ = tokio::time::sleep(Duration::from_secs(60)) => None,
    };
    let _ = child.kill().await;
    server.abort();
    let (is_error, response) = answer.expect("the binary answered within 60 s");
    let posts = std::mem::take(&mut recorded.lock().unwrap().posts);
    Invocation {
        response,
        is_error,
        posts,
    }
}

/// Asserts that the binary, started with no configuration, exits at once with status 2 and a
/// message naming `variable`.
pub async fn assert_fails_fast_without(bin: &Path, variable: &str) {
    let (code, stderr) = run_unconfigured(bin).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(variable), "{stderr}");
}

/// Runs the binary with no configuration at all and returns (exit code, stderr).
pub async fn run_unconfigured(bin: &Path) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(bin)
        .env_clear()
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("an unconfigured binary exits at once")
        .expect("run the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The variable the test command sets to the running emulator's endpoint.
pub const ENDPOINT_VAR: &str = "MESSENGER_DYNAMODB_ENDPOINT";

/// The emulator's endpoint. Unset means the suite was run without the emulator: fail loudly,
/// never skip.
pub fn emulator_endpoint() -> String {
    std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VAR} is not set: this test needs a DynamoDB emulator. Run the README's \
             test command (tests/run.sh): it starts MiniStack, sets {ENDPOINT_VAR} and stops it"
        )
    })
}

/// A store over new tables named `t<random>-…` on the emulator, with this log bucket size
/// (so test binaries and tests can run in parallel without seeing each other's data).
pub async fn fresh_store(bucket: u64) -> DynamoStore {
    let sdk = crate::sdk::for_endpoint(&emulator_endpoint()).await;
    let prefix = format!("t{}-", messenger::contract::tag());
    let store = DynamoStore::new(&sdk, Tables::with_prefix(&prefix)).with_bucket_size(bucket);
    store.create_tables().await.expect("create tables");
    store
}

/// A store over new tables on the emulator whose every request goes through `plan`'s faults
/// (the tables themselves are created without faults), and a store on the same tables without
/// faults, to check what was really stored.
pub async fn fresh_store_with_faults(
    bucket: u64,
    plan: std::sync::Arc<crate::faults::FaultPlan>,
) -> (DynamoStore, DynamoStore) {
    let clean = fresh_store(bucket).await;
    let sdk = crate::sdk::for_endpoint(&emulator_endpoint()).await;
    let faulty = crate::faults::FaultyHttpClient::wrap(&sdk, plan);
    let store = DynamoStore::new(&faulty, clean.tables().clone())
        .with_bucket_size(bucket)
        .with_unlimited_sdk_retries();
    (store, clean)
}

/// The route functions' environment for fresh tables on the emulator named by
/// `MESSENGER_DYNAMODB_ENDPOINT` (the tables are created here), and a store to inspect them.
pub async fn emulator_env() -> (Vec<(String, String)>, DynamoStore) {
    let endpoint = emulator_endpoint();
    let store = fresh_store(crate::dynamo::DEFAULT_BUCKET).await;
    let tables = store.tables().clone();
    let vars = [
        ("AWS_ENDPOINT_URL", endpoint),
        (env::PRESENCE_TABLE, tables.presence),
        (env::MEMBERSHIPS_TABLE, tables.memberships),
        (env::MESSAGES_TABLE, tables.messages),
        (env::DEVICES_TABLE, tables.devices),
    ];
    (
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        store,
    )
}

/// A recorded API Gateway WebSocket event from `shared/tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    let raw = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&raw).expect("fixture is JSON")
}

/// Seeds the state the recorded events expect: Alice and Bob share `dm:alice:bob`, where Bob
/// wrote seq 1.
pub async fn seed_direct_conversation(store: &DynamoStore) {
    use messenger::domain::{ClientMsgId, ConversationId, NewMessage, RequestDigest, UserId};
    use messenger::ports::{Effects, MessageLog};
    let (alice, bob) = (UserId::new("alice").unwrap(), UserId::new("bob").unwrap());
    let conv = ConversationId::direct(&alice, &bob);
    let now = chrono::Utc::now();
    let m = NewMessage {
        digest: RequestDigest::of("send", &conv, &["hello"]),
        conversation: conv,
        from: bob.clone(),
        client_msg_id: ClientMsgId::new("b-1").unwrap(),
        body: "hello".into(),
        event: None,
        sent_at: now,
        expires_at: None,
        attachments: Vec::new(),
        reply_to: None,
    };
    // The first message of a 1:1 conversation makes both members.
    let effects = Effects {
        direct: vec![
            (alice, messenger::domain::RequestState::Accepted),
            (bob, messenger::domain::RequestState::Accepted),
        ],
        ..Default::default()
    };
    store.append_with(m, &effects, None).await.expect("append");
}

/// A fresh FCM platform application on the emulator behind `sdk`.
pub async fn platform_application(sdk: &aws_config::SdkConfig) -> String {
    aws_sdk_sns::Client::new(sdk)
        .create_platform_application()
        .name(format!("fcm-{}", messenger::contract::tag()))
        .platform("GCM")
        .attributes("PlatformCredential", "test-server-key")
        .send()
        .await
        .expect("create platform application")
        .platform_application_arn
        .expect("an ARN")
}

/// A fresh topic with a fresh SQS queue subscribed to it: (topic ARN, queue URL).
pub async fn topic_with_queue(sdk: &aws_config::SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let name = format!("messages-{}", messenger::contract::tag());
    let topic = sns.create_topic().name(name).send().await.expect("topic");
    let topic = topic.topic_arn.expect("a topic ARN");
    let queue = subscribed_queue(sdk, &topic).await;
    (topic, queue)
}

/// A fresh SQS queue subscribed to `topic` (as an analytics consumer would be); its URL.
pub async fn subscribed_queue(sdk: &aws_config::SdkConfig, topic: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let (sns, sqs) = (aws_sdk_sns::Client::new(sdk), aws_sdk_sqs::Client::new(sdk));
    let name = format!("sub-{}", messenger::contract::tag());
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue");
    let queue = queue.queue_url.expect("a queue URL");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn = attrs.attributes.expect("attributes")[&QueueAttributeName::QueueArn].clone();
    // As on AWS, the queue must let the topic send to it (IAM is enforced on the emulator).
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .expect("queue policy");
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("subscribe");
    queue
}

/// Every SNS message (the notification envelope's `Message`, parsed, with its message
/// attributes) that reached `queue` from `topic` before this call: it publishes a marker to the
/// topic and reads the queue until the marker arrives. The emulators (MiniStack, moto) deliver
/// a topic's messages to its SQS subscribers within the Publish call, so whatever was published
/// before the marker is in the queue by then: an absent event never came (docs/infra.md).
pub async fn events_before_marker(
    sdk: &aws_config::SdkConfig,
    topic: &str,
    queue: &str,
) -> Vec<(Value, Value)> {
    let marker = serde_json::json!({"marker": messenger::contract::tag()});
    aws_sdk_sns::Client::new(sdk)
        .publish()
        .topic_arn(topic)
        .message(marker.to_string())
        .send()
        .await
        .expect("publish the marker");
    let mut events = Vec::new();
    let read = async {
        loop {
            for event in received_events(sdk, queue).await {
                if event.0 == marker {
                    return;
                }
                events.push(event);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the marker reaches the queue");
    events
}

/// The SNS messages (the notification envelopes' `Message`, parsed) and their message
/// attributes that reached `queue`, waiting up to 10 s for the first.
pub async fn received_events(sdk: &aws_config::SdkConfig, queue: &str) -> Vec<(Value, Value)> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let got = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(10)
        .send()
        .await
        .expect("receive");
    got.messages
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let envelope: Value =
                serde_json::from_str(m.body().unwrap_or("{}")).expect("an SNS envelope");
            let message =
                serde_json::from_str(envelope["Message"].as_str().unwrap_or("null")).expect("JSON");
            (message, envelope["MessageAttributes"].clone())
        })
        .collect()
}

/// Messages waiting in an SQS queue (`ApproximateNumberOfMessages`).
pub async fn queue_depth(sdk: &aws_config::SdkConfig, queue: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes");
    attrs
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .expect("a message count")
}

/// The variable the test command sets to the running moto server's endpoint.
pub const MOTO_VAR: &str = "MESSENGER_MOTO_ENDPOINT";

/// The moto server's endpoint. Unset means the suite was run without it: fail loudly.
pub fn moto_endpoint() -> String {
    std::env::var(MOTO_VAR).unwrap_or_else(|_| {
        panic!("{MOTO_VAR} is not set: run the README's test command (tests/run.sh)")
    })
}

/// What moto's SNS received for the platform endpoint `endpoint_arn`: every message published
/// to it (the `Message` of each Publish, parsed; in no particular order), read from moto's
/// record of its model (`GET /moto-api/data.json`): the platform's side of a push, not the
/// publisher's.
pub async fn moto_platform_publishes(moto: &str, endpoint_arn: &str) -> Vec<Value> {
    let addr = moto
        .strip_prefix("http://")
        .expect("a plain http moto endpoint")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).await.expect("connect to moto");
    let request =
        format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("moto answers")
        .unwrap();
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let data: Value = serde_json::from_str(body).expect("moto's model data as JSON");
    let endpoints = data["sns"]["PlatformEndpoint"].as_array().cloned();
    let endpoint = endpoints
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["arn"] == endpoint_arn)
        .unwrap_or_else(|| panic!("moto has no platform endpoint {endpoint_arn}"));
    // `messages` is moto's message id → message map.
    endpoint["messages"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|v| serde_json::from_str(v.as_str().unwrap_or("null")).expect("JSON"))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh bucket `t<random>` on the emulator, and the object store on it.
pub async fn fresh_bucket() -> crate::S3Objects {
    let endpoint = emulator_endpoint();
    let sdk = crate::sdk::for_endpoint(&endpoint).await;
    let bucket = format!("t{}", messenger::contract::tag());
    let objects = crate::S3Objects::new(&sdk, &bucket, Some(&endpoint)).expect("S3 client");
    objects.create_bucket().await.expect("create bucket");
    objects
}

/// A plain HTTP/1.1 client doing what an app does with upload forms and download URLs:
/// `multipart/form-data` POSTs and GETs (http only: emulators and the embedded gateway).
pub struct HttpObjectClient {
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<hyper::body::Bytes>,
    >,
}

impl Default for HttpObjectClient {
    fn default() -> Self {
        Self {
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        }
    }
}

/// `fields` then the file (field `file`, last, as S3 requires) as `multipart/form-data`: the
/// body and its content type.
pub fn multipart(fields: &[(String, String)], file: &[u8]) -> (Vec<u8>, String) {
    let boundary = format!("----messenger{}", messenger::contract::tag());
    let mut body = Vec::with_capacity(file.len() + 4096);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

impl HttpObjectClient {
    async fn request(
        &self,
        request: hyper::Request<http_body_util::Full<hyper::body::Bytes>>,
    ) -> messenger::contract::Fetched {
        use http_body_util::BodyExt;
        let response = tokio::time::timeout(Duration::from_secs(30), self.http.request(request))
            .await
            .expect("an HTTP answer within 30 s")
            .expect("HTTP request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, disposition) = (header("content-type"), header("content-disposition"));
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("HTTP body")
            .to_bytes()
            .to_vec();
        messenger::contract::Fetched {
            status,
            content_type,
            disposition,
            body,
        }
    }
}

#[async_trait::async_trait]
impl messenger::contract::ObjectClient for HttpObjectClient {
    async fn post_form(&self, url: &str, fields: &[(String, String)], file: Vec<u8>) -> u16 {
        let (body, content_type) = multipart(fields, &file);
        let request = hyper::Request::post(url)
            .header("content-type", content_type)
            .body(http_body_util::Full::new(body.into()))
            .expect("a POST request");
        let answer = self.request(request).await;
        if !(200..300).contains(&answer.status) {
            println!(
                "POST {url}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        answer.status
    }

    async fn get(&self, url: &str) -> messenger::contract::Fetched {
        let request = hyper::Request::get(url)
            .body(http_body_util::Full::default())
            .expect("a GET request");
        self.request(request).await
    }
}
