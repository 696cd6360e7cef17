//! System tests that cross crates live in `tests/tests/`; this library holds what they share:
//! [`harness`], a local deployment on the vendor simulators, and [`doubles`], ports that fail on
//! purpose.

pub mod doubles;
pub mod harness;
