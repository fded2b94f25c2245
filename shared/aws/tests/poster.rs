//! ApiGwPoster against a local stand-in of the `@connections` endpoint: a posted frame arrives
//! at the right path, 410 becomes `PostError::Gone`, and a hanging endpoint cannot hold a send
//! (the explicit timeouts turn it into `Failed`). With faults injected under the SDK client:
//! throttled (429), failed (500) and timed-out posts are retried; a lost answer is retried too
//! (the frame then arrives twice); a post failing on every attempt is `Failed`, not `Gone`.

use messenger::domain::ConnectionId;
use messenger::ports::{PostError, Poster};
use messenger_aws::faults::{Fault, FaultPlan, FaultyHttpClient};
use messenger_aws::{ApiGwPoster, CallTimeouts};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Serves every request with `reply` (None: accept and never answer); sends each request's
/// head and body to the returned channel.
async fn endpoint(reply: Option<&'static str>) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/prod", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 65536];
                let mut got = Vec::new();
                // Head and a small body arrive together from the SDK; read until both are in.
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if n == 0 || complete(&text) {
                        let _ = tx.send(text);
                        break;
                    }
                }
                match reply {
                    Some(r) => {
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    (url, rx)
}

fn complete(req: &str) -> bool {
    let Some((head, body)) = req.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    body.len() >= len
}

async fn poster(url: &str, timeouts: CallTimeouts) -> ApiGwPoster {
    let sdk = messenger_aws::sdk::for_endpoint("http://127.0.0.1:9").await;
    ApiGwPoster::new(&sdk, url, timeouts)
}

fn conn() -> ConnectionId {
    ConnectionId::new("ZLtyMcR7IAMCFZQ=").unwrap()
}

#[tokio::test]
async fn a_frame_is_posted_to_the_connection() {
    let (url, mut requests) = endpoint(Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
    let p = poster(&url, CallTimeouts::default()).await;
    p.post(&conn(), r#"{"type":"message"}"#).await.unwrap();
    let req = requests.recv().await.unwrap();
    assert!(
        req.starts_with("POST /prod/@connections/ZLtyMcR7IAMCFZQ%3D "),
        "{req}"
    );
    assert!(req.ends_with(r#"{"type":"message"}"#), "{req}");
}

#[tokio::test]
async fn gone_connections_answer_gone() {
    let body = r#"{"message":null}"#;
    let reply: &'static str = Box::leak(
        format!(
            "HTTP/1.1 410 Gone\r\nx-amzn-errortype: GoneException\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let (url, _requests) = endpoint(Some(reply)).await;
    let p = poster(&url, CallTimeouts::default()).await;
    assert!(matches!(p.post(&conn(), "{}").await, Err(PostError::Gone)));
}

#[tokio::test]
async fn a_hanging_endpoint_fails_instead_of_holding_the_send() {
    let (url, _requests) = endpoint(None).await;
    let quick = CallTimeouts {
        connect: Duration::from_millis(200),
        read: Duration::from_millis(200),
        attempt: Duration::from_millis(300),
        operation: Duration::from_secs(1),
    };
    let p = poster(&url, quick).await;
    // The test's own bound, well past the poster's: should its timeouts not apply, this fails
    // instead of hanging.
    let r = tokio::time::timeout(Duration::from_secs(10), p.post(&conn(), "{}"))
        .await
        .expect("the poster's timeouts end a hanging call");
    assert!(matches!(r, Err(PostError::Failed(_))), "{r:?}");
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// A poster whose SDK client injects `plan`'s faults.
async fn faulty_poster(url: &str, plan: Arc<FaultPlan>) -> ApiGwPoster {
    let sdk = messenger_aws::sdk::for_endpoint("http://127.0.0.1:9").await;
    ApiGwPoster::new(
        &FaultyHttpClient::wrap(&sdk, plan),
        url,
        CallTimeouts::default(),
    )
}

/// How many requests reached the endpoint (all of them have, once the post returned).
fn arrived(requests: &mut mpsc::UnboundedReceiver<String>) -> usize {
    std::iter::from_fn(|| requests.try_recv().ok()).count()
}

#[tokio::test]
async fn throttled_failed_and_timed_out_posts_are_retried_and_arrive_once() {
    for fault in [Fault::Throttle, Fault::ServerError, Fault::Timeout] {
        // GIVEN the first two of the poster's three attempts failing with `fault`
        let (url, mut requests) = endpoint(Some(OK)).await;
        let plan = Arc::new(FaultPlan::new(1, 1.0).only(&[fault]).sparing_last_attempt());
        let p = faulty_poster(&url, plan.clone()).await;
        // WHEN a frame is posted
        let r = p.post(&conn(), "{}").await;
        // THEN the third attempt delivers it, once
        assert!(r.is_ok(), "{fault}: {r:?}");
        assert_eq!(plan.total_injected(), 2, "{fault}");
        assert_eq!(arrived(&mut requests), 1, "{fault}");
    }
}

#[tokio::test]
async fn a_post_whose_answers_are_lost_is_retried_and_arrives_again() {
    // GIVEN an endpoint that gets every post but whose answers are lost twice
    let (url, mut requests) = endpoint(Some(OK)).await;
    let plan = Arc::new(
        FaultPlan::new(1, 1.0)
            .only(&[Fault::LostResponse])
            .sparing_last_attempt(),
    );
    let p = faulty_poster(&url, plan).await;
    // WHEN a frame is posted
    p.post(&conn(), "{}").await.unwrap();
    // THEN it succeeded, and arrived three times: delivery is at least once, which is why
    // clients drop a (conversation, seq) they already have
    assert_eq!(arrived(&mut requests), 3);
}

#[tokio::test]
async fn a_post_failing_on_every_attempt_is_failed_not_gone() {
    // GIVEN an endpoint throttling every attempt
    let (url, _requests) = endpoint(Some(OK)).await;
    let plan = Arc::new(FaultPlan::new(1, 1.0).only(&[Fault::Throttle]));
    let p = faulty_poster(&url, plan.clone()).await;
    // WHEN a frame is posted
    let r = p.post(&conn(), "{}").await;
    // THEN after three attempts it fails as `Failed`: the connection is not deleted, its user
    // counts as not reached (and is pushed)
    assert!(matches!(r, Err(PostError::Failed(_))), "{r:?}");
    assert_eq!(plan.total_injected(), 3);
}
