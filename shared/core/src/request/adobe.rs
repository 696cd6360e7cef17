//! The Adobe Experience Platform part of a request: [`AdobeRun`] (an on-demand flow run over a
//! data window) and its rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::checks::{check_id, check_window};
use crate::window::RelativeWindow;
use crate::ValidationError;

/// An Adobe Experience Platform on-demand flow run (batch sources only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdobeRun {
    /// The dataflow to run.
    pub flow_id: String,
    /// `x-sandbox-name`; the configured default sandbox when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_name: Option<String>,
    /// When the run should begin (UTC); submission time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Earliest data to ingest (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<String>,
    /// Latest data to ingest (UTC), after `window_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<String>,
    /// Window relative to the schedule time, resolved by the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_window: Option<RelativeWindow>,
    /// Delta column of a table-based source; allowed only with `first_run: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_column: Option<String>,
    /// True for the first run of a table-based flow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_run: bool,
}

impl AdobeRun {
    /// What makes two runs the same workflow: the flow in its sandbox.
    pub fn workflow(&self) -> String {
        format!(
            "flow={};sandbox={}",
            self.flow_id,
            self.sandbox_name.as_deref().unwrap_or("")
        )
    }

    pub(super) fn validate(&self) -> Result<(), ValidationError> {
        check_uuid("flow_id", &self.flow_id)?;
        if let Some(s) = &self.sandbox_name {
            check_id("sandbox_name", s, 64, "-")?;
            // Experience Platform sandbox names are lower case (`prod`, `dev-2`); `Prod` names
            // no sandbox and would fail at Adobe after the request was accepted.
            if s.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(ValidationError::new(
                    "sandbox_name",
                    "must be lower case (Experience Platform sandbox names are)",
                ));
            }
        }
        // Flow Service takes unix seconds: a fraction would be cut off on the wire (and could
        // make a window empty), so every bound is whole seconds.
        for (field, value) in [
            ("start_time", &self.start_time),
            ("window_start", &self.window_start),
            ("window_end", &self.window_end),
        ] {
            if let Some(v) = value {
                let t = super::amc::check_whole_seconds(field, v)?;
                // Unix seconds before 1970 are negative: Flow Service refuses `"-86400"`.
                if t.unix_timestamp() < 0 {
                    return Err(ValidationError::new(
                        field,
                        "must be 1970-01-01T00:00:00Z or later (Flow Service takes unix seconds, which start there)",
                    ));
                }
            }
        }
        let window = check_window(
            "window_start",
            &self.window_start,
            "window_end",
            &self.window_end,
        )?;
        match (window.is_some(), self.relative_window.is_some()) {
            (false, false) => {
                return Err(ValidationError::new(
                    "window_start",
                    "a window is required: `window_start` and `window_end`, or `relative_window`",
                ))
            }
            (true, true) => {
                return Err(ValidationError::new(
                    "relative_window",
                    "give explicit times or `relative_window`, not both",
                ))
            }
            _ => {}
        }
        if let Some(col) = &self.delta_column {
            if !self.first_run {
                return Err(ValidationError::new(
                    "delta_column",
                    "is only accepted on a table-based flow's first run (set `first_run: true`); later runs use the flow's own",
                ));
            }
            check_id("delta_column", col, 128, "_.")?;
        }
        Ok(())
    }

    /// Replaces `relative_window` by the explicit window it means at `anchor`.
    pub(super) fn resolve(&mut self, anchor: OffsetDateTime) {
        if let Some(w) = self.relative_window.take() {
            let range = w.resolve(anchor);
            self.window_start = Some(range.start_string());
            self.window_end = Some(range.end_string());
        }
    }
}

/// Flow Service ids are UUIDs (`8-4-4-4-12` hex digits); anything else is "Flow not found" at
/// best, so it is refused before anything is sent.
fn check_uuid(field: &str, value: &str) -> Result<(), ValidationError> {
    let groups: Vec<&str> = value.split('-').collect();
    let shaped = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !shaped {
        return Err(ValidationError::new(
            field,
            "must be a UUID such as 3abea21c-7e36-4be1-bec1-d3bad0e3e0de",
        ));
    }
    Ok(())
}
