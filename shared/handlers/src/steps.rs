//! The one step dispatcher: a Step Functions task's payload in, the handler called, its answer
//! (or its typed error) out. The Lambda adapter and the local runner both go through here, so a
//! payload is decoded and an error named the same way in the cloud and on a laptop.
//!
//! Each task's `Parameters` name the step (`"step": "poll" | "admit" | "collect"`). Poll gets
//! `{"step", "handle"}` and answers [`PollOutput`](crate::poll::PollOutput); admit gets
//! `{"step", "handle", "waits"}` and answers [`AdmitOutput`]; collect gets `{"step", "handle",
//! "outcome", "reason", "attribution"}` and answers [`RunOutcome`](runbridge_core::RunOutcome).
//! A payload that breaks that contract is [`HandlerError::BadInput`] (`NonRetryable`).
//!
//! On the wire `handle` is a [`HandleRef`]: the request is not in the execution (it may be
//! 256 KiB alone), so each step loads it from the key's ledger entry — read afresh every
//! invocation, nothing cached — and hands the handlers a whole [`RunHandle`]. Every output is
//! checked against [`EXECUTION_PAYLOAD_BUDGET`](runbridge_core::EXECUTION_PAYLOAD_BUDGET) here,
//! where it is produced.

use runbridge_core::{Attribution, HandleRef, RunHandle, SlotHold};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use crate::admit::{AdmitInput, Admitter, EnqueueInput};
use crate::collect::{CollectInput, Collector, Outcome};
use crate::payload::{encode, within_budget};
use crate::poll::{PollInput, Poller};
use crate::ports::Ledger;
use crate::span::handle_span;
use crate::HandlerError;

/// A Task state of the state machine, by the handler it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One poll of the Wait → Poll → Choice loop.
    Poll,
    /// Collecting a finished run's results, or recording its failure.
    Collect,
    /// One attempt to admit a queued run (take up its concurrency slot, submit).
    Admit,
    /// A queued run joins its scope's line, parked on a task token.
    Enqueue,
}

impl Step {
    /// The step's name in error messages and in the task's `"step"` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Collect => "collect",
            Self::Admit => "admit",
            Self::Enqueue => "enqueue",
        }
    }
}

/// A task payload of the poll function, by the step its `"step"` parameter names.
#[derive(Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum PollFunctionTask {
    Poll(PollPayload),
    Admit(AdmitInput),
    Enqueue(EnqueueInput),
}

