//! Concurrency slots: a vendor account's limit on runs at once, as a set of numbered slots per
//! scope, and the scope's queue of runs waiting for one ([`ScopeQueue`]).
//!
//! A profile with a limit (AMC: 10 PENDING + RUNNING executions per instance) gets `limit`
//! slots per scope; a run is submitted only once it holds one, and gives it back when its run
//! ends (or its lease runs out, so a crashed holder cannot keep it). Runs that find every slot
//! held wait in arrival order; whoever gives a slot back hands it to the oldest waiter.

use serde::{Deserialize, Serialize};

/// Runs at once one vendor account allows, and the scope the count is kept in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    /// What the limit counts: `<vendor>.<profile>` and, where the vendor's limit is finer than
    /// the account, the vendor's own scope (`amc.default.amc1a2b3c4d` for one AMC instance).
    /// Letters, digits, `.`, `-` and `_` only: it names stored objects.
    pub scope: String,
    /// Runs at once.
    pub limit: u32,
}

/// A slot a run holds: which scope, which number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHold {
    /// The scope ([`ConcurrencyLimit::scope`]).
    pub scope: String,
    /// The slot's number, `0..limit`.
    pub slot: u32,
}

/// `text` as a scope segment: anything but letters, digits, `-` and `_` becomes `_`.
pub fn scope_segment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
