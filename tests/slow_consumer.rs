//! A client that never reads, while others chat, on the embedded gateway (docs/reliability.md,
//! "Slow and hostile clients"): it is closed as a slow consumer once its queue holds 1 MiB, the
//! others get every message, and the gateway's memory stays bounded. Alone in its test binary,
//! so the process's RSS is this test's.

use messenger::domain::UserId;
use messenger_e2e::{Client, TestGateway, http};
use messenger_local::GatewayConfig;
use serde_json::{Value, json};

/// The bound this test holds the gateway to: what the process's RSS may grow while 64 MB are
/// offered to the client that does not read. The queue bound is 1 MiB; the rest is headroom
/// for the allocator (frames pass through it at ~100 MB/s) and the chat.
const RSS_GROWTH_BOUND_MIB: u64 = 32;
/// 64 KiB frames posted to the silent client, at most (64 MiB).
const FLOOD_POSTS: usize = 1024;
const FLOOD_FRAME: usize = 64 * 1024;

/// VmRSS of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Sends `n` messages to the group, then waits for the `n` messages of `other`.
async fn chat(mut c: Client, group: String, other: &'static str, n: usize) -> Client {
    for i in 0..n {
        let frame = json!({"action":"send","conversation":group,"client_msg_id":format!("{}-{i}", c.user),"body":"hello"});
        let sent = c.request(frame).await;
        assert_eq!(sent["type"], "sent", "{sent}");
    }
    for _ in 0..n {
        c.recv_where(|v| v["type"] == "message" && v["from"] == other)
            .await;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_the_others_chat_on_and_memory_stays_bounded() {
    let config = GatewayConfig::default();
    assert_eq!(config.max_outbound_bytes, 1024 * 1024);
    let (gw, stores) = TestGateway::start_with_store(config).await;
    // GIVEN a group of alice, bob and mallory, whose socket is never read (its receive buffer
    // is 4 KiB: the kernel holds little for her)
    let mut alice = gw.connect("alice", "phone").await;
    let bob = gw.connect("bob", "phone").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let url = format!("{}?token={}", gw.url(), gw.token("mallory", "phone"));
    let (_mallory, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("mallory's handshake");
    let group = alice
        .request(json!({"action":"create_group","name":"G","members":["bob","mallory"]}))
        .await;
    let group = group["conversation"].as_str().unwrap().to_owned();
    let mallory = stores
        .connections
        .of_users(&[UserId::new("mallory").unwrap()], chrono::Utc::now())
        .await
        .unwrap();
    let path = format!("/{}/@connections/{}", gw.config.stage, mallory[0].id);
    let rss_before = rss_kib();

    // WHEN alice and bob exchange 40 messages each through the group while 64 KiB frames are
    // posted to mallory (the management API), up to 64 MiB
    let chats = [
        tokio::spawn(chat(alice, group.clone(), "bob", 40)),
        tokio::spawn(chat(bob, group.clone(), "alice", 40)),
    ];
    let frame = vec![b'x'; FLOOD_FRAME];
    let (mut accepted, mut max_queued) = (0, 0);
    for _ in 0..FLOOD_POSTS {
        let (status, _, _) = http(gw.addr, "POST", &path, &frame).await;
        if status == 410 {
            break;
        }
        assert_eq!(status, 200);
        accepted += 1;
        let (_, _, stats) = http(gw.addr, "GET", "/_local/stats", b"").await;
        let stats: Value = serde_json::from_str(&stats).unwrap();
        max_queued = max_queued.max(stats["queued_bytes"].as_u64().unwrap());
    }
    let mut chatters = Vec::new();
    for chat in chats {
        chatters.push(chat.await.expect("a chatter got every message"));
    }
    let rss_growth_mib = rss_kib().saturating_sub(rss_before) / 1024;

    // THEN mallory was closed as a slow consumer long before 64 MiB: what the kernel's socket
    // buffers took, then 1 MiB of queue
    println!(
        "accepted {accepted} × 64 KiB before 410; max queued {max_queued} bytes; RSS +{rss_growth_mib} MiB"
    );
    assert!(accepted < FLOOD_POSTS, "never cut off");
    assert!(max_queued <= 1024 * 1024, "queued {max_queued} bytes");
    let (_, _, stats) = http(gw.addr, "GET", "/_local/stats", b"").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["slow_consumers"], 1, "{stats}");
    assert_eq!(http(gw.addr, "GET", &path, b"").await.0, 410);
    // … the chatters got every message (above) and are still connected …
    assert_eq!(stats["connections"], 2, "{stats}");
    // … and the gateway's memory grew by a bounded amount, not by what was offered
    assert!(
        rss_growth_mib < RSS_GROWTH_BOUND_MIB,
        "RSS grew by {rss_growth_mib} MiB"
    );
}
