//! An Amperity workflow run: its tenant and configuration, its state at a given moment
//! (`scheduled`, `started`, `in progress` or `running with failures`, then `succeeded`, `failed`
//! or, after a stop, `stopping` and `canceled`), and the workflow document the API shows in its
//! three views.

use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::{WorkflowConfig, VENDOR};
use crate::{auth, ForeignStarter, Outcome, RunPhase, ScriptedRun};

/// Simulated seconds a run shows `started` before `in progress`.
const STARTED_SECONDS: f64 = 5.0;
/// Simulated seconds a stopped run spends `stopping` (mirrors the shared script model).
const STOPPING_SECONDS: i64 = 5;

pub(super) struct Run {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) config: WorkflowConfig,
    pub(super) scripted: ScriptedRun,
    /// Who started it; `None` is the simulator's API client (the caller).
    pub(super) starter: Option<ForeignStarter>,
}

/// The `principal_id` and `principal_name` of a run's starter.
pub(super) fn principal(starter: Option<ForeignStarter>) -> (String, &'static str) {
    match starter {
        None | Some(ForeignStarter::SameApiKey) => (
            format!("api-key|{}", auth::client_id(VENDOR)),
            "runbridge API key",
        ),
        Some(ForeignStarter::Scheduler) => ("amperity|scheduler".into(), "Automated workflow"),
        Some(ForeignStarter::User) => ("google-apps|ops@example.com".into(), "Ops Person"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    Overview,
    Verbose,
    /// List items: everything but task instances.
    ListItem,
}

/// The vendor state, end time and error of a run at `now`.
pub(super) fn run_state(
    run: &Run,
    now: OffsetDateTime,
) -> (&'static str, Option<OffsetDateTime>, Option<Value>) {
    let script = &run.scripted.script;
    match run.scripted.phase(now) {
        RunPhase::Queued => ("scheduled", None, None),
        RunPhase::Running => {
            let running_for =
                (now - run.scripted.created_at).as_seconds_f64() - script.queue_seconds;
            let failing = matches!(
                script.outcome,
                Outcome::Fail { .. } | Outcome::Reject { .. }
            );
            if failing && running_for >= script.run_seconds / 2.0 {
                ("running with failures", None, None)
            } else if running_for < STARTED_SECONDS {
                ("started", None, None)
            } else {
                ("in progress", None, None)
            }
        }
        RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed) => {
            ("succeeded", run.scripted.ends_at(), None)
        }
        RunPhase::Ended(Outcome::Fail { message, customer }) => {
            let attribution = if customer { "customer" } else { "platform" };
            let error = json!({"type": "amperity.workflow.task/failed", "message": message, "attribution": attribution});
            ("failed", run.scripted.ends_at(), Some(error))
        }
        RunPhase::Ended(Outcome::Reject { message }) => {
            let error = json!({"type": "amperity.workflow/invalid", "message": message, "attribution": "customer"});
            ("failed", run.scripted.ends_at(), Some(error))
        }
        RunPhase::Ended(Outcome::NeverFinish) => ("in progress", None, None),
        RunPhase::Cancelled { stopping: true } => ("stopping", None, None),
        RunPhase::Cancelled { stopping: false } => {
            let ended = run
                .scripted
                .cancelled_at
                .map(|at| at + Duration::seconds(STOPPING_SECONDS));
            let error = json!({
                "type": "amperity.workflow.workflow.repository.core/cancel",
                "message": "Workflow manually stopped",
                "attribution": "customer",
            });
            ("canceled", ended, Some(error))
        }
    }
}

pub(super) fn is_final_state(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "canceled" | "stopped")
}

/// Timestamps as the API writes them: UTC with milliseconds.
pub(super) fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .expect("timestamp formats")
}

pub(super) fn workflow_json(run: &Run, now: OffsetDateTime, view: View) -> Value {
    let (state, ended_at, error) = run_state(run, now);
    let mut out = Map::new();
    out.insert("id".into(), json!(run.id));
    out.insert("name".into(), json!(run.config.name));
    out.insert("type".into(), json!(run.config.kind));
    out.insert("state".into(), json!(state));
    out.insert("tenant".into(), json!(run.tenant));
    out.insert(
        "created_at".into(),
        json!(timestamp(run.scripted.created_at)),
    );
    if let Some(ended) = ended_at {
        out.insert("ended_at".into(), json!(timestamp(ended)));
    }
    if view == View::Overview {
        return Value::Object(out);
    }
    let version = format!("etv-{}", &run.id[3..]);
    let (principal_id, principal_name) = principal(run.starter);
    out.insert("principal_id".into(), json!(principal_id));
    out.insert("principal_name".into(), json!(principal_name));
    out.insert("launched_version".into(), json!(version));
    out.insert("current_version".into(), json!(version));
    if let Some(error) = error {
        out.insert("error".into(), error);
    }
    if view == View::Verbose {
        out.insert("task_instances".into(), json!([]));
    }
    Value::Object(out)
}

pub(super) fn valid_run_id(id: &str) -> bool {
    id.strip_prefix("wf-").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}
