//! The poll handler: one iteration of the Wait → Poll → Choice loop.
//!
//! Asks the vendor for the run's state and answers what the Choice state needs: done (and the
//! results are downloadable), failed (with reason and attribution), or wait N seconds. A
//! transient vendor error is a wait, not a failure. Past the deadline the run is cancelled where
//! the API allows, and reported failed.

use runbridge_core::{
    cut_text, Attribution, BackoffPolicy, PollPlan, Prediction, RunHandle, RunState, RunStatus,
    MAX_REASON_BYTES,
};
use runbridge_vendors::{ResultsAvailability, RunRef, VendorError, Vendors};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::ports::Ledger;
use crate::{Clock, HandlerError};

/// The poll state's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollInput {
    /// The run.
    pub handle: RunHandle,
}

/// The poll state's output, read by the Choice state and the next Wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollOutput {
    /// The run, with this poll recorded.
    pub handle: RunHandle,
    /// The common state.
    pub state: RunState,
    /// Succeeded and ready to collect.
    pub done: bool,
    /// Ended without success.
    pub failed: bool,
    /// Seconds until the next poll (when neither done nor failed).
    pub wait_seconds: u64,
    /// Why it failed.
    pub reason: Option<String>,
    /// Whose fault a failure was.
    pub attribution: Option<Attribution>,
    /// On a failure: this poll settled the vendor run (saw it end, or cancelled it at the
    /// deadline), so recording the failure cancels nothing. The state machine's error paths say
    /// `false` instead: the vendor run may still go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<bool>,
}

/// Polls one execution may make before [`history_floor`] spaces them out. A poll loop adds
/// ~9 events to the execution's history (Wait entered/exited, Task entered/scheduled/started/
/// succeeded/exited, Choice entered/exited) and Step Functions fails an execution at 25,000:
/// 1,300 polls are ~11,700 events, under half the quota, leaving room for the queue's states and
/// retries.
pub const MAX_POLLS_PER_EXECUTION: u32 = 1_300;

/// The polls a run makes freely, before [`history_floor`] applies: every plan spends far fewer on
/// any run that ends within a day, so the floor only touches runs polled densely for days.
pub const FREE_POLLS: u32 = MAX_POLLS_PER_EXECUTION / 2;

/// The shortest wait that keeps a run's polls within [`MAX_POLLS_PER_EXECUTION`] until its
/// deadline (after which it is cancelled), whatever its poll policy asks: 0 for the first
/// [`FREE_POLLS`], then the time left spread evenly over the polls left. Each wait at least this
/// long never lets the floor rise, so the polls left run out no sooner than the time does.
pub fn history_floor(polls: u32, remaining_seconds: u64) -> u64 {
    if polls < FREE_POLLS {
        return 0;
    }
    let left = u64::from(MAX_POLLS_PER_EXECUTION.saturating_sub(polls).max(1));
    remaining_seconds.div_ceil(left)
}

/// The poll handler's dependencies.
pub struct Poller {
    /// Vendor clients.
    pub vendors: Vendors,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The wait policy.
    pub policy: BackoffPolicy,
    /// The idempotency ledger, where the step dispatcher ([`crate::steps::poll_step`]) reads
    /// the run's request: the execution carries only a reference.
    pub ledger: Arc<dyn Ledger>,
    /// The concurrency slots: given back when the run ends, renewed by each poll.
    pub slots: Arc<dyn crate::ports::Slots>,
    /// Wakes the waiter a given-back slot goes to (and hosts the admission's task tokens).
    pub callbacks: Arc<dyn crate::ports::Callbacks>,
    /// The workflows' durations: the first poll of a run predicts its end from them.
    pub history: Arc<dyn crate::ports::History>,
}

