//! The run request: one JSON document, tagged by `vendor`, plus its validation.
//!
//! Parsing never panics and every rejection is a [`ValidationError`] naming the field (as a JSON
//! path) and the rule it broke. Shape errors come from serde (with `serde_path_to_error` for the
//! path); semantic rules (id prefixes, UTC timestamps, window order, SQL size, safe prefixes) are
//! checked in [`RunRequest::validate`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::window::{parse_utc, RelativeWindow, UtcRange};
use crate::ValidationError;

/// Largest accepted request document. SQS caps messages at 256 KiB; a request is far smaller.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Largest accepted SQL text (AMC and CARTO queries, CARTO export queries).
pub const MAX_SQL_CHARS: usize = 100_000;

/// The vendors runbridge speaks to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VendorKind {
    /// Amazon Marketing Cloud workflow executions.
    Amc,
    /// Amperity workflow runs.
    Amperity,
    /// Adobe Experience Platform Flow Service runs.
    Adobe,
    /// CARTO SQL job API.
    Carto,
}

impl VendorKind {
    /// Every vendor, in a stable order.
    pub const ALL: [VendorKind; 4] = [Self::Amc, Self::Amperity, Self::Adobe, Self::Carto];

    /// The tag used in requests, result keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amc => "amc",
            Self::Amperity => "amperity",
            Self::Adobe => "adobe",
            Self::Carto => "carto",
        }
    }

    /// How long a run may take before runbridge cancels it, when the request does not say.
    /// AMC's own execution timeout is 21,600 s; the others get a working day.
    pub fn default_deadline_seconds(self) -> u64 {
        match self {
            Self::Amc => 21_600 + 1_800,
            Self::Amperity | Self::Adobe => 12 * 3_600,
            Self::Carto => 6 * 3_600,
        }
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VendorKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("vendor", "must be one of amc, amperity, adobe, carto")
            })
    }
}

/// A request to start one workflow run at one vendor and land its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRequest {
    /// Caller-chosen id that makes redelivery safe: the same id never starts a second run.
    /// Letters, digits, `_`, `.`, `-`; at most 64 characters. Without it, the idempotency key is a
    /// hash of the request and the schedule time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds after submission when an unfinished run is cancelled and reported failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
    /// Extra key prefix under the configured results prefix, e.g. `marketing/daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<String>,
    /// What to run, tagged by `vendor`.
    #[serde(flatten)]
    pub spec: VendorSpec,
}

/// The vendor-specific part of a request; the `vendor` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "vendor", rename_all = "lowercase")]
pub enum VendorSpec {
    /// Amazon Marketing Cloud workflow execution.
    Amc(AmcRun),
    /// Amperity workflow run.
    Amperity(AmperityRun),
    /// Adobe Experience Platform flow run.
    Adobe(AdobeRun),
    /// CARTO SQL job.
    Carto(CartoRun),
}

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

/// A CARTO SQL job, typically ``CALL `project.dataset.procedure`(@a, @b)`` of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CartoRun {
    /// Connection name (path parameter).
    pub connection: String,
    /// The SQL to run as a job.
    pub query: String,
    /// Named parameters referenced as `@name` in `query`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_parameters: BTreeMap<String, serde_json::Value>,
    /// Optional query whose rows are collected as CSV after the job is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_query: Option<String>,
}

impl RunRequest {
    /// Parses and validates a request document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(ValidationError::new(
                "$",
                format!(
                    "request is {} bytes; the limit is {MAX_REQUEST_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ValidationError::new("$", format!("body is not valid UTF-8 ({e})")))?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ValidationError::new("$", format!("body is not valid JSON ({e})")))?;
        Self::from_value(value)
    }