impl PollFunctionTask {
    /// Reads a poll function payload. Executions started before tasks named their step (their
    /// definition is kept for their whole life, across an upgrade) send no `"step"`: their admit
    /// task was the only one with `"queued": true`.
    fn decode(payload: Value) -> Result<Self, HandlerError> {
        if payload.get("step").is_some() {
            return serde_json::from_value(payload)
                .map_err(|e| HandlerError::BadInput(format!("poll function input: {e}")));
        }
        if payload.get("queued").is_some() {
            decode(Step::Admit, payload).map(Self::Admit)
        } else {
            decode(Step::Poll, payload).map(Self::Poll)
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(step: Step, payload: Value) -> Result<T, HandlerError> {
    serde_json::from_value(payload)
        .map_err(|e| HandlerError::BadInput(format!("{} input: {e}", step.name())))
}

/// The whole handle of the run `reference` names: its request read from the key's ledger
/// entry. A missing entry is not retryable (the trigger writes it before the vendor is called
/// and nothing deletes a submitted key's entry); a ledger that cannot be read now is retried.
pub async fn load_handle(
    ledger: &dyn Ledger,
    reference: HandleRef,
) -> Result<RunHandle, HandlerError> {
    Ok(load_run(ledger, reference).await?.0)
}

/// [`load_handle`], with the concurrency slot the run holds (from the same ledger read).
pub async fn load_run(
    ledger: &dyn Ledger,
    reference: HandleRef,
) -> Result<(RunHandle, Option<SlotHold>), HandlerError> {
    let Some(entry) = ledger.get(&reference.key).await? else {
        return Err(HandlerError::port(
            "ledger",
            format!(
                "no ledger entry for {}: the run's request is kept there",
                reference.key
            ),
            false,
        ));
    };
    let slot = entry.slot().cloned();
    let handle = reference
        .with_request(entry.request)
        .map_err(|e| HandlerError::port("ledger", e.to_string(), false))?;
    Ok((handle, slot))
}

/// The poll task's payload.
#[derive(Deserialize)]
struct PollPayload {
    handle: HandleRef,
}

/// The collect task's payload.
#[derive(Deserialize)]
struct CollectPayload {
    handle: HandleRef,
    outcome: Outcome,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    attribution: Option<Attribution>,
    /// Whether the step that failed the run settled its vendor run (`false`: an error ended
    /// the run and the vendor run may still go). Absent from executions of older definitions.
    #[serde(default)]
    settled: Option<bool>,
}

/// Runs one task of the poll function (a poll, or an admit of a queued run) from its payload;
/// its output carries the handle as a reference.
pub async fn poll_step(poller: &Poller, payload: Value) -> Result<Value, HandlerError> {
    match PollFunctionTask::decode(payload)? {
        PollFunctionTask::Poll(payload) => poll(poller, payload).await,
        PollFunctionTask::Admit(input) => admit(poller, input).await,
        PollFunctionTask::Enqueue(input) => enqueue(poller, input).await,
    }
}

async fn poll(poller: &Poller, payload: PollPayload) -> Result<Value, HandlerError> {
    let (handle, slot) = load_run(poller.ledger.as_ref(), payload.handle).await?;
    let input = PollInput { handle };
    crate::metrics::poll_started(&input.handle, poller.clock.now());
    let span = handle_span(&input.handle);
    let (result, counts) =
        runbridge_vendors::http::counted(poller.poll(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, poller.clock.now());
    let output = result?;
    let mut reference = output.handle.reference();
    if let Some(hold) = slot.filter(|_| !reference.slot_released) {
        let (key, now) = (&output.handle.key, poller.clock.now());
        if output.done || output.failed {
            // The vendor run ended: its slot goes to the oldest waiter now.
            crate::queue::release(
                poller.slots.as_ref(),
                poller.callbacks.as_ref(),
                &hold.scope,
                key,
                now,
            )
            .await?;
            reference.slot_released = true;
            reference.slot_until = None;
        } else {
            let next_poll = now + time::Duration::seconds(output.wait_seconds as i64);
            // The lease the run last stored is a lower bound: while it outlasts the next poll by
            // the margin, nothing needs reading or writing.
            if !crate::queue::lease_lasts(reference.slot_until, next_poll) {
                reference.slot_until =
                    crate::queue::renew(poller.slots.as_ref(), &hold.scope, key, next_poll).await?;
                if reference.slot_until.is_none() {
                    tracing::warn!(scope = %hold.scope, "the concurrency slot's lease had run out and another run took it");
                }
            }
        }
    }
    let mut value = encode(output);
    value["handle"] = encode(reference);
    within_budget("the poll output", value)
}

fn admitter(poller: &Poller) -> Admitter {
    Admitter {
        vendors: poller.vendors.clone(),
        ledger: poller.ledger.clone(),
        slots: poller.slots.clone(),
        callbacks: poller.callbacks.clone(),
        clock: poller.clock.clone(),
        policy: poller.policy,
        deadline: None,
    }
}

/// A queued run joins its scope's line (sent to the poll function by the parked `WaitForSlot`
/// task): see [`crate::admit`]. Its answer is only logged: the parked task waits for its token.
async fn enqueue(poller: &Poller, input: EnqueueInput) -> Result<Value, HandlerError> {
    let span = tracing::info_span!("run", key = %input.handle.key, vendor = %input.handle.vendor, attempt = input.handle.attempt);
    let enqueued = admitter(poller).enqueue(input).instrument(span).await?;
    Ok(serde_json::json!({ "enqueued": enqueued }))
}

/// One admit attempt of a queued run (sent to the poll function): see [`crate::admit`].
async fn admit(poller: &Poller, input: AdmitInput) -> Result<Value, HandlerError> {
    let admitter = admitter(poller);
    let span = tracing::info_span!("run", key = %input.handle.key, vendor = %input.handle.vendor, attempt = input.handle.attempt);
    let (result, counts) =
        runbridge_vendors::http::counted(admitter.admit(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, poller.clock.now());
    within_budget("the admit output", encode(result?))
}

/// Runs one collect (or failure record) from a task payload.
pub async fn collect_step(collector: &Collector, payload: Value) -> Result<Value, HandlerError> {
    let payload = match payload.get("step") {
        Some(step) if step != Step::Collect.name() => {
            return Err(HandlerError::BadInput(format!(
                "the collect function runs the collect step, not {step}"
            )))
        }
        _ => payload,
    };
    let payload: CollectPayload = decode(Step::Collect, payload)?;
    let (handle, slot) = load_run(collector.ledger.as_ref(), payload.handle).await?;
    let mut reason = payload.reason;
    if payload.outcome == Outcome::Failed
        && payload.settled == Some(false)
        && handle.vendor_run_id.is_some()
        && !handle.last_state().is_final()
    {
        // A failure recorded while the vendor run still goes (the poll's retries ran out, a
        // Lambda or service error): cancel it before its slot is handed on, so the vendor's
        // count and ours agree and nobody pays for a run whose results nobody collects.
        let cancel = crate::cancel::cancel_vendor_run(&collector.vendors, &handle).await?;
        reason = Some(match reason {
            Some(r) => format!("{r}; {cancel}"),
            None => cancel,
        });
    }
    // Poll gave it back when the vendor run ended; a failure recorded without a final poll
    // (retries exhausted, a queued run refused) gives it back here.
    let scope = slot.filter(|_| !handle.slot_released).map(|s| s.scope);
    collector
        .finisher
        .release(scope.as_deref(), &handle)
        .await?;
    let input = CollectInput {
        handle,
        outcome: payload.outcome,
        reason,
        attribution: payload.attribution,
    };
    let span = handle_span(&input.handle);
    let (result, counts) =
        runbridge_vendors::http::counted(collector.collect(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, collector.finisher.clock.now());
    within_budget("the collect output", encode(result?))
}

#[cfg(test)]
mod tests {
    use super::PollFunctionTask;
    use crate::error::error_names;

    fn handle() -> serde_json::Value {
        serde_json::json!({
            "key": "amc-q1", "vendor": "amc", "attempt": 1, "vendor_run_id": "",
            "submitted_at": "2026-11-30T00:00:00Z", "deadline_at": "2026-12-01T00:00:00Z"
        })
    }

    #[test]
    fn the_poll_function_dispatches_by_the_tasks_step_and_reads_older_payloads() {
        use serde_json::json;
        let is_admit = |payload| match PollFunctionTask::decode(payload) {
            Ok(PollFunctionTask::Admit(input)) => Some(input.waits),
            Ok(PollFunctionTask::Poll(_)) => None,
            Ok(PollFunctionTask::Enqueue(_)) => panic!("not an enqueue"),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            is_admit(json!({"step": "admit", "handle": handle(), "waits": 2})),
            Some(2)
        );
        assert_eq!(is_admit(json!({"step": "poll", "handle": handle()})), None);
        // Executions started before the tasks named their step.
        assert_eq!(
            is_admit(json!({"handle": handle(), "queued": true, "waits": 4})),
            Some(4)
        );
        assert_eq!(is_admit(json!({"handle": handle()})), None);
        for bad in [
            json!({"step": "collect", "handle": handle()}),
            json!({"step": "poll"}),
            json!({"handle": 7}),
        ] {
            let err = PollFunctionTask::decode(bad.clone())
                .err()
                .expect("refused");
            assert_eq!(err.error_type(), error_names::NON_RETRYABLE, "{bad}");
        }
    }

    const DEFINITION: &str = include_str!("../../../infra/statemachine.asl.json");

    /// Every `ErrorEquals` name of every state, with the state's name.
    fn error_equals(kind: &str) -> Vec<(String, String)> {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let mut out = Vec::new();
        for (state, body) in asl["States"].as_object().unwrap() {
            for clause in body[kind].as_array().into_iter().flatten() {
                for name in clause["ErrorEquals"].as_array().unwrap() {
                    out.push((state.clone(), name.as_str().unwrap().to_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn the_state_machine_matches_only_error_names_the_handlers_raise() {
        for kind in ["Retry", "Catch"] {
            for (state, name) in error_equals(kind) {
                assert!(
                    name.starts_with("States.")
                        || name.starts_with("Lambda.")
                        || error_names::ALL.contains(&name.as_str()),
                    "{state}.{kind} matches {name:?}, which no handler raises"
                );
            }
        }
    }

    #[test]
    fn customer_errors_are_caught_apart_and_before_the_catch_all() {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        for state in ["Admit", "Poll", "Collect"] {
            let catch = asl["States"][state]["Catch"].as_array().unwrap();
            let names: Vec<&str> = catch[0]["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            assert_eq!(names, error_names::CUSTOMER, "{state}");
            let describe = catch[0]["Next"].as_str().unwrap();
            assert_eq!(
                asl["States"][describe]["Parameters"]["attribution"], "customer",
                "{state}"
            );
            assert_eq!(catch[1]["ErrorEquals"][0], "States.ALL", "{state}");
        }
    }

    #[test]
    fn every_task_retries_the_retryable_error() {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let retried: Vec<_> = error_equals("Retry")
            .into_iter()
            .filter(|(_, n)| n == error_names::RETRYABLE)
            .map(|(s, _)| s)
            .collect();
        for (state, body) in asl["States"].as_object().unwrap() {
            if body["Type"] == "Task" {
                assert!(retried.contains(state), "{state} does not retry Retryable");
            }
        }
    }

    #[test]
    fn every_task_has_a_timeout_and_retries_it() {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let retried: Vec<_> = error_equals("Retry")
            .into_iter()
            .filter(|(_, n)| n == "States.Timeout")
            .map(|(s, _)| s)
            .collect();
        for (state, body) in asl["States"].as_object().unwrap() {
            if body["Type"] == "Task" {
                assert!(
                    body["TimeoutSeconds"].as_u64().is_some_and(|t| t > 0)
                        || body["TimeoutSecondsPath"].is_string(),
                    "{state} has no TimeoutSeconds"
                );
                assert!(
                    retried.contains(state),
                    "{state} does not retry States.Timeout"
                );
            }
        }
    }
}
