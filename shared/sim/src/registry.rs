//! The list of vendor simulators the server mounts: one [`SimVendor`] entry per vendor, each
//! exported as `SIM` by the vendor's own module.

use crate::vendor::SimVendor;
use crate::{adobe, amc, amperity, carto};

/// Every simulated vendor. Adding a vendor: write its folder under `src/`, add one line here.
pub const ALL: [SimVendor; 4] = [amc::SIM, amperity::SIM, adobe::SIM, carto::SIM];
