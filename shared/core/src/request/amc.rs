//! The AMC part of a request: [`AmcRun`] (an ad-hoc query or a saved workflow over a time
//! window), [`AmcTimeWindowType`], and their rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::checks::{check_id, check_sql, check_window};
use super::sql::normalize_sql;
use crate::window::{parse_utc, RelativeWindow};
use crate::ValidationError;

/// AMC time window types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum AmcTimeWindowType {
    MostRecentDay,
    MostRecentWeek,
    CurrentMonth,
    PreviousMonth,
    Explicit,
}

impl AmcTimeWindowType {
    /// The value the AMC API expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MostRecentDay => "MOST_RECENT_DAY",
            Self::MostRecentWeek => "MOST_RECENT_WEEK",
            Self::CurrentMonth => "CURRENT_MONTH",
            Self::PreviousMonth => "PREVIOUS_MONTH",
            Self::Explicit => "EXPLICIT",
        }
    }
}

/// An AMC workflow execution: an ad-hoc `sql_query` or a saved `workflow_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmcRun {
    /// AMC instance id (path parameter).
    pub instance_id: String,
    /// AMC entity id, sent as `Amazon-Advertising-API-AdvertiserId`.
    pub advertiser_id: String,
    /// Marketplace id, sent as `Amazon-Advertising-API-MarketplaceId`.
    pub marketplace_id: String,
    /// Ad-hoc SQL; may span lines (it is normalised to one line before sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_query: Option<String>,
    /// A saved workflow to execute instead of ad-hoc SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Which input data the query covers.
    pub time_window_type: AmcTimeWindowType,
    /// EXPLICIT window start (UTC, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window_start: Option<String>,
    /// EXPLICIT window end (UTC, exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window_end: Option<String>,
    /// EXPLICIT window relative to the schedule time, resolved by the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_window: Option<RelativeWindow>,
    /// Values for the workflow's declared parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameter_values: BTreeMap<String, serde_json::Value>,
    /// Run even when AMC reports data gaps in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_data_gaps: Option<bool>,
}

impl AmcRun {
    /// What makes two runs the same workflow, for the durations they are predicted from: the
    /// instance and the saved workflow, or the instance and the normalised query (whitespace and
    /// comments do not make another workflow).
    pub fn workflow(&self) -> String {
        match (&self.workflow_id, &self.sql_query) {
            (Some(id), _) => format!("instance={};workflow={id}", self.instance_id),
            (None, Some(sql)) => format!(
                "instance={};sql={}",
                self.instance_id,
                super::sql::normalize_sql(sql).unwrap_or_else(|_| sql.clone())
            ),
            (None, None) => format!("instance={}", self.instance_id),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ValidationError> {
        check_id("instance_id", &self.instance_id, 64, "_-")?;
        check_id("advertiser_id", &self.advertiser_id, 64, "_-")?;
        check_id("marketplace_id", &self.marketplace_id, 32, "_-")?;
        match (&self.sql_query, &self.workflow_id) {
            (Some(sql), None) => {
                check_sql("sql_query", sql)?;
                // The exact single line the client sends: comment-only SQL, an unterminated
                // quote and a line break or tab inside a literal are refused here, not at submit.
                normalize_sql(sql)?;
            }
            (None, Some(id)) => check_id("workflow_id", id, 128, "_.-")?,
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "workflow_id",
                    "give either `sql_query` or `workflow_id`, not both",
                ))
            }
            (None, None) => {
                return Err(ValidationError::new(
                    "sql_query",
                    "either `sql_query` or `workflow_id` is required",
                ))
            }
        }
        let explicit = check_window(
            "time_window_start",
            &self.time_window_start,
            "time_window_end",
            &self.time_window_end,
        )?;
        if self.time_window_type == AmcTimeWindowType::Explicit {
            match (explicit.is_some(), self.relative_window.is_some()) {
                (false, false) => {
                    return Err(ValidationError::new(
                        "time_window_start",
                        "EXPLICIT windows need `time_window_start` and `time_window_end`, or `relative_window`",
                    ))
                }
                (true, true) => {
                    return Err(ValidationError::new("relative_window", "give explicit times or `relative_window`, not both"))
                }
                _ => {}
            }
        } else if explicit.is_some() || self.relative_window.is_some() {
            let field = if explicit.is_some() {
                "time_window_start"
            } else {
                "relative_window"
            };
            return Err(ValidationError::new(
                field,
                "is only allowed with time_window_type EXPLICIT",
            ));
        }
        for field in ["time_window_start", "time_window_end"] {
            let value = if field == "time_window_start" {
                &self.time_window_start
            } else {
                &self.time_window_end
            };
            if let Some(v) = value {
                check_whole_seconds(field, v)?;
            }
        }
        for (name, value) in &self.parameter_values {
            // SQL identifiers: a letter or `_` first, then letters, digits or `_`.
            let mut chars = name.chars();
            let named = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !named || name.len() > 128 {
                return Err(ValidationError::new(
                    "parameter_values",
                    "names must start with a letter or `_` and contain only letters, digits and `_` (at most 128)",
                ));
            }
            check_parameter_value(&format!("parameter_values.{name}"), value)?;
        }
        Ok(())
    }

    /// Replaces `relative_window` by the explicit window it means at `anchor`.
    pub(super) fn resolve(&mut self, anchor: OffsetDateTime) {
        if let Some(w) = self.relative_window.take() {
            let range = w.resolve(anchor);
            self.time_window_start = Some(range.start_string());
            self.time_window_end = Some(range.end_string());
        }
    }
}

/// AMC takes EXPLICIT bounds to the second (and Adobe's window params are unix seconds): a
/// fraction would be cut off or refused by the vendor.
pub fn check_whole_seconds(field: &str, value: &str) -> Result<OffsetDateTime, ValidationError> {
    let t = parse_utc(field, value)?;
    if t.nanosecond() != 0 {
        return Err(ValidationError::new(
            field,
            "takes whole seconds (the vendor has no fraction); drop the fraction",
        ));
    }
    Ok(t)
}

/// AMC parameter values are strings on the wire: a string, a number or a boolean has a string
/// form; null, a list or an object has none AMC would understand.
pub fn check_parameter_value(
    field: &str,
    value: &serde_json::Value,
) -> Result<(), ValidationError> {
    match value {
        serde_json::Value::String(_)
        | serde_json::Value::Number(_)
        | serde_json::Value::Bool(_) => Ok(()),
        _ => Err(ValidationError::new(
            field,
            "must be a string, number or boolean (AMC parameter values are strings)",
        )),
    }
}
