//! Clients for the vendor APIs runbridge drives, behind one [`Vendor`] trait.
//!
//! Each vendor is one module (`amc`, `amperity`, `adobe`, `carto`) that implements [`Vendor`] and
//! registers itself in [`registry`]. Shared machinery lives beside them: [`http`] (retries with
//! jittered exponential backoff honouring `Retry-After`, and the rule that a request which may
//! have reached the vendor is not blindly repeated), [`auth`] (cached OAuth tokens refreshed once
//! on 401/403), [`download`] (streaming result downloads with an SSRF guard) and [`settings`]
//! (configuration and secrets, redacted in logs).
#![deny(missing_docs)]

pub mod adobe;
pub mod amc;
pub mod amperity;
pub mod auth;
pub mod carto;
pub mod download;
mod error;
mod error_body;
pub mod http;
pub mod registry;
pub mod settings;
mod spec;
mod vendor;

pub use error::VendorError;
pub use registry::Vendors;
pub use settings::Settings;
pub use vendor::{CancelOutcome, ResultFile, ResultsAvailability, RunRef, SubmittedRun, Vendor};
