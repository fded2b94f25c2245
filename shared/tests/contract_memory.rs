//! The port contract suite against the in-memory store (the embedded gateway's backend).

use messenger::memory::InMemoryStore;
use std::sync::Arc;

async fn store() -> Arc<InMemoryStore> {
    Arc::new(InMemoryStore::new())
}

messenger::contract_tests!(store());
