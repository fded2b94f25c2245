//! `messenger-bench`: load generator for the Messenger WebSocket API, and the yardstick it is
//! compared with.
//!
//! Where things are:
//! - [`run`]: one benchmark run: start the target (the embedded gateway over the in-memory store
//!   or DynamoDB, or the reference server, in-process; or any URL), open the connections with bounded concurrency, drive the load,
//!   drain, and turn what every connection saw into a [`report::Report`].
//! - [`plan`]: who talks to whom ([`plan::Topology`]): pairs of users, or groups of G members.
//! - [`setup`]: creates the groups of a group plan through `create_group` before the load.
//! - [`client`]: one connection's task: sends on schedule, matches `sent` replies, records
//!   every `message` it receives (latency, duplicates, seq).
//! - [`report`]: percentiles, throughput, and the loss / duplication / seq checks.
//! - [`reference`]: a minimal raw tokio-tungstenite fan-out server speaking the `send` subset of
//!   the protocol, with no storage: the practical limit of the machine for the same traffic.
//! - [`lambda_init`]: a route binary's init time and RSS against a stub Lambda Runtime API.
//! - [`fuzz`]: mutated frames of every action through the real handler stack in process, and
//!   mutated tokens through the authorizer (`messenger-bench fuzz`).
//! - [`sys`]: process limits and machine facts (open files, CPU time, RSS, CPU model).

pub mod client;
pub mod fuzz;
pub mod lambda_init;
pub mod plan;
pub mod reference;
pub mod report;
pub mod run;
pub mod setup;
pub mod sys;

pub use plan::Topology;
pub use report::Report;
pub use run::{BenchConfig, Load, Store, Target, run};

/// Why a run could not be carried out (lost or duplicated messages are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot start the {what} server: {source}")]
    Serve {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("connection {index} could not be opened: {source}")]
    Connect {
        index: usize,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection {index} was not opened within {seconds} s")]
    ConnectTimeout { index: usize, seconds: u64 },
    #[error("set-up failed: {0}")]
    Setup(String),
    #[error("a connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
