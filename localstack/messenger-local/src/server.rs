//! The HTTP server under the gateway: accepts TCP connections and serves HTTP/1.1 with
//! upgrades (the WebSocket handshake), bounding what a client that never finishes costs.
//!
//! - At most `max_handshakes` connections may be waiting for their first response at once
//!   (request head, authorizer, `$connect`). Past that, a new connection is answered 429
//!   `LimitExceededException` and closed at once, as API Gateway answers past its connection
//!   rate: a flood of stalled handshakes cannot take the gateway's memory or descriptors.
//! - A client has `handshake_timeout` to send a complete request head (slowloris), on every
//!   request of a keep-alive connection too (idle ones are closed after it).
//! - A request is answered within `request_timeout` (its body read included), or gets 408.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// What one client may hold before its connection is refused or closed.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// Connections waiting for their first response at once.
    pub max_handshakes: usize,
    /// Longest wait for a complete request head.
    pub handshake_timeout: Duration,
    /// Longest time to answer one request, its body read included.
    pub request_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets the
/// HTTP connections finish what they are answering, and returns. Upgraded sockets are not
/// waited for (the gateway closes them itself).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HandshakeLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted: keep
                // serving the others, and do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let (router, stop) = (router.clone(), stop_rx.clone());
                tokio::spawn(connection(stream, peer, router, permit, limits, stop));
            }
            Err(_) => {
                tracing::warn!(%peer, "too many handshakes in progress; connection refused");
                tokio::spawn(refuse(stream));
            }
        }
    }
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// API Gateway's answer past its connection rate, written to a fresh socket (it fits in the
/// socket buffer: no wait on the client).
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"message":"Too many handshakes in progress"}"#;
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         x-amzn-ErrorType: LimitExceededException\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// One HTTP connection: its handshake permit is released with its first response.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    permit: OwnedSemaphorePermit,
    limits: HandshakeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permit = Arc::new(Mutex::new(Some(permit)));
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let (router, permit) = (router.clone(), permit.clone());
        async move {
            let answer = tokio::time::timeout(limits.request_timeout, router.oneshot(req)).await;
            // The first answer (a 101 for a WebSocket) ends the handshake.
            permit.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ok::<_, std::convert::Infallible>(match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => timed_out(),
            })
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
    }
}

fn timed_out() -> Response<Body> {
    let mut r = Response::new(Body::from(r#"{"message":"Request timed out"}"#));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    r
}
