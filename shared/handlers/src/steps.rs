//! The one step dispatcher: a Step Functions task's payload in, the handler called, its answer
//! (or its typed error) out. The Lambda adapter and the local runner both go through here, so a
//! payload is decoded and an error named the same way in the cloud and on a laptop.
//!
//! Poll gets `{"handle": …}` and answers [`PollOutput`](crate::poll::PollOutput); collect gets
//! `{"handle", "outcome", "reason", "attribution"}` and answers
//! [`RunOutcome`](runbridge_core::RunOutcome). A payload that breaks that contract is
//! [`HandlerError::BadInput`] (`NonRetryable`).
//!
//! On the wire `handle` is a [`HandleRef`]: the request is not in the execution (it may be
//! 256 KiB alone), so each step loads it from the key's ledger entry — read afresh every
//! invocation, nothing cached — and hands the handlers a whole [`RunHandle`]. Every output is
//! checked against [`EXECUTION_PAYLOAD_BUDGET`] here, where it is produced.

use runbridge_core::{
    Attribution, HandleRef, IdempotencyKey, OffsetDateTime, ResolvedRequest, RunHandle, SlotHold,
    EXECUTION_PAYLOAD_BUDGET,
};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use crate::admit::{AdmitInput, Admitter};
use crate::collect::{CollectInput, Collector, Outcome};
use crate::poll::{PollInput, Poller};
use crate::ports::{Ledger, Slots};
use crate::HandlerError;

/// A Task state of the state machine, by the handler it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One poll of the Wait → Poll → Choice loop.
    Poll,
    /// Collecting a finished run's results, or recording its failure.
    Collect,
    /// One attempt to admit a queued run (take a concurrency slot, submit).
    Admit,
}

