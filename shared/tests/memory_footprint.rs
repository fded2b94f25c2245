//! The in-memory store's memory per stored message, measured by a counting allocator: live
//! heap bytes after appending 100,000 chat messages (100-byte bodies, ids shaped like the load
//! generator's) to 1,000 conversations, divided by the count. The target is ≤ 1 KiB (issue 12;
//! docs/reliability.md says where the bytes go).

use messenger::domain::{ClientMsgId, ConversationId, NewMessage, RequestDigest, UserId};
use messenger::memory::InMemoryStore;
use messenger::ports::MessageLog;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bound per message, in bytes.
const BOUND: usize = 1024;

#[test]
fn a_stored_chat_message_costs_at_most_1_kib() {
    let store = InMemoryStore::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (conversations, messages) = (1_000usize, 100_000usize);
    let users: Vec<UserId> = (0..2 * conversations)
        .map(|i| UserId::new(format!("bench1764580000-{i}")).unwrap())
        .collect();
    let body = "x".repeat(100);
    let before = LIVE.load(Ordering::Relaxed);
    rt.block_on(async {
        for n in 0..messages {
            let c = n % conversations;
            let (from, to) = (&users[2 * c], &users[2 * c + 1]);
            let conversation = ConversationId::direct(from, to);
            let m = NewMessage {
                digest: RequestDigest::of("send", &conversation, &[&body, ""]),
                conversation,
                from: from.clone(),
                client_msg_id: ClientMsgId::new(format!("{}-{n}", 2 * c)).unwrap(),
                body: body.clone(),
                event: None,
                sent_at: chrono::Utc::now(),
                expires_at: None,
                reply_to: None,
                attachments: Vec::new(),
            };
            store.append(m).await.unwrap();
        }
    });
    let per_message = (LIVE.load(Ordering::Relaxed) - before) as usize / messages;
    println!("{per_message} bytes of heap per stored message (100-byte body)");
    // Where they go (docs/reliability.md): the log entry's struct, the idempotency map's key
    // and value structs; the rest is their strings on the heap and the collections' slack.
    println!(
        "size_of: Message {}, (UserId, ClientMsgId) {}, SentKey {}",
        std::mem::size_of::<messenger::domain::Message>(),
        std::mem::size_of::<(UserId, ClientMsgId)>(),
        std::mem::size_of::<messenger::domain::SentKey>(),
    );
    assert!(per_message <= BOUND, "{per_message} bytes per message");
}
