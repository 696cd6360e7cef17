//! An AMC workflow execution: what it was asked to do, its state at a given moment (PENDING,
//! RUNNING, PUBLISHING, then SUCCEEDED, FAILED or REJECTED; CANCELLED once a cancel is accepted),
//! the flat object AMC shows for it, AMC's time format, and the predefined time windows.

use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::api::{bad_request, ApiError};
use crate::{Outcome, RunPhase, ScriptedRun};

const AMC_TIME: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// One simulated execution.
#[derive(Debug, Clone)]
pub(super) struct Execution {
    pub(super) id: String,
    pub(super) instance_id: String,
    pub(super) run: ScriptedRun,
    /// The saved workflow's id, or a `transient_…` id for an ad-hoc query.
    pub(super) workflow_id: String,
    pub(super) params: ExecutionParams,
}

/// What a valid create request asks of an execution, besides which workflow to run.
#[derive(Debug, Clone)]
pub(super) struct ExecutionParams {
    pub(super) sql_query: Option<String>,
    /// UTC window AMC resolved (None for `ALL`).
    pub(super) window: Option<(OffsetDateTime, OffsetDateTime)>,
    pub(super) time_zone: String,
    pub(super) parameter_values: Map<String, Value>,
    pub(super) ignore_data_gaps: bool,
    pub(super) disable_aggregation_controls: bool,
    pub(super) timeout_seconds: i64,
}

impl Execution {
    pub(super) fn status(&self, now: OffsetDateTime) -> (&'static str, Option<String>) {
        match self.run.phase(now) {
            RunPhase::Queued => ("PENDING", None),
            RunPhase::Running => ("RUNNING", None),
            RunPhase::Publishing => ("PUBLISHING", None),
            RunPhase::Ended(Outcome::Succeed) => ("SUCCEEDED", None),
            RunPhase::Ended(Outcome::Fail { message, .. }) => ("FAILED", Some(message)),
            RunPhase::Ended(Outcome::Reject { message }) => ("REJECTED", Some(message)),
            // A script that never finishes stays RUNNING (phase() never reports it ended).
            RunPhase::Ended(Outcome::NeverFinish) => ("RUNNING", None),
            // AMC shows CANCELLED as soon as the update is accepted.
            RunPhase::Cancelled { .. } => ("CANCELLED", None),
        }
    }

    pub(super) fn is_active(&self, now: OffsetDateTime) -> bool {
        matches!(self.run.phase(now), RunPhase::Queued | RunPhase::Running)
    }

    /// When the current status began.
    fn last_updated(&self, now: OffsetDateTime) -> OffsetDateTime {
        let s = &self.run.script;
        let at = |secs: f64| self.run.created_at + Duration::seconds_f64(secs);
        match self.run.phase(now) {
            RunPhase::Queued => self.run.created_at,
            RunPhase::Running => at(s.queue_seconds),
            RunPhase::Publishing => at(s.queue_seconds + s.run_seconds),
            RunPhase::Ended(_) => at(s.queue_seconds + s.run_seconds + s.publish_seconds),
            RunPhase::Cancelled { .. } => self.run.cancelled_at.unwrap_or(now),
        }
    }

    /// The execution as AMC shows it.
    pub(super) fn view(&self, now: OffsetDateTime, include_workflow: bool) -> Value {
        let (status, reason) = self.status(now);
        let mut v = json!({
            "workflowExecutionId": self.id,
            "workflowId": self.workflow_id,
            "status": status,
            "createTime": utc_z(self.run.created_at),
            "lastUpdatedTime": utc_z(self.last_updated(now)),
            "expireTime": utc_z(self.run.created_at + Duration::days(1)),
            "executionCategory": "AD_HOC",
            "dataGaps": [],
            "ignoreDataGaps": self.params.ignore_data_gaps,
            "disableAggregationControls": self.params.disable_aggregation_controls,
            "parameterValues": self.params.parameter_values,
            "timeWindowTimeZoneOriginal": self.params.time_zone,
            "workflowExecutionTimeoutSeconds": self.params.timeout_seconds,
            "outputS3URI": format!("s3://amc-{}/workflow={}/schedule=adhoc/", self.instance_id, self.workflow_id),
        });
        let obj = v.as_object_mut().expect("a json! object");
        if let Some((start, end)) = self.params.window {
            obj.insert("timeWindowStart".into(), utc_z(start).into());
            obj.insert("timeWindowEnd".into(), utc_z(end).into());
            obj.insert("timeWindowStartOriginal".into(), amc_time(start).into());
            obj.insert("timeWindowEndOriginal".into(), amc_time(end).into());
        }
        if let Some(reason) = reason {
            obj.insert("statusReason".into(), reason.into());
        }
        if include_workflow {
            if let Some(sql) = &self.params.sql_query {
                obj.insert("sqlQuery".into(), sql.clone().into());
            }
        }
        v
    }
}

fn amc_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(AMC_TIME)
        .expect("fixed format")
}

fn utc_z(t: OffsetDateTime) -> String {
    format!("{}Z", amc_time(t))
}

pub(super) fn parse_amc_time(field: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    PrimitiveDateTime::parse(value, AMC_TIME).map(PrimitiveDateTime::assume_utc).map_err(|_| {
        bad_request(format!("Invalid value for field \"{field}\": required format is yyyy-MM-dd'T'HH:mm:ss (e.g. 2019-08-14T16:12:34)"))
    })
}

/// The UTC window a predefined window type means at `now`.
pub(super) fn resolve_window(
    window_type: &str,
    now: OffsetDateTime,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let today = now.to_offset(UtcOffset::UTC).date().midnight().assume_utc();
    let first_of_month = today.replace_day(1).expect("day 1 exists");
    match window_type {
        "MOST_RECENT_DAY" => Some((today - Duration::days(1), today)),
        "MOST_RECENT_WEEK" => Some((today - Duration::days(7), today)),
        "CURRENT_MONTH" => Some((first_of_month, today)),
        "PREVIOUS_MONTH" => {
            let prev = (first_of_month - Duration::days(1))
                .replace_day(1)
                .expect("day 1 exists");
            Some((prev, first_of_month))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_windows_resolve_in_utc() {
        let now = time::macros::datetime!(2026-01-15 10:00 UTC);
        let (s, e) = resolve_window("PREVIOUS_MONTH", now).unwrap();
        assert_eq!(
            (amc_time(s).as_str(), amc_time(e).as_str()),
            ("2025-12-01T00:00:00", "2026-01-01T00:00:00")
        );
        let (s, e) = resolve_window("MOST_RECENT_DAY", now).unwrap();
        assert_eq!(
            (amc_time(s).as_str(), amc_time(e).as_str()),
            ("2026-01-14T00:00:00", "2026-01-15T00:00:00")
        );
        assert_eq!(resolve_window("ALL", now), None);
    }
}
