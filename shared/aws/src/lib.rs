//! Messenger on AWS: the production adapters of the core's ports, and the Lambda wiring.
//!
//! Every AWS type lives in this crate; the core (`messenger`) never sees one.
//! - [`sdk`]: one `SdkConfig` per process, with the rustls+ring HTTP client and endpoint
//!   overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) so the same binaries run on
//!   AWS, MiniStack and LocalStack.
//! - [`dynamo`]: [`DynamoStore`], every storage port on DynamoDB: one module per table, with
//!   typed items (tables and requests in docs/data-model.md).
//! - [`metrics`]: counts every DynamoDB request and the capacity units it consumed.
//! - [`poster`]: [`ApiGwPoster`], PostToConnection with explicit timeouts; 410 → `Gone`.
//! - [`notifier`]: [`SnsNotifier`], mobile push through SNS platform endpoints and the messages
//!   topic.
//! - [`s3`]: [`S3Objects`], attachments in an S3 bucket: presigned upload forms and download
//!   URLs, HeadObject, tagging and DeleteObject as signed HTTP requests (no S3 SDK).
//! - [`stream`]: DynamoDB Streams records of the messages table (the `notify` function's input).
//! - [`lambda`]: what each `functions/<route>/src/main.rs` calls: typed config from env,
//!   JSON tracing, clients built once, then the runtime loop.
//! - `testing` (feature `test-support`): a stub Lambda Runtime API to run route binaries.
//! - `faults` (feature `faults`, in `test-support`): fault injection under the SDK clients
//!   and at the ports, for the reliability tests.

pub mod dynamo;
#[cfg(feature = "faults")]
pub mod faults;
pub mod lambda;
pub mod metrics;
pub mod notifier;
pub mod poster;
pub mod s3;
pub mod sdk;
pub mod stream;
#[cfg(feature = "test-support")]
pub mod testing;

pub use dynamo::{DynamoStore, Tables};
pub use metrics::{OpStats, Snapshot};
pub use notifier::{PlatformApps, SnsNotifier};
pub use poster::ApiGwPoster;
pub use s3::S3Objects;
pub use sdk::CallTimeouts;
