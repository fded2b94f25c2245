//! The object-store contract against the gateway's local-directory store, through real HTTP:
//! its upload forms posted and its download URLs fetched as an app does.

use async_trait::async_trait;
use messenger::contract::{Fetched, ObjectClient};
use messenger::ports::Objects;
use messenger_aws::testing::HttpObjectClient;
use messenger_local::files::{Files, mount};
use std::path::PathBuf;
use std::sync::Arc;

/// An HTTP client of one served directory, which it removes when dropped.
struct Served {
    http: HttpObjectClient,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[async_trait]
impl ObjectClient for Served {
    async fn post_form(&self, url: &str, fields: &[(String, String)], file: Vec<u8>) -> u16 {
        self.http.post_form(url, fields, file).await
    }
    async fn get(&self, url: &str) -> Fetched {
        self.http.get(url).await
    }
}

async fn objects() -> (Arc<dyn Objects>, Arc<dyn ObjectClient>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "messenger-files-test-{}",
        messenger::contract::tag()
    ));
    let mounted = mount(&Files::Directory(dir.clone()), b"secret", addr, 1 << 20)
        .await
        .unwrap();
    let router = mounted.router::<()>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Served {
        http: HttpObjectClient::default(),
        dir,
    };
    (mounted.objects.clone(), Arc::new(client))
}

messenger::object_contract_tests!(objects());