impl Poller {
    /// Polls once.
    pub async fn poll(&self, input: PollInput) -> Result<PollOutput, HandlerError> {
        let mut handle = input.handle;
        let vendor = self.vendors.for_request(&handle.request)?;
        let Some(vendor_run_id) = handle.vendor_run_id.clone() else {
            return Err(HandlerError::BadInput(format!(
                "{} has no vendor run to poll: it waits for a concurrency slot",
                handle.key
            )));
        };
        let vendor_run_id = vendor_run_id.as_str();
        let run = RunRef {
            request: &handle.request,
            vendor_run_id,
        };
        let now = self.clock.now();
        let status = match vendor.status(run).await {
            Ok(s) => s,
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "status unavailable; polling again later");
                let hint = match &e {
                    VendorError::Throttled {
                        retry_after_seconds,
                        ..
                    } => *retry_after_seconds,
                    _ => None,
                };
                let mut s = RunStatus::new(handle.last_state(), "unknown (vendor unavailable)");
                s.retry_after_seconds = hint;
                if let Some(last) = handle.timeline.last() {
                    s.vendor_state = last.vendor_state.clone();
                }
                s
            }
            Err(e) => {
                return Ok(self.failed(handle, RunState::Failed, e.to_string(), e.attribution()))
            }
        };
        if handle.polls == 0 {
            handle.prediction = self.predict(&handle).await;
        }
        handle.record(&status, now);
        let policy = handle.request.backoff(self.policy);
        let plan = PollPlan::for_run(
            handle.request.own_poll_policy(),
            handle.prediction,
            self.policy,
        );
        let jitter: f64 = rand::random();
        let age = handle.age_seconds(now);
        let remaining = handle.remaining_seconds(now);
        match status.state {
            RunState::Succeeded if !vendor.results_may_lag_success() => {
                // Ready with the success just read: collect reads the results, once.
                Ok(self.done(handle))
            }
            RunState::Succeeded => {
                // Results can lag the state (AMC "unavailable for download"): that is a wait.
                // The URLs this answers are not handed to collect, which asks again: they are
                // presigned (bearer credentials to the data, ~1–2 KiB each) and would be kept in
                // the execution's input and history, readable by anyone who can read executions.
                // One more cheap GET per run is the price.
                match vendor
                    .results(RunRef {
                        request: &handle.request,
                        vendor_run_id,
                    })
                    .await
                {
                    Ok(ResultsAvailability::Ready(_)) | Ok(ResultsAvailability::NoFiles) => {
                        Ok(self.done(handle))
                    }
                    Ok(ResultsAvailability::NotYet {
                        retry_after_seconds,
                        reason,
                    }) if remaining > 0 => {
                        tracing::info!(%reason, "succeeded; results not published yet");
                        let wait = policy
                            .next_wait(age, retry_after_seconds, remaining)
                            .min(60);
                        Ok(self.wait(handle, RunState::Succeeded, wait))
                    }
                    Ok(ResultsAvailability::NotYet { reason, .. }) => Ok(self.failed(
                        handle,
                        RunState::Failed,
                        format!("deadline passed before results were published: {reason}"),
                        Attribution::Platform,
                    )),
                    Err(e) if e.is_retryable() => {
                        Ok(self.wait(handle, RunState::Succeeded, policy.min_wait_seconds))
                    }
                    Err(e) => {
                        Ok(self.failed(handle, RunState::Failed, e.to_string(), e.attribution()))
                    }
                }
            }
            RunState::Failed | RunState::Cancelled => {
                let reason = status.reason.clone().unwrap_or_else(|| {
                    format!("{} run ended {}", handle.vendor(), status.vendor_state)
                });
                // A run cancelled at the vendor while runbridge still watched it was cancelled by
                // someone with access to the customer's account (its UI, its API): the
                // customer's decision, unless the vendor says otherwise. runbridge's own cancels
                // (a deadline, a stop) end the run before any poll sees it cancelled.
                let attribution = status.attribution.unwrap_or(match status.state {
                    RunState::Cancelled => Attribution::Customer,
                    _ => Attribution::Platform,
                });
                let reason = match (status.state, status.reason.is_some()) {
                    (RunState::Cancelled, false) => {
                        format!("{reason}: cancelled at the vendor, not by runbridge")
                    }
                    _ => reason,
                };
                Ok(self.failed(handle, status.state, reason, attribution))
            }
            RunState::Pending | RunState::Running if remaining == 0 => {
                // The one wording of a cancel (cancel.rs), as a stop or a recorded failure says
                // it. A cancel that may still be accepted is this poll's error: the task's
                // Retrier polls again, finds the deadline passed and asks again.
                let what = crate::cancel::cancel_vendor_run(&self.vendors, &handle).await?;
                let reason = format!(
                    "deadline of {} s exceeded in state {}; {what}",
                    handle.request.deadline_seconds(),
                    status.vendor_state
                );
                Ok(self.failed(handle, RunState::Failed, reason, Attribution::Platform))
            }
            state => {
                let wait = plan.next_wait(age, status.retry_after_seconds, remaining, jitter);
                Ok(self.wait(handle, state, wait))
            }
        }
    }

    /// When the run will end, from its workflow's earlier runs. Not knowing is no failure: the
    /// run is then polled by the default plan.
    async fn predict(&self, handle: &RunHandle) -> Option<Prediction> {
        if handle.request.own_poll_policy().is_some() {
            return None;
        }
        let workflow = handle.request.workflow_key();
        match self.history.read(&workflow).await {
            Ok(history) => {
                let prediction = history.predict();
                if let Some(p) = &prediction {
                    tracing::info!(%workflow, median_seconds = p.median_seconds, low_seconds = p.low_seconds, high_seconds = p.high_seconds, runs = p.runs, "predicted the run's end from its workflow's history");
                }
                prediction
            }
            Err(e) => {
                tracing::warn!(error = %e, %workflow, "could not read the workflow's durations; polling by the default plan");
                None
            }
        }
    }

    fn done(&self, handle: RunHandle) -> PollOutput {
        PollOutput {
            handle,
            state: RunState::Succeeded,
            done: true,
            failed: false,
            wait_seconds: 0,
            reason: None,
            attribution: None,
            settled: None,
        }
    }

    fn wait(&self, handle: RunHandle, state: RunState, wait_seconds: u64) -> PollOutput {
        let floor = history_floor(handle.polls, handle.remaining_seconds(self.clock.now()));
        if floor > wait_seconds {
            tracing::info!(
                polls = handle.polls,
                wait_seconds,
                floor,
                "polls spaced out to keep the execution's history within its quota"
            );
        }
        PollOutput {
            handle,
            state,
            done: false,
            failed: false,
            wait_seconds: wait_seconds.max(floor),
            reason: None,
            attribution: None,
            settled: None,
        }
    }

    fn failed(
        &self,
        handle: RunHandle,
        state: RunState,
        reason: String,
        attribution: Attribution,
    ) -> PollOutput {
        tracing::warn!(%reason, ?attribution, "run failed");
        PollOutput {
            handle,
            state,
            done: false,
            failed: true,
            wait_seconds: 0,
            // The reason travels through the state machine into the manifest: bounded there,
            // whole in the log line above.
            reason: Some(cut_text(&reason, MAX_REASON_BYTES)),
            attribution: Some(attribution),
            settled: Some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls until the deadline by a policy that asks for `asked` seconds every time.
    fn polls_until_deadline(deadline: u64, asked: u64) -> u32 {
        let (mut polls, mut remaining) = (0u32, deadline);
        while remaining > 0 {
            polls += 1;
            let wait = asked.max(history_floor(polls, remaining)).min(remaining);
            remaining -= wait;
        }
        polls
    }

    #[test]
    fn no_policy_polls_an_execution_past_its_history_budget() {
        // A week's deadline (the longest a request may ask) polled every second, every 5 s,
        // every minute: the floor holds each under the budget.
        for asked in [1, 5, 60] {
            let polls = polls_until_deadline(604_800, asked);
            assert!(polls <= MAX_POLLS_PER_EXECUTION, "{asked} s: {polls} polls");
            // ~9 history events per poll: under half of Step Functions' 25,000.
            assert!(u64::from(polls) * 9 <= 12_500, "{asked} s: {polls} polls");
        }
        // Six hours polled every minute never reach the floor: the policy's waits stand.
        assert_eq!(polls_until_deadline(21_600, 60), 360);
        assert_eq!(history_floor(FREE_POLLS - 1, 604_800), 0);
        assert!(history_floor(FREE_POLLS, 604_800) > 900);
        assert_eq!(history_floor(MAX_POLLS_PER_EXECUTION + 5, 30), 30);
    }
}
