//! `messenger-local`: Messenger on one laptop, no AWS, Docker or Python needed.
//!
//! An API Gateway WebSocket emulator that calls the very route handlers the Lambdas run
//! (`functions/*`), in-process:
//! - [`gateway`]: the WebSocket endpoint (authorizer on `$connect`, route selection on
//!   `$request.body.action`, size limits, idle and maximum-duration timeouts) and the
//!   `@connections` management API over HTTP.
//! - [`registry`]: the live sockets with their bounded outbound queues, and
//!   [`registry::LocalPoster`], the in-process PostToConnection with the same 410 semantics.
//! - `socket`: one socket's task (frames in and out, write timeout, idle and 2-hour timers).
//! - `server`: the HTTP/1.1 server under it, with the handshake cap and header-read timeout.
//! - [`events`]: API Gateway event JSON of the real shape (`$connect`, `$disconnect`, the
//!   authorizer's; a frame's invocation is handed over decoded, `gateway.rs`).
//! - [`notifier`]: records the pushes and topic events SNS would send (`GET /_local/pushes`).
//! - [`routes`]: each route key invokes the function the route table names, in-process.
//! - [`files`]: attachments: a local directory served with S3-shaped signed upload forms and
//!   download URLs (or S3 itself).
//! - [`web`]: the web app at `/` and development tokens for it (`POST /_local/token`).

pub mod events;
pub mod files;
pub mod gateway;
pub mod notifier;
pub mod registry;
pub mod reports;
pub mod routes;
mod server;
mod socket;
pub mod web;

pub use gateway::{GatewayConfig, serve, serve_with};
