//! Format versions of what runbridge persists or hands from one invocation to the next: ledger
//! entries, execution payloads (the [`crate::HandleRef`] every state's input carries), a scope's
//! slot record ([`crate::ScopeQueue`]) and a workflow's [`crate::DurationHistory`]. The manifest
//! has its own `schema_version`, part of its published schema.
//!
//! Versions change the way runs in flight survive an upgrade or a rollback
//! (`tests/tests/upgrade.rs`, golden files in `tests/golden/`):
//! - an **additive** change (a new optional field; a reader of an older version ignores fields it
//!   does not know: none of these shapes denies unknown fields) keeps the version;
//! - a change that an older reader would misread (a field renamed, reshaped or given a new
//!   meaning) raises it, with a migration that reads the older versions. A reader refuses a
//!   version above its own with [`NewerFormat`]'s message, so a rollback across such a change
//!   fails loudly instead of misreading.
//!
//! A document without the field was written before versions existed: version 1, which every
//! shape still is.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Format of a ledger entry (`_ledger/<key>.json`).
pub const LEDGER_FORMAT: u32 = 1;
/// Format of an execution payload: the handle reference in every state's input and output.
pub const PAYLOAD_FORMAT: u32 = 1;
/// Format of a scope's slot record (`_ledger/slots/<scope>.json`).
pub const SCOPE_FORMAT: u32 = 1;
/// Format of a workflow's duration history.
pub const HISTORY_FORMAT: u32 = 1;

/// A document's `format_version` field: written as `CURRENT`, read from any version up to it
/// (absent: 1, with `#[serde(default)]`). Carries no data: what was read is converted to the
/// current shape on reading, so it is always written back in this version's format.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatVersion<const CURRENT: u32>;

impl<const CURRENT: u32> FormatVersion<CURRENT> {
    /// The version this code writes.
    pub const fn current(self) -> u32 {
        CURRENT
    }
}

impl<const CURRENT: u32> fmt::Debug for FormatVersion<CURRENT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FormatVersion({CURRENT})")
    }
}

impl<const CURRENT: u32> Serialize for FormatVersion<CURRENT> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(CURRENT)
    }
}

impl<'de, const CURRENT: u32> Deserialize<'de> for FormatVersion<CURRENT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let version = u32::deserialize(d)?;
        if version > CURRENT {
            return Err(serde::de::Error::custom(NewerFormat {
                version,
                known: CURRENT,
            }));
        }
        Ok(Self)
    }
}

/// A document written by a later runbridge in a format this one cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("format_version {version} was written by a later runbridge; this one reads up to {known} (upgrade again, or migrate the document back)")]
pub struct NewerFormat {
    /// The document's version.
    pub version: u32,
    /// The newest version this code reads.
    pub known: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        #[serde(default)]
        format_version: FormatVersion<2>,
        x: u32,
    }

    #[test]
    fn absent_and_older_versions_read_and_write_back_as_the_current_one() {
        for text in [
            r#"{"x":1}"#,
            r#"{"format_version":1,"x":1}"#,
            r#"{"format_version":2,"x":1}"#,
        ] {
            let doc: Doc = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::to_string(&doc).unwrap(),
                r#"{"format_version":2,"x":1}"#
            );
        }
    }

    #[test]
    fn a_later_version_is_refused_with_both_versions_named() {
        let err = serde_json::from_str::<Doc>(r#"{"format_version":3,"x":1}"#).unwrap_err();
        assert!(err.to_string().contains("format_version 3"), "{err}");
        assert!(err.to_string().contains("reads up to 2"), "{err}");
    }
}
