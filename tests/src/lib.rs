//! System tests that cross crates live in `tests/tests/`; this library holds what they share:
//! [`harness`], a local deployment on the vendor simulators. Ports that fail on purpose are in
//! `runbridge_test_support::doubles`, shared with the other crates' tests.

pub mod harness;
