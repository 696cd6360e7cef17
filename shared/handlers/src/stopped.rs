//! The stopped-execution handler: when the execution watching a run is stopped (`StopExecution`,
//! `runbridge cancel`, the console) or times out, cancel the vendor run too, and end the run with
//! a CANCELLED manifest and its outcome event.
//!
//! Deployed, Step Functions emits an "Execution Status Change" event to EventBridge; a rule
//! (ABORTED, TIMED_OUT, FAILED; this stack's state machine only) sends it to the trigger function, whose
//! router hands it here. Locally, `LocalExecutions` delivers the same event to the same function
//! when an execution is stopped or times out.
//!
//! Everything is derived from the execution's *name* (the key; a recovery execution is
//! `<key>=<n>`) and the key's ledger entry (request and vendor run id), never from the
//! execution input, so the event's shape is all this handler depends on.
//!
//! Idempotent: a run whose manifest exists (a duplicate event, or a stop that came after the run
//! ended) changes nothing, except that an unannounced manifest is announced. A cancel the vendor
//! may accept later (a retryable error) fails the call, so EventBridge retries the event and,
//! after its retries, puts it in the dead-letter queue, where it names the execution (the key).

use std::sync::Arc;

use runbridge_core::{Attribution, IdempotencyKey, KeyState, LedgerEntry, RunHandle, RunState};
use runbridge_vendors::Vendors;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::cancel::cancel_vendor_run;
use crate::finish::{Ending, Finisher};
use crate::ports::Ledger;
use crate::submission::{adopt_submitted, unreconcilable};
use crate::HandlerError;

/// The stop handler's dependencies (hosted by the trigger function).
pub struct Stopper {
    /// Vendor clients, to cancel the run.
    pub vendors: Vendors,
    /// The idempotency ledger, where the run's request and vendor run id are kept.
    pub ledger: Arc<dyn Ledger>,
    /// Where the run's CANCELLED manifest is written and announced.
    pub finisher: Arc<Finisher>,
}

/// The `source` of Step Functions' events.
pub const STATES_SOURCE: &str = "aws.states";
/// The `detail-type` of Step Functions' execution status changes.
pub const STATUS_CHANGE_DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// How an execution ended without finishing, as the status-change event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopStatus {
    /// Stopped from outside: `StopExecution` (an operator, `runbridge cancel`, the console).
    Aborted,
    /// The state machine's `TimeoutSeconds` elapsed.
    TimedOut,
    /// The execution failed. Usually its `RecordFailure` wrote the FAILED manifest first (then
    /// nothing is left to do); an execution that failed without one — the failure record itself
    /// failed, the history quota ran out — still gets its vendor run cancelled and a manifest.
    Failed,
}

impl StopStatus {
    /// The status as Step Functions spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aborted => "ABORTED",
            Self::TimedOut => "TIMED_OUT",
            Self::Failed => "FAILED",
        }
    }
}

/// One execution that was stopped or timed out: the part of the status-change event this
/// handler reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionStopped {
    /// The execution's name: the key, or `<key>=<n>` for a recovery execution.
    pub name: String,
    /// Why it ended.
    pub status: StopStatus,
    /// The execution's ARN, for logs.
    pub execution_arn: Option<String>,
    /// The error the stopper gave (`StopExecution`'s `error`), if any.
    pub error: Option<String>,
    /// The cause the stopper gave, if any.
    pub cause: Option<String>,
}

/// Whether `event` is a Step Functions execution status change (source `aws.states`).
pub fn is_status_change(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some(STATES_SOURCE)
        && event.get("detail-type").and_then(Value::as_str) == Some(STATUS_CHANGE_DETAIL_TYPE)
}

impl ExecutionStopped {
    /// Reads a status-change event. `Ok(None)` for a status this handler does not act on
    /// (RUNNING, SUCCEEDED, FAILED: the rule does not send them, but a wider rule might).
    pub fn from_event(event: &Value) -> Result<Option<Self>, HandlerError> {
        let detail = event
            .get("detail")
            .filter(|d| d.is_object())
            .ok_or_else(|| HandlerError::BadInput("status change event without detail".into()))?;
        let text = |field: &str| detail.get(field).and_then(Value::as_str).map(str::to_owned);
        let status = match text("status").as_deref() {
            Some("ABORTED") => StopStatus::Aborted,
            Some("TIMED_OUT") => StopStatus::TimedOut,
            Some("FAILED") => StopStatus::Failed,
            Some(_) => return Ok(None),
            None => {
                return Err(HandlerError::BadInput(
                    "status change event without detail.status".into(),
                ))
            }
        };
        let name = text("name").ok_or_else(|| {
            HandlerError::BadInput("status change event without detail.name".into())
        })?;
        Ok(Some(Self {
            name,
            status,
            execution_arn: text("executionArn"),
            error: text("error"),
            cause: text("cause"),
        }))
    }

