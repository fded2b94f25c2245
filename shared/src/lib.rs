//! Messenger core: everything the route Lambdas and the embedded gateway share.
//!
//! A newcomer's map, from the wire inwards:
//! - [`protocol`]: the JSON frames clients send and receive (the public API, see docs/protocol.md).
//! - [`apigw`]: the Lambda shape. Turns an API Gateway WebSocket event into a validated
//!   [`apigw::Request`], runs a use case and maps its [`Error`] to the client's `error` frame.
//!   Each `functions/<route>` crate is a few lines on top of it.
//! - [`usecases`]: one module per route (`connect`, `send`, `ack`, `sync`, …). They know nothing
//!   of AWS; they talk to the world through the [`ports`].
//! - [`domain`]: ids, messages, memberships, and the rules on them (validation, 1:1 ids).
//! - [`ports`]: small traits for connections, conversations, the message log, last-seen and the
//!   pusher. [`memory`] implements them in memory with production semantics (conditional writes,
//!   gapless per-conversation seq, idempotent appends, monotonic pointers).
//! - [`push`]: offline push: registered devices, notifications and their APNs/FCM payloads;
//!   the [`ports::Notifier`] sends them (SNS on AWS, a recorder when embedded).
//! - [`auth`]: HS256 JWTs, verified by the `$connect` authorizer and minted for development.
//! - `contract` (feature `contract`): the port contract suite every storage adapter runs.
//! - [`App`]: the ports, limits and clock a use case runs against, built once per process.

pub mod apigw;
mod app;
pub mod auth;
#[cfg(feature = "contract")]
pub mod contract;
pub mod domain;
mod error;
pub mod memory;
pub mod ports;
pub mod protocol;
pub mod push;
pub mod usecases;

pub use app::{App, Clock, Delivery, Limits, NoNotifier, Stores};
pub use error::Error;