impl Step {
    /// The step's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Collect => "collect",
            Self::Admit => "admit",
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(step: Step, payload: Value) -> Result<T, HandlerError> {
    serde_json::from_value(payload)
        .map_err(|e| HandlerError::BadInput(format!("{} input: {e}", step.name())))
}

fn encode<T: serde::Serialize>(output: T) -> Value {
    serde_json::to_value(output).expect("step outputs serialise")
}

/// Fails when `payload` (a state's input or a step's output) is larger than
/// [`EXECUTION_PAYLOAD_BUDGET`]. What runbridge puts there is bounded by construction (a handle
/// reference, cut reasons), so this is the guard that a change cannot silently undo that.
pub fn within_budget(what: &str, payload: Value) -> Result<Value, HandlerError> {
    let size = serde_json::to_vec(&payload)
        .expect("json values serialise")
        .len();
    if size > EXECUTION_PAYLOAD_BUDGET {
        return Err(HandlerError::port(
            "executions",
            format!(
                "{what} is {size} bytes, over the execution payload budget of \
                 {EXECUTION_PAYLOAD_BUDGET} bytes"
            ),
            false,
        ));
    }
    Ok(payload)
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
    let slot = entry.queued.and_then(|q| q.slot);
    let handle = reference
        .with_request(entry.request)
        .map_err(|e| HandlerError::port("ledger", e.to_string(), false))?;
    Ok((handle, slot))
}

/// Gives back the run's slot: the vendor run ended (or the run did). A failure is only logged:
/// the slot's lease frees it later.
pub async fn release_slot(slots: &dyn Slots, slot: Option<&SlotHold>, key: &IdempotencyKey) {
    if let Some(hold) = slot {
        match slots.release(hold, key).await {
            Ok(()) => {
                tracing::info!(scope = %hold.scope, slot = hold.slot, "released the concurrency slot")
            }
            Err(e) => {
                tracing::warn!(error = %e, scope = %hold.scope, "could not release the concurrency slot; its lease frees it")
            }
        }
    }
}

/// Extends the run's slot lease past its next poll; true when runs wait for its scope.
async fn renew_slot(
    slots: &dyn Slots,
    slot: Option<&SlotHold>,
    key: &IdempotencyKey,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> bool {
    let Some(hold) = slot else {
        return false;
    };
    match slots.renew(hold, key, now, until).await {
        Ok(renewal) => {
            if !renewal.held {
                tracing::warn!(scope = %hold.scope, slot = hold.slot, "the concurrency slot's lease had run out and another run took it");
            }
            renewal.wanted
        }
        Err(e) => {
            tracing::warn!(error = %e, scope = %hold.scope, "could not renew the concurrency slot's lease");
            false
        }
    }
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
}

/// The span every log line about one run carries: `key`, `vendor`, `vendor_run_id` (empty
/// until the vendor accepted the run) and `attempt`. Opened once per handler call, by the
/// trigger and by each step.
pub fn run_span(
    key: &IdempotencyKey,
    request: &ResolvedRequest,
    vendor_run_id: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "run",
        key = %key,
        vendor = %request.vendor(),
        profile = request.profile(),
        vendor_run_id = tracing::field::Empty,
        attempt = attempt_of(request),
    );
    if let Some(id) = vendor_run_id.filter(|id| !id.is_empty()) {
        span.record("vendor_run_id", id);
    }
    span
}

/// The request's attempt: 1, or N for an explicit rerun (`"attempt": N`, part of the key).
fn attempt_of(request: &ResolvedRequest) -> u64 {
    u64::from(request.attempt.unwrap_or(1))
}

fn handle_span(handle: &RunHandle) -> tracing::Span {
    run_span(&handle.key, &handle.request, Some(&handle.vendor_run_id))
}

/// Runs one poll from a task payload; its output carries the handle as a reference.
pub async fn poll_step(poller: &Poller, payload: Value) -> Result<Value, HandlerError> {
    if payload.get("queued").is_some() {
        return admit_step(poller, payload).await;
    }
    let payload: PollPayload = decode(Step::Poll, payload)?;
    let (handle, slot) = load_run(poller.ledger.as_ref(), payload.handle).await?;
    let input = PollInput { handle };
    crate::metrics::poll_started(&input.handle, poller.clock.now());
    let span = handle_span(&input.handle);
    let (result, counts) =
        runbridge_vendors::http::counted(poller.poll(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, poller.clock.now());
    let mut output = result?;
    if output.done || output.failed {
        release_slot(poller.slots.as_ref(), slot.as_ref(), &output.handle.key).await;
    } else {
        let now = poller.clock.now();
        let until = now
            + time::Duration::seconds(output.wait_seconds as i64)
            + crate::admit::SLOT_LEASE_MARGIN;
        let key = &output.handle.key;
        let wanted = renew_slot(poller.slots.as_ref(), slot.as_ref(), key, now, until).await;
        // Runs wait for this slot: poll as often as they try, so the slot is given back within
        // that of the vendor run's end instead of up to 0.85 × the run's age later.
        let eager = crate::admit::QUEUE_POLICY.max_wait_seconds;
        if wanted && output.wait_seconds > eager {
            tracing::info!(
                wait_seconds = eager,
                "runs wait for this run's slot; polling sooner"
            );
            output.wait_seconds = eager;
        }
    }
    let reference = output.handle.reference();
    let mut value = encode(output);
    value["handle"] = encode(reference);
    within_budget("the poll output", value)
}

/// Runs one admit attempt of a queued run from a task payload (`{"handle", "queued", "waits"}`,
/// sent to the poll function): see [`crate::admit`].
pub async fn admit_step(poller: &Poller, payload: Value) -> Result<Value, HandlerError> {
    let input: AdmitInput = decode(Step::Admit, payload)?;
    let admitter = Admitter {
        vendors: poller.vendors.clone(),
        ledger: poller.ledger.clone(),
        slots: poller.slots.clone(),
        clock: poller.clock.clone(),
        policy: poller.policy,
        deadline: None,
    };
    let span = tracing::info_span!("run", key = %input.handle.key, vendor = %input.handle.vendor, attempt = input.handle.attempt);
    let (result, counts) =
        runbridge_vendors::http::counted(admitter.admit(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, poller.clock.now());
    within_budget("the admit output", encode(result?))
}

/// Runs one collect (or failure record) from a task payload.
pub async fn collect_step(collector: &Collector, payload: Value) -> Result<Value, HandlerError> {
    let payload: CollectPayload = decode(Step::Collect, payload)?;
    let (handle, slot) = load_run(collector.ledger.as_ref(), payload.handle).await?;
    // Poll gave it back when the vendor run ended; a failure recorded without a final poll
    // (retries exhausted, a queued run refused) gives it back here.
    release_slot(collector.slots.as_ref(), slot.as_ref(), &handle.key).await;
    let input = CollectInput {
        handle,
        outcome: payload.outcome,
        reason: payload.reason,
        attribution: payload.attribution,
    };
    let span = handle_span(&input.handle);
    let (result, counts) =
        runbridge_vendors::http::counted(collector.collect(input).instrument(span)).await;
    crate::metrics::vendor_call_counts(&counts, collector.clock.now());
    within_budget("the collect output", encode(result?))
}

#[cfg(test)]
mod tests {
    use crate::error::error_names;

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
                    body["TimeoutSeconds"].as_u64().is_some_and(|t| t > 0),
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