    /// The event Step Functions sends EventBridge for this stop (the fields this handler and an
    /// operator read), for the local runner to deliver exactly what the cloud delivers.
    pub fn to_event(&self, state_machine_arn: &str, at: OffsetDateTime) -> Value {
        let execution_arn = self.execution_arn.clone().unwrap_or_else(|| {
            format!(
                "{}:{}",
                state_machine_arn.replacen(":stateMachine:", ":execution:", 1),
                self.name
            )
        });
        let time = at
            .replace_nanosecond(0)
            .unwrap_or(at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        json!({
            "version": "0",
            "id": format!("local-{}-{}", self.name, self.status.as_str()),
            "detail-type": STATUS_CHANGE_DETAIL_TYPE,
            "source": STATES_SOURCE,
            "account": "000000000000",
            "time": time,
            "region": "local",
            "resources": [execution_arn],
            "detail": {
                "executionArn": execution_arn,
                "stateMachineArn": state_machine_arn,
                "name": self.name,
                "status": self.status.as_str(),
                "stopDate": millis,
                "error": self.error,
                "cause": self.cause,
            }
        })
    }

    /// The key of the run the execution watched: the name, less a recovery's `=<n>`. `None` when
    /// the name is no key (another state machine's execution: nothing of ours).
    pub fn key(&self) -> Option<IdempotencyKey> {
        IdempotencyKey::from_execution_name(&self.name).ok()
    }

    /// Who stopped the execution, in words, for the manifest's reason.
    fn who(&self) -> String {
        match self.status {
            StopStatus::Aborted => {
                let said: Vec<&str> = [self.error.as_deref(), self.cause.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect();
                if said.is_empty() {
                    format!("execution {} was stopped (ABORTED)", self.name)
                } else {
                    format!(
                        "execution {} was stopped (ABORTED: {})",
                        self.name,
                        said.join(": ")
                    )
                }
            }
            StopStatus::TimedOut => format!(
                "execution {} timed out (TIMED_OUT: the state machine's TimeoutSeconds elapsed)",
                self.name
            ),
            StopStatus::Failed => {
                let said: Vec<&str> = [self.error.as_deref(), self.cause.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect();
                format!(
                    "execution {} failed without recording its end (FAILED: {})",
                    self.name,
                    if said.is_empty() {
                        "no error given".to_owned()
                    } else {
                        said.join(": ")
                    }
                )
            }
        }
    }
}

/// What the handler did with one stopped execution (the function's answer, and a log line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StopHandled {
    /// The vendor was asked to cancel (or could not be) and the run now has a CANCELLED
    /// manifest (FAILED, for an execution that failed without recording its end), announced.
    Cancelled {
        /// The key.
        key: String,
        /// The vendor's run id.
        vendor_run_id: String,
        /// What the cancel did, as the manifest's reason says it.
        cancel: String,
        /// The manifest written.
        manifest_key: String,
    },
    /// The run already had a final manifest (a duplicate event, or the run ended first): nothing
    /// changed, except an announcement when none was recorded.
    AlreadyFinished {
        /// The key.
        key: String,
        /// The manifest found.
        manifest_key: String,
        /// Whether this call announced it (no announcement had been recorded).
        announced_now: bool,
    },
    /// No vendor run is recorded for the key: nothing to cancel.
    NoVendorRun {
        /// The key.
        key: String,
        /// What was found, and what a resend does.
        detail: String,
    },
    /// A status this handler does not act on, or an execution that is not a run of ours.
    Ignored {
        /// Why.
        detail: String,
    },
}

/// Handles a Step Functions status-change event (see the module documentation).
pub async fn handle_status_change(
    stopper: &Stopper,
    event: &Value,
) -> Result<StopHandled, HandlerError> {
    match ExecutionStopped::from_event(event)? {
        Some(stop) => {
            let (handled, counts) =
                runbridge_vendors::http::counted(execution_stopped(stopper, stop)).await;
            crate::metrics::vendor_call_counts(&counts, stopper.finisher.clock.now());
            handled
        }
        None => Ok(StopHandled::Ignored {
            detail: format!(
                "execution status {} is not a stop",
                event["detail"]["status"].as_str().unwrap_or("?")
            ),
        }),
    }
}

/// The handle of a stopped queued run whose admission recorded that a submit may be in flight:
/// the admit may have created the run and crashed or lost the answer, or may still be running (a
/// stopped execution does not stop the invocation). The vendor is asked, as the next admit would:
/// a run it finds is recorded, and then cancelled like any other. If it finds none while the
/// submit may still land, the stop fails retryably, so the event comes again (its retries, then
/// the DLQ naming the key); once that time has passed, nothing exists at the vendor and the run
/// ends CANCELLED without one. Without this a stop in that window left the run with no manifest
/// and, if the submit went through, a vendor run nobody watched.
async fn settle_admission(
    stopper: &Stopper,
    mut entry: LedgerEntry,
    until: OffsetDateTime,
) -> Result<RunHandle, HandlerError> {
    let key = entry.key.clone();
    let now = stopper.finisher.clock.now();
    let vendor = stopper.vendors.for_request(&entry.request)?;
    let reconcilable = vendor.can_reconcile(&entry.request);
    if reconcilable
        && adopt_submitted(stopper.ledger.as_ref(), vendor.as_ref(), &mut entry, now).await?
    {
        return Ok(entry.handle().expect("a recorded run has a handle"));
    }
    if now < until {
        return Err(HandlerError::Transient(format!(
            "{key} was stopped while its admission may be submitting (until {until}); the stop \
             is handled once that is settled"
        )));
    }
    if !reconcilable {
        return Err(unreconcilable(
            &entry,
            &format!("{key} was stopped after an admission that"),
            "cancel it there",
        ));
    }
    // Nothing was created; the slot, if any, is given back when the run ends below.
    entry.clear_submit()?;
    stopper.ledger.update(&entry).await?;
    Ok(entry.handle().expect("a waiting run has a handle"))
}

/// Cancels the vendor run of a stopped execution and ends the run with a CANCELLED manifest and
/// its event; see the module documentation.
pub async fn execution_stopped(
    stopper: &Stopper,
    stop: ExecutionStopped,
) -> Result<StopHandled, HandlerError> {
    let Some(key) = stop.key() else {
        tracing::info!(name = %stop.name, "stopped execution is not a runbridge run; ignoring");
        return Ok(StopHandled::Ignored {
            detail: format!("execution {} is not named by a run key", stop.name),
        });
    };
    let Some(entry) = stopper.ledger.get(&key).await? else {
        tracing::warn!(%key, "stopped execution has no ledger entry; nothing to cancel");
        return Ok(StopHandled::NoVendorRun {
            key: key.to_string(),
            detail: "no ledger entry: the key is free, a resend claims it afresh".into(),
        });
    };
    // The run's concurrency scope: it gives back its slot there, or leaves its line.
    let scope = entry.slot().map(|s| s.scope.clone()).or_else(|| {
        stopper
            .vendors
            .concurrency_limit(&entry.request)
            .map(|l| l.scope)
    });
    if stop.status == StopStatus::Failed && matches!(entry.state, KeyState::CollectFailed { .. }) {
        // A collect that failed on our side ends its execution FAILED on purpose, without a
        // manifest: the vendor run succeeded and the next delivery collects it again.
        return Ok(StopHandled::Ignored {
            detail: format!(
                "execution {} failed collecting a run that succeeded; recoverable: resend the \
                 request to collect it again",
                stop.name
            ),
        });
    }
    let handle = match entry.state {
        // Queued, and its admission may be submitting: settle that first.
        KeyState::Admitting {
            submitting_until, ..
        } => settle_admission(stopper, entry, submitting_until).await?,
        KeyState::Claimed { .. } => {
            // An execution only starts after its run id is recorded, so this is a claim some other
            // delivery is still submitting. Releasing it could let a resend double a run that
            // submitter is creating; its lease ends it instead, and the next delivery reconciles.
            tracing::warn!(%key, "stopped execution's key has no vendor run recorded; nothing to cancel");
            return Ok(StopHandled::NoVendorRun {
                key: key.to_string(),
                detail:
                    "claimed, but no vendor run recorded: nothing to cancel; after the claim's \
                         lease the next delivery reconciles with the vendor"
                        .into(),
            });
        }
        // Recorded: cancel it. Queued with no submit in flight: nothing exists at the vendor,
        // the run ends CANCELLED.
        _ => entry
            .handle()
            .expect("a recorded or waiting run has a handle"),
    };
    let span = crate::span::handle_span(&handle);
    async move {
        if let Some((outcome, announced_now)) = stopper.finisher.finish_existing(&handle).await? {
            return Ok(StopHandled::AlreadyFinished {
                key: key.to_string(),
                manifest_key: outcome.manifest_key,
                announced_now,
            });
        }
        let cancel = cancel_vendor_run(&stopper.vendors, &handle).await?;
        // An operator's stop is the customer's decision; a timeout is the platform's.
        let attribution = match stop.status {
            StopStatus::Aborted => Attribution::Customer,
            StopStatus::TimedOut | StopStatus::Failed => Attribution::Platform,
        };
        let ending = Ending {
            state: match stop.status {
                StopStatus::Failed => RunState::Failed,
                _ => RunState::Cancelled,
            },
            reason: Some(format!("{}; {cancel}", stop.who())),
            attribution: Some(attribution),
            files: Vec::new(),
        };
        let outcome = stopper
            .finisher
            .finish(&handle, ending, scope.as_deref(), 0.0)
            .await?;
        tracing::info!(%cancel, "stopped run ended CANCELLED");
        Ok(StopHandled::Cancelled {
            key: key.to_string(),
            vendor_run_id: handle.vendor_run_id_or_empty().to_owned(),
            cancel,
            manifest_key: outcome.manifest_key,
        })
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: &str, name: &str) -> Value {
        json!({
            "version": "0", "id": "e1", "detail-type": STATUS_CHANGE_DETAIL_TYPE,
            "source": "aws.states", "account": "123456789012", "time": "2026-11-30T05:00:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:states:us-east-1:123456789012:execution:m:{name}")],
            "detail": {
                "executionArn": format!("arn:aws:states:us-east-1:123456789012:execution:m:{name}"),
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                "name": name, "status": status, "startDate": 1, "stopDate": 2,
                "input": "{}", "output": null, "error": "runbridge.Cancelled",
                "cause": "cancelled by an operator"
            }
        })
    }

