//! Messenger core: everything the route Lambdas and the embedded gateway share. It knows a
//! caller and a frame, nothing about the AWS event that carried them (that is
//! `messenger-lambda`), and no AWS SDK (that is `messenger-aws`).
//!
//! A newcomer's map, from the wire inwards:
//! - [`protocol`]: the JSON frames clients send and receive (the public API, see docs/protocol.md).
//! - [`routes`]: the route table — every action, the function serving it, the route keys.
//! - [`request`]: a client request as the use cases see it: caller, ids to echo, frame.
//! - [`usecases`]: the pipeline a frame goes through ([`usecases::serve_frame`]: parse, run the
//!   action's use case, answer errors with the client's `error` frame), and one file per route
//!   (`send.rs`, `create_group.rs`, `connect.rs`, …). They talk to the world only through the
//!   [`ports`].
//! - [`domain`]: ids, messages, memberships, and the rules on them (validation, 1:1 ids).
//! - [`ports`]: small traits for connections, conversations, the message log, last-seen, push
//!   devices, the poster (PostToConnection) and the notifier (mobile push). [`memory`]
//!   implements the storage ports in memory with production semantics (conditional writes,
//!   gapless per-conversation seq, idempotent appends, monotonic pointers).
//! - [`attachments`]: photos, voice notes and files: the upload rules, object keys, signed
//!   upload forms and download URLs; the bytes go straight to the object store (an
//!   [`ports::Objects`]), never through the WebSocket.
//! - [`push`]: offline mobile push: registered devices, notifications and their APNs/FCM payloads.
//! - [`ratelimit`]: per-user token buckets (GCRA) and their rates.
//! - [`auth`]: who a connection is: development HS256 tokens, or an identity provider's
//!   (Cognito, any OIDC issuer) RS256/ES256 tokens verified against its keys (a JWKS port).
//! - `contract` (feature `contract`): the port contract suite every storage adapter runs.
//! - [`App`]: the ports, limits and clock a use case runs against, built once per process.

mod app;
pub mod attachments;
pub mod auth;
#[cfg(feature = "contract")]
pub mod contract;
pub mod domain;
mod error;
pub mod memory;
pub mod moderation;
pub mod ports;
pub mod protocol;
pub mod push;
pub mod ratelimit;
pub mod request;
pub mod routes;
pub mod usecases;

pub use app::{App, Clock, Delivery, Limits, MAX_IDS_PER_FRAME, NoNotifier, Stores};
pub use error::Error;
