//! Test support (feature `faults`): the faults AWS produces, injected on purpose, so tests can
//! check that nothing acknowledged is lost under them (docs/reliability.md).
//!
//! - [`FaultPlan`]: which faults, at what rate, from which seed; counts what was injected.
//! - [`FaultyHttpClient`]: under the AWS SDK clients (DynamoDB, API Gateway management, SNS):
//!   throttling, throttled or conflicting transactions, 500s, timeouts and lost responses, in
//!   each service's own error format, so the real retry code runs.
//! - [`FaultyStore`], [`FaultyPoster`]: the same at the ports, for the in-memory store and
//!   the embedded gateway's poster; [`CrashPoint`]: a crash at a chosen post.

mod http;
mod plan;
mod ports;

pub use http::FaultyHttpClient;
pub use plan::{Fault, FaultPlan, seed_from_env};
pub use ports::{CrashPoint, FaultyPoster, FaultyStore};
