//! Test support (feature `test-support`): [`JwksServer`], a local HTTP server standing in for an
//! identity provider — its JWKS endpoint and discovery document — on a loopback port.

use messenger::auth::testing::{TestKey, jwk_set};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answers on a path.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(String),
    /// This status, empty body.
    Status(u16),
    /// Reads the request and never answers (a hung issuer).
    Hang,
}

#[derive(Default)]
struct Routes {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

/// A minimal HTTP/1.1 server on 127.0.0.1: each path answers what it was last told; unknown
/// paths 404. Stops when dropped.
pub struct JwksServer {
    pub addr: SocketAddr,
    routes: Arc<Mutex<Routes>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let routes = Arc::new(Mutex::new(Routes::default()));
        let served = routes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, served.clone()));
            }
        });
        Self { addr, routes, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `reply` on `path` from now on.
    pub fn serve(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .unwrap()
            .replies
            .insert(path.into(), reply);
    }

    /// Publishes these keys' JWK set on `path` (a key rotation when called again).
    pub fn publish(&self, path: &str, keys: &[&TestKey]) {
        let body = serde_json::to_string(&jwk_set(keys)).expect("JWKS JSON");
        self.serve(path, Reply::Json(body));
    }

    /// Serves a discovery document for `issuer` naming `jwks_path` of this server.
    pub fn discovery(&self, issuer: &str, jwks_path: &str) {
        let path = format!(
            "{}/.well-known/openid-configuration",
            issuer
                .strip_prefix(&self.url(""))
                .unwrap_or("")
                .trim_end_matches('/')
        );
        let doc = serde_json::json!({"issuer": issuer, "jwks_uri": self.url(jwks_path)});
        self.serve(&path, Reply::Json(doc.to_string()));
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.routes
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, routes: Arc<Mutex<Routes>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    let reply = {
        let mut routes = routes.lock().unwrap();
        *routes.hits.entry(path.clone()).or_default() += 1;
        routes.replies.get(&path).cloned()
    };
    let (status, body) = match reply {
        Some(Reply::Json(body)) => (200, body),
        Some(Reply::Status(code)) => (code, String::new()),
        Some(Reply::Hang) => {
            // Keep the connection open, unanswered, until the client gives up.
            let _ = stream.read(&mut buf).await;
            return;
        }
        None => (404, String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
