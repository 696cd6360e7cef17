//! HTTP simulators of the four vendor APIs, for tests, the CLI's sandbox and benchmarks.
//!
//! One server answers for all vendors: their paths never overlap (AMC `/amc/reporting/…`,
//! Amperity `/api/workflow/runs`, Adobe `/data/foundation/flowservice/…`, CARTO `/v3/sql/…`, and
//! each vendor's token endpoint at its real path). Each vendor module follows its API reference:
//! paths, headers, auth and token expiry, body validation with the vendor's error shape, state
//! transitions on a [`SimClock`] that tests can speed up, pagination and CSV results. Shared
//! machinery: [`Faults`] (429/5xx with Retry-After, delays, dropped connections, broken bodies),
//! [`Control`] (how the next runs end, counters), [`Tokens`] and [`csvgen`].
//!
//! The rule: a simulator never accepts what the real API would reject.
#![deny(missing_docs)]
// Handlers return `Result<_, Response>` so `?` yields the vendor's own error response; the
// size of `Response` is irrelevant next to an HTTP round trip.
#![allow(clippy::result_large_err)]

pub mod adobe;
pub mod amc;
pub mod amperity;
pub mod auth;
mod clock;
mod control;
pub mod csvgen;
mod faults;
mod record;
mod registry;
mod server;
mod tokens;
pub mod vendors;

pub use clock::SimClock;
pub use control::{Control, Outcome, RunPhase, RunScript, ScriptedRun};
pub use faults::{Fault, FaultRule, Faults};
pub use record::{Exchange, Recorder};
pub use server::{Sim, SimConfig, SimHandle};
pub use tokens::{TokenCheck, Tokens};
