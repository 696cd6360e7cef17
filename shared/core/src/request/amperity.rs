//! The Amperity part of a request: [`AmperityRun`] (a courier group, orchestration group or
//! campaign run, with an optional file window), [`AmperityRunMode`], and their rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::checks::check_id;
use crate::window::{parse_utc, RelativeWindow};
use crate::ValidationError;

/// Amperity courier-group run modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum AmperityRunMode {
    Full,
    Refresh,
    Source,
}

/// An Amperity workflow run of a courier group (`cg-`), orchestration group (`og-`) or campaign
/// (`cc-`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmperityRun {
    /// Tenant id: the `{tenant}` of `https://{tenant}.amperity.com` and the `amperity-tenant` header.
    pub tenant: String,
    /// Workflow configuration id, `cg-…`, `og-…` or `cc-…`.
    pub config_id: String,
    /// Start of the file window (UTC, inclusive). Courier groups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_from: Option<String>,
    /// End of the file window (UTC, exclusive, after `range_from`). Courier groups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_to: Option<String>,
    /// Window relative to the schedule time, resolved by the trigger into `range_from`/`range_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_window: Option<RelativeWindow>,
    /// Courier-group run mode override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_mode: Option<AmperityRunMode>,
}

impl AmperityRun {
    /// What makes two runs the same workflow: the tenant, the group or campaign, the run mode.
    pub fn workflow(&self) -> String {
        format!(
            "tenant={};config={};mode={:?}",
            self.tenant, self.config_id, self.run_mode
        )
    }

    pub(super) fn validate(&self) -> Result<(), ValidationError> {
        check_id("tenant", &self.tenant, 63, "-")?;
        if !self.tenant.chars().all(|c| !c.is_ascii_uppercase()) {
            return Err(ValidationError::new(
                "tenant",
                "must be lower case (it is a host name label)",
            ));
        }
        // `https://{tenant}.amperity.com`: a DNS label ends with a letter or digit (RFC 1123), so
        // `acme-` names no host and every call would fail after the claim.
        if self.tenant.ends_with('-') {
            return Err(ValidationError::new(
                "tenant",
                "must end with a letter or digit (it is a host name label)",
            ));
        }
        let prefix = self.config_id.get(..3).unwrap_or("");
        if !matches!(prefix, "cg-" | "og-" | "cc-") || self.config_id.len() < 4 {
            return Err(ValidationError::new(
                "config_id",
                "must be a courier group (`cg-`), orchestration group (`og-`) or campaign (`cc-`) id",
            ));
        }
        check_id("config_id", &self.config_id, 64, "-")?;
        let courier_group = prefix == "cg-";
        let has_range =
            self.range_from.is_some() || self.range_to.is_some() || self.relative_window.is_some();
        if has_range && !courier_group {
            let field = if self.range_from.is_some() {
                "range_from"
            } else if self.range_to.is_some() {
                "range_to"
            } else {
                "relative_window"
            };
            return Err(ValidationError::new(
                field,
                "is only allowed for courier groups (`cg-` ids)",
            ));
        }
        if self.run_mode.is_some() && !courier_group {
            return Err(ValidationError::new(
                "run_mode",
                "is only allowed for courier groups (`cg-` ids)",
            ));
        }
        if self.range_to.is_some() && self.range_from.is_none() {
            return Err(ValidationError::new(
                "range_from",
                "is required when `range_to` is given",
            ));
        }
        if let Some(from) = &self.range_from {
            if self.relative_window.is_some() {
                return Err(ValidationError::new(
                    "relative_window",
                    "give `range_from` or `relative_window`, not both",
                ));
            }
            let from = parse_utc("range_from", from)?;
            if let Some(to) = &self.range_to {
                let to = parse_utc("range_to", to)?;
                if to <= from {
                    return Err(ValidationError::new(
                        "range_to",
                        "must be after `range_from` (the window is [from, to))",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replaces `relative_window` by the explicit window it means at `anchor`.
    pub(super) fn resolve(&mut self, anchor: OffsetDateTime) {
        if let Some(w) = self.relative_window.take() {
            let range = w.resolve(anchor);
            self.range_from = Some(range.start_string());
            self.range_to = Some(range.end_string());
        }
    }
}
