//! The list of vendors, as data: which vendors exist and how each is built.
//!
//! **Adding a vendor = one folder + one registry line**: write `src/<vendor>/` (its `mod.rs`
//! exposes `ENTRY`, a [`VendorEntry`]) and add `crate::<vendor>::ENTRY` to [`VENDORS`]. Vendor
//! modules never import this module; it imports them.

use std::collections::BTreeMap;
use std::sync::Arc;

use runbridge_core::VendorKind;

use crate::http::RetryConfig;
use crate::{Settings, Vendor, VendorError};

// Kept at their old path for callers that named them here.
pub use crate::vendor::{BuildVendor, VendorEntry};

/// Every vendor runbridge knows.
pub const VENDORS: [VendorEntry; 4] = [
    crate::amc::ENTRY,
    crate::amperity::ENTRY,
    crate::adobe::ENTRY,
    crate::carto::ENTRY,
];

/// The vendor clients of one deployment. A vendor whose settings are missing is kept as its
/// configuration error, reported when a request for it arrives, so one unconfigured vendor does
/// not stop the others.
#[derive(Clone)]
pub struct Vendors {
    clients: BTreeMap<VendorKind, Result<Arc<dyn Vendor>, VendorError>>,
}

impl Vendors {
    /// Builds every registered vendor from `settings`.
    pub fn from_settings(settings: &Settings, retry: &RetryConfig) -> Self {
        let clients = VENDORS
            .iter()
            .map(|e| (e.kind, (e.build)(settings, retry)))
            .collect();
        Self { clients }
    }

    /// Only the given clients (tests, custom embeddings).
    pub fn from_clients(clients: impl IntoIterator<Item = Arc<dyn Vendor>>) -> Self {
        Self {
            clients: clients.into_iter().map(|c| (c.kind(), Ok(c))).collect(),
        }
    }

    /// The client for `kind`.
    pub fn get(&self, kind: VendorKind) -> Result<Arc<dyn Vendor>, VendorError> {
        match self.clients.get(&kind) {
            Some(Ok(c)) => Ok(c.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(VendorError::Config {
                vendor: kind,
                setting: kind.to_string(),
                message: "is not enabled".into(),
            }),
        }
    }
}
