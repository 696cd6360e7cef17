//! The run metrics, as CloudWatch Embedded Metric Format documents (see
//! [`runbridge_core::emf`]), dimensioned by `Vendor`, in namespace `runbridge`. Every metric is
//! also split by `Vendor, Profile` (the credential profile, `default` unless the request names
//! one), so one account's runs can be told from another's; the dimension sets stay small:
//! `[Vendor]`, `[Vendor, Profile]`, and for `RunsFailed` `[Vendor, Attribution]`.
//! `SubmitRetries` and `VendorThrottles` are counted by the HTTP layer per (vendor, profile) within
//! one invocation's work (`runbridge_vendors::http::counted`): each profile's client knows its
//! profile's name (never its credentials).
//!
//! | metric | unit | when |
//! | --- | --- | --- |
//! | `RunsSubmitted` | Count | the trigger submitted a run (not on redelivery) |
//! | `RunsSucceeded` | Count | collect wrote a succeeded manifest |
//! | `RunsFailed` | Count | collect wrote a failed manifest; also split by `Attribution` |
//! | `RunsCancelled` | Count | collect wrote a cancelled manifest |
//! | `PollsPerRun` | Count | with each of the three above |
//! | `DetectionLagSeconds` | Seconds | upper bound of vendor end → runbridge noticing |
//! | `CollectBytes`, `CollectSeconds`, `CollectMBps` | Bytes, Seconds, Megabytes/Second | a succeeded collect |
//! | `SubmitRetries`, `VendorThrottles` | Count | after any invocation that saw some |
//! | `RunsPastDeadline` | Count | a poll starts more than [`PAST_DEADLINE_GRACE`] after the run's deadline; also without dimensions, for the alarm |
//!
//! Each document is emitted once, at the moment it describes (a collect retried after its
//! manifest was written emits nothing again). Where they go: [`set_sink`]; by default standard
//! output inside Lambda (CloudWatch Logs extracts them there) and nowhere elsewhere, so the CLI's
//! output stays clean unless asked (`runbridge run --metrics FILE`).

use std::io::Write;
use std::sync::{Arc, RwLock};

use runbridge_core::emf::{MetricDoc, Unit};
use runbridge_core::{OffsetDateTime, RunHandle, RunOutcome, RunState, VendorKind};
use runbridge_vendors::http::CallCounts;

/// Receives each EMF document as one line (without the newline).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends every following document to `sink` (`None`: back to the default).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// A sink appending lines to a file.
pub fn file_sink(path: &std::path::Path) -> std::io::Result<Sink> {
    let file = std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    );
    Ok(Arc::new(move |line: &str| {
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{line}");
    }))
}

fn emit(doc: MetricDoc) {
    if doc.is_empty() {
        return;
    }
    let line = doc.to_line();
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    match sink {
        Some(sink) => sink(&line),
        None if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => {
            // One write per line, so concurrent documents never interleave.
            let _ = std::io::stdout()
                .lock()
                .write_all(format!("{line}\n").as_bytes());
        }
        None => {}
    }
}

fn base(vendor: VendorKind, at: OffsetDateTime) -> MetricDoc {
    MetricDoc::new(at).dimension("Vendor", vendor.as_str())
}

/// The base set plus `[Vendor, Profile]` for a metric about one run.
fn run_base(handle: &RunHandle, at: OffsetDateTime) -> MetricDoc {
    base(handle.vendor(), at).split_by("Profile", handle.request.profile())
}

/// The trigger submitted `handle`'s run.
pub fn run_submitted(handle: &RunHandle, at: OffsetDateTime) {
    emit(
        run_base(handle, at)
            .metric("RunsSubmitted", Unit::Count, 1.0)
            .property("key", handle.key.as_str())
            .property("vendor_run_id", handle.vendor_run_id_or_empty()),
    );
}