    /// Validates an already-parsed JSON value (an EventBridge `detail`, a Scheduler input).
    pub fn from_value(value: serde_json::Value) -> Result<Self, ValidationError> {
        let serde_json::Value::Object(mut rest) = value else {
            return Err(ValidationError::new("$", "must be a JSON object"));
        };
        let vendor = match rest.remove("vendor") {
            None => {
                return Err(ValidationError::new(
                    "vendor",
                    "is required (amc, amperity, adobe or carto)",
                ))
            }
            Some(serde_json::Value::String(s)) => s.parse::<VendorKind>()?,
            Some(_) => {
                return Err(ValidationError::new(
                    "vendor",
                    "must be a string: amc, amperity, adobe or carto",
                ))
            }
        };
        // Common fields first, then the vendor part on its own, so that serde reports the path of
        // a bad vendor field (a flattened enum would lose it).
        let mut common = serde_json::Map::new();
        for name in ["request_id", "deadline_seconds", "output_prefix"] {
            if let Some(v) = rest.remove(name) {
                common.insert(name.to_owned(), v);
            }
        }
        let common: CommonFields = typed(serde_json::Value::Object(common))?;
        let rest = serde_json::Value::Object(rest);
        let spec = match vendor {
            VendorKind::Amc => VendorSpec::Amc(typed(rest)?),
            VendorKind::Amperity => VendorSpec::Amperity(typed(rest)?),
            VendorKind::Adobe => VendorSpec::Adobe(typed(rest)?),
            VendorKind::Carto => VendorSpec::Carto(typed(rest)?),
        };
        let request = RunRequest {
            request_id: common.request_id,
            deadline_seconds: common.deadline_seconds,
            output_prefix: common.output_prefix,
            spec,
        };
        request.validate()?;
        Ok(request)
    }

    /// Which vendor this request is for.
    pub fn vendor(&self) -> VendorKind {
        match self.spec {
            VendorSpec::Amc(_) => VendorKind::Amc,
            VendorSpec::Amperity(_) => VendorKind::Amperity,
            VendorSpec::Adobe(_) => VendorKind::Adobe,
            VendorSpec::Carto(_) => VendorKind::Carto,
        }
    }

    /// The deadline in seconds after submission.
    pub fn deadline_seconds(&self) -> u64 {
        self.deadline_seconds
            .unwrap_or_else(|| self.vendor().default_deadline_seconds())
    }

    /// Checks every semantic rule; shape rules were checked by parsing.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(id) = &self.request_id {
            check_id("request_id", id, 64, "._-")?;
        }
        if let Some(d) = self.deadline_seconds {
            if !(60..=604_800).contains(&d) {
                return Err(ValidationError::new(
                    "deadline_seconds",
                    "must be between 60 and 604800 (7 days)",
                ));
            }
        }
        if let Some(prefix) = &self.output_prefix {
            check_prefix("output_prefix", prefix)?;
        }
        match &self.spec {
            VendorSpec::Amc(r) => r.validate(),
            VendorSpec::Amperity(r) => r.validate(),
            VendorSpec::Adobe(r) => r.validate(),
            VendorSpec::Carto(r) => r.validate(),
        }
    }

    /// Replaces any `relative_window` by the explicit window it means at `anchor` (the schedule
    /// time, or now), so a run handle always carries absolute times.
    pub fn resolve(&self, anchor: OffsetDateTime) -> RunRequest {
        let mut out = self.clone();
        match &mut out.spec {
            VendorSpec::Amc(r) => {
                if let Some(w) = r.relative_window.take() {
                    let range = w.resolve(anchor);
                    r.time_window_start = Some(range.start_string());
                    r.time_window_end = Some(range.end_string());
                }
            }
            VendorSpec::Amperity(r) => {
                if let Some(w) = r.relative_window.take() {
                    let range = w.resolve(anchor);
                    r.range_from = Some(range.start_string());
                    r.range_to = Some(range.end_string());
                }
            }
            VendorSpec::Adobe(r) => {
                if let Some(w) = r.relative_window.take() {
                    let range = w.resolve(anchor);
                    r.window_start = Some(range.start_string());
                    r.window_end = Some(range.end_string());
                }
            }
            VendorSpec::Carto(_) => {}
        }
        out
    }
}

#[derive(Deserialize)]
struct CommonFields {
    request_id: Option<String>,
    deadline_seconds: Option<u64>,
    output_prefix: Option<String>,
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| shape_error(e.path().to_string(), e.inner()))
}

