//! The vendor simulators not yet moved to a folder of their own (in progress), and the former
//! paths of those that were.

pub use crate::amc;
pub use crate::auth as common;
pub use crate::registry::{SimVendor, ALL};

pub mod adobe;
pub mod amperity;
pub mod carto;