/// Collect wrote the manifest of `outcome`, taking `collect_seconds`.
pub fn run_finished(
    handle: &RunHandle,
    outcome: &RunOutcome,
    collect_seconds: f64,
    at: OffsetDateTime,
) {
    let mut doc = run_base(handle, at)
        .property("key", outcome.key.as_str())
        .property("vendor_run_id", outcome.vendor_run_id.as_str())
        .metric("PollsPerRun", Unit::Count, f64::from(outcome.polls));
    doc = match outcome.state {
        RunState::Succeeded => doc
            .metric("RunsSucceeded", Unit::Count, 1.0)
            .metric("CollectBytes", Unit::Bytes, outcome.bytes as f64)
            .metric("CollectSeconds", Unit::Seconds, collect_seconds)
            .metric(
                "CollectMBps",
                Unit::MegabytesPerSecond,
                if collect_seconds > 0.0 {
                    outcome.bytes as f64 / 1e6 / collect_seconds
                } else {
                    f64::NAN
                },
            ),
        RunState::Cancelled => doc.metric("RunsCancelled", Unit::Count, 1.0),
        _ => {
            let attribution = outcome.attribution.map_or("unknown", |a| match a {
                runbridge_core::Attribution::Customer => "customer",
                runbridge_core::Attribution::Platform => "platform",
            });
            doc.split_by("Attribution", attribution)
                .metric("RunsFailed", Unit::Count, 1.0)
        }
    };
    if let Some(lag) = handle.detection_lag_seconds() {
        doc = doc.metric("DetectionLagSeconds", Unit::Seconds, lag);
    }
    emit(doc);
}

/// How late after its deadline a poll may still come: the loop waits exactly until the deadline
/// and cancels there, so a later poll means retries or a stuck loop.
pub const PAST_DEADLINE_GRACE: time::Duration = time::Duration::minutes(10);

/// A poll of `handle` starts at `now`.
pub fn poll_started(handle: &RunHandle, now: OffsetDateTime) {
    if now > handle.deadline_at + PAST_DEADLINE_GRACE {
        emit(
            run_base(handle, now)
                .also_undimensioned()
                .metric("RunsPastDeadline", Unit::Count, 1.0)
                .property("key", handle.key.as_str())
                .property("vendor_run_id", handle.vendor_run_id_or_empty()),
        );
    }
}

/// Emits the vendor throttles and submit retries one invocation's work counted
/// ([`runbridge_vendors::http::counted`]), one document per (vendor, profile) that saw some,
/// split by `Profile` like the per-run metrics.
pub fn vendor_call_counts(counts: &[CallCounts], at: OffsetDateTime) {
    for c in counts {
        emit(
            base(c.vendor, at)
                .split_by("Profile", &c.profile)
                .metric("VendorThrottles", Unit::Count, c.throttles as f64)
                .metric("SubmitRetries", Unit::Count, c.submit_retries as f64),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use runbridge_core::{IdempotencyKey, RunRequest};

    use super::*;

    #[test]
    fn a_poll_long_after_the_deadline_counts_a_run_past_its_deadline() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        set_sink(Some(Arc::new(move |l: &str| {
            sink.lock().unwrap().push(l.to_owned())
        })));
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"late-1","connection":"c","query":"SELECT 1","deadline_seconds":600}"#,
        )
        .unwrap()
        .resolve(OffsetDateTime::now_utc());
        let submitted = OffsetDateTime::now_utc();
        let handle = RunHandle::new(
            IdempotencyKey::for_request(&request, None),
            request,
            "job-1".into(),
            submitted,
        );
        poll_started(&handle, handle.deadline_at);
        poll_started(&handle, handle.deadline_at + PAST_DEADLINE_GRACE);
        poll_started(
            &handle,
            handle.deadline_at + PAST_DEADLINE_GRACE + time::Duration::SECOND,
        );
        set_sink(None);
        let ours: Vec<serde_json::Value> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|d: &serde_json::Value| d["key"] == "carto-late-1")
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ours[0]["RunsPastDeadline"], 1.0);
        assert_eq!(
            ours[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Vendor"], ["Vendor", "Profile"], []])
        );
        assert_eq!(ours[0]["Profile"], "default");
    }
}