/// Turns a serde shape error into a field-naming validation error.
fn shape_error(path: String, err: &serde_json::Error) -> ValidationError {
    let msg = err.to_string();
    // serde reports a missing or unknown field at its parent's path; name the field itself.
    let quoted = msg.split('`').nth(1).map(str::to_owned);
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let rule = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if msg.starts_with("missing field") {
        if let Some(name) = quoted {
            return ValidationError::new(join(&name), "is required");
        }
    }
    if msg.starts_with("unknown field") {
        if let Some(name) = quoted {
            // serde_path_to_error already ends the path with the unknown field's name.
            let field = if path.ends_with(name.as_str()) {
                path
            } else {
                join(&name)
            };
            return ValidationError::new(field, "is not a known field for this vendor");
        }
    }
    let field = if path == "." || path.is_empty() {
        "$".to_owned()
    } else {
        path
    };
    ValidationError::new(field, rule)
}

fn check_nonempty(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Ids go into URL paths, headers and S3 keys: keep them to a safe alphabet.
fn check_id(field: &str, value: &str, max: usize, extra: &str) -> Result<(), ValidationError> {
    check_nonempty(field, value, max)?;
    let ok_first = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if !ok_first || !ok_rest {
        return Err(ValidationError::new(
            field,
            format!(
                "must start with a letter or digit and contain only letters, digits and `{extra}`"
            ),
        ));
    }
    Ok(())
}

fn check_sql(field: &str, sql: &str) -> Result<(), ValidationError> {
    check_nonempty(field, sql, MAX_SQL_CHARS)?;
    if sql.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// A key prefix made of safe segments: nothing can climb out of the configured results prefix.
pub fn check_prefix(field: &str, prefix: &str) -> Result<(), ValidationError> {
    check_nonempty(field, prefix, 200)?;
    for segment in prefix.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(ValidationError::new(
                field,
                "must be relative segments separated by single `/`, without `.` or `..`",
            ));
        }
        check_id(field, segment, 200, "._=-")?;
    }
    Ok(())
}

fn check_window(
    start_field: &str,
    start: &Option<String>,
    end_field: &str,
    end: &Option<String>,
) -> Result<Option<UtcRange>, ValidationError> {
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ValidationError::new(
            end_field,
            format!("is required with `{start_field}`"),
        )),
        (None, Some(_)) => Err(ValidationError::new(
            start_field,
            format!("is required with `{end_field}`"),
        )),
        (Some(s), Some(e)) => {
            let start = parse_utc(start_field, s)?;
            let end = parse_utc(end_field, e)?;
            if end <= start {
                return Err(ValidationError::new(
                    end_field,
                    format!("must be after `{start_field}`"),
                ));
            }
            Ok(Some(UtcRange { start, end }))
        }
    }
}

impl AmcRun {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("instance_id", &self.instance_id, 64, "_-")?;
        check_id("advertiser_id", &self.advertiser_id, 64, "_-")?;
        check_id("marketplace_id", &self.marketplace_id, 32, "_-")?;
        match (&self.sql_query, &self.workflow_id) {
            (Some(sql), None) => check_sql("sql_query", sql)?,
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
        for name in self.parameter_values.keys() {
            check_id("parameter_values", name, 128, "_")?;
        }
        Ok(())
    }
}

impl AmperityRun {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("tenant", &self.tenant, 63, "-")?;
        if !self.tenant.chars().all(|c| !c.is_ascii_uppercase()) {
            return Err(ValidationError::new(
                "tenant",
                "must be lower case (it is a host name label)",
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
}

impl AdobeRun {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("flow_id", &self.flow_id, 64, "-")?;
        if let Some(s) = &self.sandbox_name {
            check_id("sandbox_name", s, 64, "-")?;
        }
        if let Some(t) = &self.start_time {
            parse_utc("start_time", t)?;
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
}

impl CartoRun {
    fn validate(&self) -> Result<(), ValidationError> {
        check_id("connection", &self.connection, 128, "_-")?;
        check_sql("query", &self.query)?;
        if let Some(q) = &self.export_query {
            check_sql("export_query", q)?;
        }
        for name in self.query_parameters.keys() {
            check_id("query_parameters", name, 128, "_")?;
        }
        Ok(())
    }
}
