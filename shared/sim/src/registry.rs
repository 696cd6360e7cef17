//! The list of vendor simulators the server mounts: one [`SimVendor`] entry per vendor, each
//! exported as `SIM` by the vendor's own module.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use runbridge_core::VendorKind;

use crate::{adobe, amc, amperity, carto, Sim};

/// One vendor simulator.
#[derive(Clone, Copy)]
pub struct SimVendor {
    /// The vendor.
    pub kind: VendorKind,
    /// Its routes (the server adds the fault middleware and the file download route).
    pub router: fn(Arc<Sim>) -> Router,
    /// Its error response for a status and message (used for injected faults).
    pub error: fn(StatusCode, &str) -> Response,
    /// Client settings (`key`, `value`, without the vendor prefix) that point the runbridge
    /// client at a simulator served at the given base URL.
    pub settings: fn(&str) -> Vec<(String, String)>,
}

/// Every simulated vendor. Adding a vendor: write its folder under `src/`, add one line here.
pub const ALL: [SimVendor; 4] = [amc::SIM, amperity::SIM, adobe::SIM, carto::SIM];