    #[test]
    fn reads_stops_and_ignores_other_statuses() {
        let e = event("ABORTED", "amc-r1");
        assert!(is_status_change(&e));
        let stop = ExecutionStopped::from_event(&e).unwrap().unwrap();
        assert_eq!(stop.status, StopStatus::Aborted);
        assert_eq!(stop.key().unwrap().as_str(), "amc-r1");
        assert!(stop.who().contains("cancelled by an operator"));
        let t = ExecutionStopped::from_event(&event("TIMED_OUT", "carto_2.ab12=3"))
            .unwrap()
            .unwrap();
        assert_eq!(
            t.key().unwrap().as_str(),
            "carto_2.ab12",
            "a recovery's key"
        );
        let failed = ExecutionStopped::from_event(&event("FAILED", "amc-r1"))
            .unwrap()
            .unwrap();
        assert_eq!(failed.status, StopStatus::Failed);
        for other in ["RUNNING", "SUCCEEDED", "PENDING_REDRIVE"] {
            assert_eq!(
                ExecutionStopped::from_event(&event(other, "amc-r1")).unwrap(),
                None
            );
        }
        assert!(ExecutionStopped::from_event(&json!({"detail": {}})).is_err());
    }

    #[test]
    fn a_name_that_is_no_key_is_not_ours() {
        for name in ["", "other-run", "amc-../../x", "=3"] {
            let stop = ExecutionStopped::from_event(&event("ABORTED", name))
                .unwrap()
                .unwrap();
            assert_eq!(stop.key(), None, "{name:?}");
        }
    }

    #[test]
    fn the_local_event_reads_back_as_the_same_stop() {
        let stop = ExecutionStopped {
            name: "adobe-x1".into(),
            status: StopStatus::TimedOut,
            execution_arn: None,
            error: Some("States.Timeout".into()),
            cause: None,
        };
        let e = stop.to_event(
            "arn:aws:states:local:000000000000:stateMachine:local",
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(is_status_change(&e));
        let back = ExecutionStopped::from_event(&e).unwrap().unwrap();
        assert_eq!(back.name, stop.name);
        assert_eq!(back.status, stop.status);
        assert_eq!(
            back.execution_arn.as_deref(),
            Some("arn:aws:states:local:000000000000:execution:local:adobe-x1")
        );
    }
}
