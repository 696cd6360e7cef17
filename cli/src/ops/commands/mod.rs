//! The operator commands, one module each: each composes [`Ops`](super::Ops) calls into an
//! [`Output`](crate::output::Output) (text for people, JSON for scripts) or a
//! [`CliError`](crate::exit::CliError) whose exit code says why it failed.

pub mod backfill;
pub mod cancel;
pub mod list;
pub mod rerun;
pub mod status;
pub mod submit;

pub use backfill::{backfill, Backfill};
pub use cancel::cancel;
pub use list::{list, parse_duration, StateFilter};
pub use rerun::rerun;
pub use status::status;
pub use submit::{predicted_key, read_requests, submit};
