//! Concurrency slots: a vendor account's limit on runs at once, as a set of numbered slots.
//!
//! A profile with a limit (AMC: 10 PENDING + RUNNING executions per instance) gets `limit`
//! slots per scope; a run is submitted only once it holds one, and gives it back when the vendor
//! says it ended (or its lease runs out, so a crashed holder cannot keep it).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::IdempotencyKey;

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

/// What a stored slot holds (`{scope}/{n}.json`): the run holding it and until when. One shape
/// for the deployed and the local slots, so both read and write the same documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The holding run.
    pub holder: IdempotencyKey,
    /// When the lease runs out unless renewed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// A scope's wanted mark (`{scope}/wanted.json`): when a run last found every slot held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedMark {
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
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
