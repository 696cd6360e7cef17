//! What one vendor simulator gives the server ([`SimVendor`]): each vendor's module exports one
//! as `SIM`, and the registry lists them. It names no vendor, so a vendor's module can build its
//! entry without importing the list it is on.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use runbridge_core::VendorKind;

use crate::Sim;

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
