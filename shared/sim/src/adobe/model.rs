//! An on-demand flow run: what it was created with, its state at a given moment (`scheduled`
//! before its start time, `queued`, `inProgress`, then `success` or `failed` with an error code
//! whose HTTP class says who is at fault), and the run document Flow Service shows.

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

use super::ORG_ID;
use crate::{Outcome, RunPhase, ScriptedRun};

/// One simulated flow run.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub(super) id: String,
    pub(super) etag: String,
    pub(super) flow_id: String,
    pub(super) sandbox: String,
    pub(super) created_client: String,
    pub(super) created_at: OffsetDateTime,
    pub(super) start_time: i64,
    pub(super) window_start: i64,
    pub(super) window_end: i64,
    pub(super) script: ScriptedRun,
}

pub(super) fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The run as Flow Service shows it at `now`.
pub(super) fn run_json(run: &Run, now: OffsetDateTime) -> Value {
    let script = &run.script;
    let started_at = script.created_at + Duration::seconds_f64(script.script.queue_seconds);
    let phase = script.phase(now);
    let (status, errors) = match &phase {
        RunPhase::Queued if now.unix_timestamp() < run.start_time => ("scheduled", vec![]),
        RunPhase::Queued => ("queued", vec![]),
        RunPhase::Running | RunPhase::Publishing => ("inProgress", vec![]),
        RunPhase::Ended(Outcome::Succeed) => ("success", vec![]),
        RunPhase::Ended(Outcome::Fail { message, customer }) => {
            let code = if *customer {
                "CONNECTOR-1001-400"
            } else {
                "CONNECTOR-1001-500"
            };
            ("failed", vec![json!({"code": code, "message": message})])
        }
        RunPhase::Ended(Outcome::Reject { message }) => (
            "failed",
            vec![json!({"code": "FLOW-1100-400", "message": message})],
        ),
        RunPhase::Ended(Outcome::NeverFinish) => ("inProgress", vec![]),
        // Unreachable without a cancel route; kept so every phase has a name.
        RunPhase::Cancelled { .. } => ("cancelled", vec![]),
    };
    let mut duration = Map::new();
    if !matches!(phase, RunPhase::Queued) {
        duration.insert("startedAtUTC".into(), json!(millis(started_at)));
    }
    if let (RunPhase::Ended(_), Some(end)) = (&phase, script.ends_at()) {
        duration.insert("completedAtUTC".into(), json!(millis(end)));
    }
    let mut status_summary = json!({"status": status});
    if !errors.is_empty() {
        status_summary["errors"] = Value::Array(errors);
    }
    let mut activity_duration = duration.clone();
    activity_duration.insert(
        "extensions".into(),
        json!({"windowStart": run.window_start * 1000, "windowEnd": run.window_end * 1000}),
    );
    let updated_at = millis(run_updated(run, now));
    json!({
        "id": run.id,
        "createdAt": millis(run.created_at),
        "updatedAt": updated_at,
        "createdBy": format!("{}@AdobeID", run.created_client),
        "updatedBy": format!("{}@AdobeID", run.created_client),
        "createdClient": run.created_client,
        "updatedClient": run.created_client,
        "sandboxId": sandbox_id(&run.sandbox),
        "sandboxName": run.sandbox,
        "imsOrgId": ORG_ID,
        "flowId": run.flow_id,
        "flowSpec": {"id": "6499120c-0b15-42dc-936e-847ea3c24d72", "version": "1.0"},
        "providerRefId": format!("M-{}-adhoc-0:{}", run.flow_id, run.id),
        "etag": run.etag,
        "metrics": {
            "durationSummary": Value::Object(duration),
            "statusSummary": status_summary,
        },
        "activities": [{
            "id": "copyActivity",
            "updatedAtUTC": updated_at,
            "durationSummary": Value::Object(activity_duration),
            "statusSummary": {"status": status},
        }],
    })
}

fn sandbox_id(name: &str) -> &'static str {
    match name {
        "prod" => "1bd86660-c5da-11e9-93d4-6d5fc3a66a8e",
        _ => "e49ebb00-d0fa-11e9-b164-ed6a398c8b35",
    }
}

/// When the run last changed: now, or when its script ended, and never before its creation.
pub(super) fn run_updated(run: &Run, now: OffsetDateTime) -> OffsetDateTime {
    now.min(run.script.ends_at().unwrap_or(now))
        .max(run.created_at)
}
