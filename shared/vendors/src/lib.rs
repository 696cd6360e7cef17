//! Clients for the vendor APIs runbridge drives, behind one [`Vendor`] trait.
//!
//! # Layout
//! - **One folder per vendor** (`amc/`, `amperity/`, `adobe/`, `carto/`), named after it. Its
//!   `mod.rs` holds the client (the [`Vendor`] impl and `build`) and exposes `ENTRY`; beside it,
//!   one file per responsibility that vendor actually has: `config` (settings, endpoints),
//!   `wire` (the vendor's answers and their mapping to runbridge states), `body` (the
//!   create/start body), `reconcile` (finding a submit whose answer was lost), AMC's `error`
//!   (its error bodies) and `sql` (its single-line SQL rule), and `doc_examples` (tests that run
//!   the vendor's documented examples through the client).
//! - [`vendor`](Vendor) — the trait, its types, and [`registry::VendorEntry`]; vendor modules
//!   depend on it, never on the registry.
//! - [`registry`] — the list of vendors, as data: it imports the vendor folders.
//! - Shared machinery: [`http`] (retries with jittered exponential backoff honouring
//!   `Retry-After`, and the rule that a request which may have reached the vendor is not blindly
//!   repeated), [`auth`] (cached OAuth tokens, and `send_authorized`, which refreshes once on
//!   401/403; auth builds on http, not the other way round), [`download`] (streaming result
//!   downloads with an SSRF guard), [`result_stream`] (what `open_result` hands over: the bytes,
//!   their announced length and the digest the source promises, e.g. an S3 ETag's MD5),
//!   [`resolve`] (the guard's address check, in the resolver that
//!   connects), [`rate`] (the rate budget port every rate-limited request takes its turn from, and its in-process adapter) and [`settings`] (configuration and secrets, redacted in logs);
//!   crate-private: `spec` (narrowing a request to one vendor's part, the one `match` on
//!   `VendorSpec`), `error_body` (reading vendors' JSON error bodies) and `endpoints` (https
//!   for credential endpoints, and the sandbox switch for loopback simulators, which downloads
//!   obey too).
//!
//! Dependencies run one way: vendor folders → shared machinery → `vendor`/`error`; the registry
//! sits on top.
#![deny(missing_docs)]

pub mod adobe;
pub mod amc;
pub mod amperity;
pub mod auth;
pub mod carto;
pub mod download;
mod endpoints;
mod error;
mod error_body;
pub mod http;
pub mod rate;
pub mod registry;
pub mod resolve;
mod result_file;
pub mod result_stream;
pub mod settings;
mod spec;
mod vendor;

pub use error::VendorError;
pub use registry::Vendors;
pub use result_file::ResultFile;
pub use result_stream::{ExpectedDigest, ResultStream};
pub use settings::{Profile, Settings};
pub use vendor::{
    CancelOutcome, ReconcileWindow, ResultsAvailability, RunRef, SubmittedRun, Vendor,
    RECONCILE_CLOCK_SKEW,
};
