//! The port contract suite against the in-memory store (the embedded gateway's backend), and
//! the object-store contract against the in-memory object store.

use async_trait::async_trait;
use messenger::attachments::signed::InMemoryObjects;
use messenger::contract::{Fetched, ObjectClient};
use messenger::memory::InMemoryStore;
use messenger::ports::Objects;
use std::sync::Arc;

async fn store() -> Arc<InMemoryStore> {
    Arc::new(InMemoryStore::new())
}

messenger::contract_tests!(store());

/// The in-memory store's forms and URLs, used as an HTTP client would use them.
struct Direct(Arc<InMemoryObjects>);

#[async_trait]
impl ObjectClient for Direct {
    async fn post_form(&self, _url: &str, fields: &[(String, String)], file: Vec<u8>) -> u16 {
        match self.0.accept_post(fields, file, chrono::Utc::now()).await {
            Ok(_) => 204,
            Err(refusal) => refusal.status(),
        }
    }

    async fn get(&self, url: &str) -> Fetched {
        match self.0.fetch(url, chrono::Utc::now()).await {
            Ok(d) => Fetched {
                status: 200,
                content_type: Some(d.content_type),
                disposition: d.disposition,
                body: d.bytes,
            },
            Err(refusal) => Fetched {
                status: refusal.status(),
                content_type: None,
                disposition: None,
                body: Vec::new(),
            },
        }
    }
}

async fn objects() -> (Arc<dyn Objects>, Arc<dyn ObjectClient>) {
    let objects = Arc::new(InMemoryObjects::in_memory());
    (objects.clone(), Arc::new(Direct(objects)))
}

mod objects {
    messenger::object_contract_tests!(super::objects());
}
