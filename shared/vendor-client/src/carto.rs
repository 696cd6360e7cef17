//! Carto client — being written; registered so the workspace builds meanwhile.

use std::sync::Arc;

use runbridge_core::VendorKind;

use crate::http::RetryConfig;
use crate::registry::VendorEntry;
use crate::{Settings, Vendor, VendorError};

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Carto,
    build,
};

fn build(_settings: &Settings, _retry: &RetryConfig) -> Result<Arc<dyn Vendor>, VendorError> {
    Err(VendorError::Config {
        vendor: VendorKind::Carto,
        setting: "carto".into(),
        message: "client not written yet".into(),
    })
}
