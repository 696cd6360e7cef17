//! The vendor simulators not yet moved to a folder of their own (in progress), and the former
//! paths of those that were.

pub use crate::auth as common;
pub use crate::registry::{SimVendor, ALL};
pub use crate::{adobe, amc, amperity};

pub mod carto;
