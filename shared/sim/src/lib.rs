//! HTTP simulators of the four vendor APIs, for tests, the CLI's sandbox and benchmarks.
//!
//! One server answers for all vendors: their paths never overlap (AMC `/amc/reporting/…`,
//! Amperity `/api/workflow/runs`, Adobe `/data/foundation/flowservice/…`, CARTO `/v3/sql/…`, and
//! each vendor's token endpoint at its real path). Each vendor simulator follows its API
//! reference: paths, headers, auth and token expiry, body validation with the vendor's error
//! shape, state transitions on a [`SimClock`] that tests can speed up, pagination and CSV
//! results.
//!
//! The rule: a simulator never accepts what the real API would reject.
//!
//! # Layout
//!
//! Each vendor is a folder named after it: [`amc`], [`amperity`], [`adobe`], [`carto`]. In each,
//! `mod.rs` holds the module docs (the vendor's routes and rules), the registry entry `SIM`, the
//! shared state and the router; `api.rs` what every route of that vendor shares (its error
//! shape, header and auth checks, its token endpoint); `model.rs` a run, its state at a moment
//! and how the vendor shows it; then one file per route or group of routes (`create.rs` or
//! `start.rs`, `status.rs`, `cancel.rs` or `stop.rs`, `list.rs`, `results.rs`) with the
//! validation of its requests.
//!
//! Shared by all vendors:
//! - [`auth`]: the credentials the simulator accepts (`accounts.rs` holds them), bearer checks,
//!   required headers, form bodies and the OAuth token endpoint;
//! - `state.rs`: [`Sim`], the state every vendor's routes take (settings, clock, faults, scripts
//!   and counters, tokens, recorder, signed download URLs);
//! - `vendor.rs`: what a vendor simulator gives the server ([`SimVendor`], each vendor's `SIM`),
//!   and `registry.rs`: the list of them the server mounts;
//! - `server.rs`: the merged router (vendor routes behind the fault and recording middleware,
//!   the file route, admin routes) and [`SimHandle`];
//! - [`Faults`] (429/5xx with Retry-After, delays, dropped connections, broken bodies),
//!   [`Control`] (how the next runs end, counters), [`Tokens`], [`SimClock`], the exchange
//!   [`Recorder`] and [`csvgen`] (the result files).
#![deny(missing_docs)]
// Handlers return `Result<_, Response>` so `?` yields the vendor's own error response; the
// size of `Response` is irrelevant next to an HTTP round trip.
#![allow(clippy::result_large_err)]

mod accounts;
pub mod adobe;
pub mod amc;
pub mod amperity;
pub mod auth;
pub mod carto;
mod clock;
mod control;
pub mod csvgen;
mod faults;
mod record;
mod registry;
mod server;
mod state;
mod tokens;
mod vendor;

pub use clock::SimClock;
pub use control::{Control, ForeignRun, ForeignStarter, Outcome, RunPhase, RunScript, ScriptedRun};
pub use faults::{EchoShape, Fault, FaultRule, Faults};
pub use record::{Exchange, Recorder};
pub use server::SimHandle;
pub use state::{Sim, SimConfig};
pub use tokens::{TokenCheck, Tokens};
pub use vendor::SimVendor;
