//! What Flow Service answers, as runbridge reads it: runs (`items[…]` with
//! `metrics.statusSummary` and per-activity windows), the create answer, Adobe's two error shapes
//! (the gateway's `{"error_code", "message"}` and Flow Service's `{"type": ".../FLOW-1430-400",
//! "title", "report": {"detailed-message"}}`), and the mapping of a run's status and `errors` to
//! [`RunStatus`].

use runbridge_core::{Attribution, RunState, RunStatus};
use serde::Deserialize;

use super::VENDOR;
use crate::error_body::{field_named_in, ErrorBody};
use crate::http::{status_error, ApiResponse};
use crate::VendorError;

/// Maps a `statusSummary.status` (any casing, `inProgress` or `IN_PROGRESS`) to the common state;
/// `None` for a state this client does not know.
pub fn map_state(vendor_state: &str) -> Option<RunState> {
    let normalized: String = vendor_state
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    Some(match normalized.as_str() {
        "scheduled" | "queued" | "pending" | "created" | "notstarted" => RunState::Pending,
        "inprogress" | "running" | "started" | "processing" => RunState::Running,
        // Partial success: ingested within the flow's error threshold.
        "success" | "succeeded" | "completed" | "partialsuccess" => RunState::Succeeded,
        "failed" | "failure" | "partialfailure" | "error" => RunState::Failed,
        "cancelled" | "canceled" | "stopped" | "aborted" => RunState::Cancelled,
        _ => return None,
    })
}

/// Whose fault a failed run is: the customer's only when every error code carries Adobe's 4xx
/// class suffix (`FLOW-1100-400`).
pub fn attribution(errors: &[RunError]) -> Attribution {
    let class = |code: &str| {
        code.rsplit('-')
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..600).contains(c))
    };
    let all_customer = !errors.is_empty()
        && errors.iter().all(|e| {
            e.code
                .as_deref()
                .and_then(class)
                .is_some_and(|c| (400..500).contains(&c))
        });
    if all_customer {
        Attribution::Customer
    } else {
        Attribution::Platform
    }
}

/// One entry of a run's `errors`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunError {
    /// Adobe's code, e.g. `CONNECTOR-1001-500`.
    #[serde(default)]
    pub code: Option<String>,
    /// Adobe's message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A page of runs; `GET /runs/{id}` answers one too, with that run as its only item.
#[derive(Debug, Deserialize)]
pub(super) struct RunsPage {
    #[serde(default)]
    pub(super) items: Vec<RunItem>,
    #[serde(default, rename = "_links")]
    pub(super) links: Option<Links>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Links {
    #[serde(default)]
    pub(super) next: Option<Link>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Link {
    pub(super) href: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunItem {
    pub(super) id: String,
    #[serde(default)]
    pub(super) created_at: Option<i64>,
    #[serde(default)]
    pub(super) created_client: Option<String>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(default)]
    activities: Vec<Activity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    #[serde(default)]
    status_summary: Option<StatusSummary>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StatusSummary {
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    errors: Vec<RunError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(default)]
    duration_summary: Option<ActivityDuration>,
}

#[derive(Debug, Deserialize)]
struct ActivityDuration {
    #[serde(default)]
    extensions: Option<WindowExtensions>,
}

/// The window a run ingests, in epoch milliseconds.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WindowExtensions {
    window_start: Option<i64>,
    window_end: Option<i64>,
}

impl RunItem {
    pub(super) fn status_summary(&self) -> Option<&StatusSummary> {
        self.metrics
            .as_ref()
            .and_then(|m| m.status_summary.as_ref())
    }

    /// The window in seconds, from the first activity that reports one.
    pub(super) fn window(&self) -> Option<(i64, i64)> {
        self.activities.iter().find_map(|a| {
            let ext = a.duration_summary.as_ref()?.extensions.as_ref()?;
            Some((ext.window_start? / 1000, ext.window_end? / 1000))
        })
    }

