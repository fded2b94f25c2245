//! Test support for the `messenger-local` binary: start `serve` as a child process, and a
//! counting HTTP proxy to put between such processes and DynamoDB.

#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_messenger-local");
/// How long any single wait may take (a hang guard, not a timing check).
pub const WAIT: Duration = Duration::from_secs(30);

/// Starts `serve` with `args` on a free port; returns the child (killed when dropped) and its
/// WebSocket base URL, once it prints it (it is then listening).
pub async fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .args(args)
        // Warnings and errors only, unless the test is run with RUST_LOG.
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.trim().strip_prefix("WebSocket:") {
                return rest.trim().trim_end_matches("?token=<token>").to_owned();
            }
        }
        panic!("serve exited before printing its URL")
    })
    .await
    .expect("serve prints its URL when ready");
    // Keep reading, as a terminal would: a closed pipe would fail the server's next print.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// What went through a [`DynamoProxy`]: requests per DynamoDB operation (`X-Amz-Target`), and
/// the transactions DynamoDB applied (200) and cancelled (`TransactionCanceledException`: a
/// condition failed).
#[derive(Debug, Default, Clone)]
pub struct ProxyStats {
    pub requests: BTreeMap<String, u64>,
    pub committed_transactions: u64,
    pub cancelled_transactions: u64,
}

/// A plain HTTP/1.1 proxy on 127.0.0.1 in front of the DynamoDB emulator that counts what
/// passes: DynamoDB's own answers, seen from outside the processes that made the requests.
pub struct DynamoProxy {
    pub endpoint: String,
    stats: Arc<Mutex<ProxyStats>>,
}

impl DynamoProxy {
    /// A proxy forwarding to `upstream` (`http://host:port`), until the test ends.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("a plain http emulator endpoint")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(Mutex::new(ProxyStats::default()));
        let counted = stats.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let (upstream, stats) = (upstream.clone(), counted.clone());
                tokio::spawn(async move {
                    // A connection ends when either side closes it: nothing to report.
                    let _ = forward(down, &upstream, &stats).await;
                });
            }
        });
        Self { endpoint, stats }
    }

    pub fn stats(&self) -> ProxyStats {
        self.stats.lock().unwrap().clone()
    }
}

/// Forwards one client connection's requests, one at a time, over its own upstream connection.
async fn forward(
    down: TcpStream,
    upstream: &str,
    stats: &Mutex<ProxyStats>,
) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream).await?;
    let (down_r, mut down_w) = down.into_split();
    let (up_r, mut up_w) = up.into_split();
    let (mut down_r, mut up_r) = (BufReader::new(down_r), BufReader::new(up_r));
    while let Some(request) = read_message(&mut down_r).await? {
        up_w.write_all(&request.raw).await?;
        let Some(response) = read_message(&mut up_r).await? else {
            return Ok(());
        };
        {
            let mut s = stats.lock().unwrap();
            let target = request
                .header("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or("?")
                .to_owned();
            if target == "TransactWriteItems" {
                if response.head.starts_with("HTTP/1.1 200") {
                    s.committed_transactions += 1;
                } else if String::from_utf8_lossy(&response.body)
                    .contains("TransactionCanceledException")
                {
                    s.cancelled_transactions += 1;
                }
            }
            *s.requests.entry(target).or_default() += 1;
        }
        down_w.write_all(&response.raw).await?;
    }
    Ok(())
}

/// One HTTP/1.1 message: its bytes as received, its head and its (de-chunked) body.
struct HttpMessage {
    raw: Vec<u8>,
    head: String,
    body: Vec<u8>,
}

impl HttpMessage {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one message (`None` at a clean end of the connection).
async fn read_message(r: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<HttpMessage>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        if r.read_until(b'\n', &mut raw).await? == 0 {
            return Ok(None);
        }
        if &raw[before..] == b"\r\n" && before > 0 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut m = HttpMessage {
        raw,
        head,
        body: Vec::new(),
    };
    if m.header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let start = m.raw.len();
            r.read_until(b'\n', &mut m.raw).await?;
            let line = String::from_utf8_lossy(&m.raw[start..]).into_owned();
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await?;
            m.raw.extend_from_slice(&chunk);
            if size == 0 {
                return Ok(Some(m));
            }
            m.body.extend_from_slice(&chunk[..size]);
        }
    }
    let length = m
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body).await?;
    m.raw.extend_from_slice(&body);
    m.body = body;
    Ok(Some(m))
}