    pub(super) fn to_status(&self) -> RunStatus {
        let summary = self.status_summary();
        // Adobe omits the status summary until the run has been picked up.
        let Some(vendor_state) = summary.and_then(|s| s.status.clone()) else {
            return RunStatus::new(RunState::Pending, "pending");
        };
        let state = map_state(&vendor_state).unwrap_or_else(|| {
            tracing::warn!(vendor = %VENDOR, run_id = %self.id, vendor_state = %vendor_state, "unknown Adobe run state; treating it as running");
            RunState::Running
        });
        let mut status = RunStatus::new(state, vendor_state);
        if matches!(state, RunState::Failed | RunState::Cancelled) {
            let errors = summary.map(|s| s.errors.as_slice()).unwrap_or_default();
            let reason: Vec<String> = errors
                .iter()
                .map(|e| match (&e.code, &e.message) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => "error without details".into(),
                })
                .collect();
            status.reason = Some(if reason.is_empty() {
                format!("run ended {} without an error summary", status.vendor_state)
            } else {
                reason.join("; ")
            });
            status.attribution = Some(attribution(errors));
        }
        status
    }
}

/// The create answer. The tutorial shows `{"items": [{"id", "etag"}]}`; the OpenAPI schema a
/// bare `{"id", "etag"}`. Both are read.
#[derive(Deserialize)]
pub(super) struct Created {
    #[serde(default)]
    items: Vec<CreatedItem>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct CreatedItem {
    id: String,
}

impl Created {
    /// The new run's id, from either shape.
    pub(super) fn run_id(self) -> Option<String> {
        self.items.into_iter().next().map(|i| i.id).or(self.id)
    }
}

/// Maps Adobe's error bodies: the gateway's `{"error_code", "message"}` and Flow Service's
/// `{"type": ".../FLOW-<n>-<status>", "title", "report": {"detailed-message"}, "errorMessage"}`.
pub(super) fn api_error(response: &ApiResponse) -> VendorError {
    let body = ErrorBody::parse(&response.body);
    let code = body.text(&["/error_code"]).or_else(|| {
        body.text(&["/type"])
            .and_then(|t| t.rsplit('/').next().map(str::to_owned))
    });
    let message = body
        .text(&[
            "/report/detailed-message",
            "/errorMessage",
            "/detail",
            "/message",
            "/title",
        ])
        .unwrap_or_else(|| response.text_snippet());
    let message = match code {
        Some(code) => format!("{code}: {message}"),
        None => message,
    };
    // Adobe names no field; its messages do, for the parameters of a run.
    let field = field_named_in(
        &message,
        &[
            "deltaColumn",
            "windowEndTime",
            "windowStartTime",
            "startTime",
            "flowId",
        ],
    )
    .map(|f| {
        if f == "flowId" {
            f.to_owned()
        } else {
            format!("params.{f}")
        }
    });
    status_error(VENDOR, response, message, field)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_map_case_insensitively() {
        for (raw, want) in [
            ("success", RunState::Succeeded),
            ("SUCCESS", RunState::Succeeded),
            ("partialSuccess", RunState::Succeeded),
            ("PARTIAL_SUCCESS", RunState::Succeeded),
            ("failed", RunState::Failed),
            ("FAILED", RunState::Failed),
            ("inProgress", RunState::Running),
            ("IN_PROGRESS", RunState::Running),
            ("in-progress", RunState::Running),
            ("queued", RunState::Pending),
            ("SCHEDULED", RunState::Pending),
            ("pending", RunState::Pending),
            ("cancelled", RunState::Cancelled),
            ("Canceled", RunState::Cancelled),
        ] {
            assert_eq!(map_state(raw), Some(want), "{raw}");
        }
        assert_eq!(map_state("hibernating"), None);
    }

    #[test]
    fn unknown_state_is_running() {
        let item: RunItem = serde_json::from_value(
            json!({"id": "r", "metrics": {"statusSummary": {"status": "warming"}}}),
        )
        .unwrap();
        let status = item.to_status();
        assert_eq!(
            (status.state, status.vendor_state.as_str()),
            (RunState::Running, "warming")
        );
    }

    #[test]
    fn attribution_follows_the_code_class() {
        let e = |code: &str| RunError {
            code: Some(code.into()),
            message: None,
        };
        assert_eq!(attribution(&[e("FLOW-1100-400")]), Attribution::Customer);
        assert_eq!(
            attribution(&[e("CONNECTOR-1001-500")]),
            Attribution::Platform
        );
        assert_eq!(
            attribution(&[e("FLOW-1100-400"), e("CONNECTOR-2001-500")]),
            Attribution::Platform
        );
        assert_eq!(attribution(&[e("2200")]), Attribution::Platform);
        assert_eq!(attribution(&[]), Attribution::Platform);
    }
}
