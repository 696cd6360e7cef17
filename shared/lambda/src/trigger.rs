//! The trigger function's events: SQS batches, EventBridge events and EventBridge Scheduler
//! payloads, all into [`Trigger`].
//!
//! Accepted shapes ([`handle_trigger_event`] tells them apart):
//!
//! - **SQS** (`Records[].eventSource == "aws:sqs"`): each body is a `RunRequest`, whose
//!   message's `SentTimestamp` is the schedule time; or the Scheduler wrapper below (the stack's
//!   schedules send to the queue), whose `scheduled_time` is; or a whole EventBridge event (the
//!   stack's `RunRequestedRule` sends to the queue), whose `detail` is the request and `time`
//!   the schedule time. See [`handle_sqs`].
//! - **EventBridge**, direct Lambda target (rules made outside the stack; the stack's own goes
//!   through the queue): `detail` is the `RunRequest`, `time` the schedule time. See
//!   [`handle_eventbridge`].
//! - **EventBridge Scheduler**, direct Lambda target (schedules made outside the stack; the
//!   stack's own go through the queue): the target `Input` is either the
//!   `RunRequest` itself (then the time of the invocation anchors it), or a wrapper that passes
//!   the schedule's own time through Scheduler's context attribute, which keeps relative windows
//!   and keys exact when an invocation is retried late:
//!
//!   ```json
//!   {"request": {"vendor": "amperity", "...": "..."}, "scheduled_time": "<aws.scheduler.scheduled-time>"}
//!   ```
//! - **Step Functions "Execution Status Change"** (source `aws.states`): the stack's rule sends
//!   this state machine's ABORTED and TIMED_OUT executions; [`handle_function_event`] hands them
//!   to the stop handler (`runbridge_handlers::stopped`), which cancels the vendor run and ends
//!   the run CANCELLED. A failure (a cancel the vendor may still accept) is returned, so Lambda
//!   retries the event twice and then sends it to the dead-letter queue, where it names the
//!   execution (the key).
//!
//! What happens to a failure depends on whether trying again can help. A request that can never
//! succeed (invalid, or refused by the vendor as such) is sent to the dead-letter queue at once
//! with the reason (the [`DeadLetters`] port), and the event counts as handled. A retryable failure is
//! retried: reported in `batchItemFailures` for SQS, returned as an error (Lambda's async retries)
//! for EventBridge and Scheduler.

use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use runbridge_core::{OffsetDateTime, ValidationError};
use runbridge_handlers::ports::StartOutcome;
use runbridge_handlers::stopped::{handle_status_change, is_status_change, StopHandled, Stopper};
use runbridge_handlers::trigger::{Trigger, Triggered};
use runbridge_handlers::HandlerError;
use runbridge_handlers::{DeadLetterReason, DeadLetters};
use runbridge_vendors::VendorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::FunctionError;

/// Messages of one SQS batch handled at the same time. Small: every message may call the
/// vendor, and vendors limit concurrent runs and request rates.
pub const SQS_CONCURRENCY: usize = 4;

/// What the trigger did with one EventBridge or Scheduler event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TriggerOutcome {
    /// The run is submitted and watched.
    Triggered {
        /// The idempotency key (the execution name).
        key: String,
        /// The vendor's run id.
        vendor_run_id: String,
        /// Whether this event submitted it (false: a redelivery found it submitted).
        submitted_now: bool,
        /// Whether this event started the execution.
        execution_started: bool,
        /// The run waits in the state machine for a concurrency slot: nothing is submitted yet
        /// (`vendor_run_id` is empty until its Admit submits it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        queued: bool,
    },
    /// The request can never succeed; it is in the dead-letter queue.
    DeadLettered {
        /// Why.
        error: String,
    },
}

impl From<Triggered> for TriggerOutcome {
    fn from(t: Triggered) -> Self {
        Self::Triggered {
            key: t.key().to_string(),
            vendor_run_id: t.vendor_run_id().unwrap_or_default().to_owned(),
            submitted_now: t.submitted_now,
            execution_started: t.execution == StartOutcome::Started,
            queued: t.queued,
        }
    }
}

/// Handles any event the trigger function receives, status changes included: `stops` holds the
/// stop handler's ports. See the module documentation.
/// `event` is the invocation's payload as the runtime received it: the requests inside it are
/// read from this text (exact numbers, duplicate keys refused), never from a parsed value.
pub async fn handle_function_event(
    trigger: &Trigger,
    stops: &Stopper,
    dlq: &dyn DeadLetters,
    event: &str,
) -> Result<Value, FunctionError> {
    let parsed: Value = serde_json::from_str(event)
        .map_err(|e| FunctionError::bad_input(format!("event is not JSON: {e}")))?;
    if is_status_change(&parsed) {
        return handle_status_change_event(stops, parsed).await;
    }
    handle_trigger_text(trigger, dlq, event).await
}

/// Handles a Step Functions "Execution Status Change" event: see
/// [`runbridge_handlers::stopped`]. Its answer is the [`StopHandled`] outcome.
pub async fn handle_status_change_event(
    stops: &Stopper,
    event: Value,
) -> Result<Value, FunctionError> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (id, execution, status) = (
        text(&event["id"]),
        text(&event["detail"]["name"]),
        text(&event["detail"]["status"]),
    );
    let span = tracing::info_span!("status_change", %id, %execution, %status);
    let handled: StopHandled = handle_status_change(stops, &event).instrument(span).await?;
    Ok(serde_json::to_value(handled).expect("stop outcomes serialise"))
}

/// Handles a run request event (SQS, EventBridge, Scheduler) given as a value; see
/// [`handle_trigger_text`], which the function calls with the payload's own text. A value has
/// already rounded any number a request wrote beyond `f64`.
pub async fn handle_trigger_event(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    event: Value,
) -> Result<Value, FunctionError> {
    handle_trigger_text(trigger, dlq, &event.to_string()).await
}

/// Handles a run request event (SQS, EventBridge, Scheduler) from its text; see the module
/// documentation. The request inside (an SQS body, an EventBridge `detail`, a Scheduler
/// `request`) is read from this text by the same strict, exact-number parse as any request. A
/// Step Functions status change is refused here: it needs the stop handler's ports
/// ([`handle_function_event`]).
pub async fn handle_trigger_text(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    text: &str,
) -> Result<Value, FunctionError> {
    let event: Value = serde_json::from_str(text)
        .map_err(|e| FunctionError::bad_input(format!("event is not JSON: {e}")))?;
    if is_status_change(&event) {
        return Err(FunctionError::bad_input(
            "a Step Functions status change is not a run request (handle_function_event takes it)",
        ));
    }
    if let Some(records) = event.get("Records") {
        let all_sqs = records.as_array().is_some_and(|r| {
            r.iter()
                .all(|m| m.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        });
        if !all_sqs {
            return Err(FunctionError::bad_input(
                "event has Records that are not all from aws:sqs",
            ));
        }
        let batch: SqsEvent = serde_json::from_value(event)
            .map_err(|e| FunctionError::bad_input(format!("SQS event: {e}")))?;
        let response = handle_sqs(trigger, dlq, batch).await;
        return Ok(serde_json::to_value(response).expect("batch responses serialise"));
    }
    let outcome = if event.get("detail-type").is_some() {
        handle_eventbridge(trigger, dlq, text).await?
    } else {
        handle_scheduler(trigger, dlq, text).await?
    };
    Ok(serde_json::to_value(outcome).expect("outcomes serialise"))
}

/// Handles an SQS batch: every message on its own (own span, bounded concurrency, a panic is
/// that message's failure). Returns the ids of the messages to retry; dead-lettered messages
/// are not among them, because they are handled. A message whose id is missing cannot be named
/// in the answer: it is reported as `""`, which Lambda treats as a failure of the whole batch —
/// the safe side.
pub async fn handle_sqs(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    event: SqsEvent,
) -> SqsBatchResponse {
    let failures: Vec<String> = futures::stream::iter(event.records)
        .map(|message| async move {
            let id = message.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("sqs_message", message_id = %id);
            // Each message gets the invocation's remaining time minus a margin, so one hung
            // vendor fails only its own message (retried by SQS; its claim's lease ends with this
            // invocation) instead of the Lambda timeout failing the whole batch.
            let budget = message_budget(trigger.deadline);
            let work = AssertUnwindSafe(handle_sqs_message(trigger, dlq, &message).instrument(span.clone()))
                .catch_unwind();
            let outcome = match budget {
                None => work.await,
                Some(budget) => match tokio::time::timeout(budget, work).await {
                    Ok(outcome) => outcome,
                    Err(_) => Ok(Err(FunctionError::from(HandlerError::Transient(format!(
                        "message not handled within the invocation's remaining time ({} s)",
                        budget.as_secs()
                    ))))),
                },
            };
            let _enter = span.enter();
            match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, error_type = e.error_type(), "message will be retried");
                    Some(id)
                }
                Err(panic) => {
                    tracing::error!(panic = panic_message(&panic), "message handling panicked; it will be retried");
                    Some(id)
                }
            }
        })
        .buffer_unordered(SQS_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// One SQS message: `Ok` when it is done with (triggered or dead-lettered), `Err` to retry.
/// Left for the SQS batch response after the messages' budget runs out.
pub const BATCH_RESPONSE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a message of the batch may take: until `deadline` less [`BATCH_RESPONSE_MARGIN`].
fn message_budget(deadline: Option<OffsetDateTime>) -> Option<std::time::Duration> {
    let left = deadline? - OffsetDateTime::now_utc();
    let left = std::time::Duration::try_from(left).unwrap_or_default();
    Some(left.saturating_sub(BATCH_RESPONSE_MARGIN))
}

async fn handle_sqs_message(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    message: &SqsMessage,
) -> Result<(), FunctionError> {
    let body = message.body.as_deref().unwrap_or_default();
    let sent = message
        .attributes
        .get("SentTimestamp")
        .and_then(|ms| parse_epoch_millis(ms));
    // A schedule delivered through the queue (the stack's schedules target it, so a cron burst
    // waits in the queue instead of invoking the trigger at once) sends its wrapper as the
    // body: the request inside it, anchored at the schedule's own time.
    // The stack's EventBridge rule sends to the queue too (so a burst of events waits there
    // within TriggerMaxConcurrency): the body is the whole event, the request its `detail`,
    // anchored at the event's `time`.
    let unwrapped = scheduled_body(body).or_else(|| eventbridge_body(body));
    let (request, anchor) = match unwrapped {
        None => (body, sent),
        Some(Ok((request, time))) => (request, time.or(sent)),
        Some(Err(e)) => {
            return dead_letter(dlq, body, &e.into(), message.message_id.clone())
                .await
                .map(|_| ())
        }
    };
    match trigger.handle_bytes(request.as_bytes(), anchor).await {
        Ok(triggered) => {
            tracing::info!(key = %triggered.key(), vendor_run_id = triggered.vendor_run_id().unwrap_or_default(), submitted_now = triggered.submitted_now, "triggered");
            Ok(())
        }
        Err(e) if !e.is_retryable() => dead_letter(dlq, body, &e, message.message_id.clone())
            .await
            .map(|_| ()),
        Err(e) => Err(e.into()),
    }
}

/// Handles an EventBridge event (its text) whose `detail` is a `RunRequest` and whose `time` is
/// the schedule time.
pub async fn handle_eventbridge(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    event: &str,
) -> Result<TriggerOutcome, FunctionError> {
    let envelope: EventBridgeEvent<Box<serde_json::value::RawValue>> = serde_json::from_str(event)
        .map_err(|e| FunctionError::bad_input(format!("EventBridge event: {e}")))?;
    let span = tracing::info_span!("eventbridge_event", id = envelope.id.as_deref().unwrap_or_default(), source = %envelope.source);
    let time = envelope
        .time
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n.into()).ok());
    run_one(trigger, dlq, envelope.detail.get(), time)
        .instrument(span)
        .await
}

/// Handles an EventBridge Scheduler payload (its text): a `RunRequest`, or the wrapper in the
/// module documentation.
pub async fn handle_scheduler(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    payload: &str,
) -> Result<TriggerOutcome, FunctionError> {
    let span = tracing::info_span!("scheduled_invocation");
    async move {
        match scheduled_body(payload) {
            None => run_one(trigger, dlq, payload, None).await,
            Some(Ok((request, time))) => run_one(trigger, dlq, request, time).await,
            Some(Err(e)) => reject(dlq, payload, e.into()).await,
        }
    }
    .instrument(span)
    .await
}

async fn run_one(
    trigger: &Trigger,
    dlq: &dyn DeadLetters,
    request: &str,
    schedule_time: Option<OffsetDateTime>,
) -> Result<TriggerOutcome, FunctionError> {
    match trigger
        .handle_bytes(request.as_bytes(), schedule_time)
        .await
    {
        Ok(triggered) => {
            tracing::info!(key = %triggered.key(), vendor_run_id = triggered.vendor_run_id().unwrap_or_default(), submitted_now = triggered.submitted_now, "triggered");
            Ok(triggered.into())
        }
        Err(e) if !e.is_retryable() => reject(dlq, request, e).await,
        Err(e) => Err(e.into()),
    }
}

async fn reject(
    dlq: &dyn DeadLetters,
    request: &str,
    error: HandlerError,
) -> Result<TriggerOutcome, FunctionError> {
    let text = error.to_string();
    dead_letter(dlq, request, &error, None).await?;
    Ok(TriggerOutcome::DeadLettered { error: text })
}

/// Sends `body` to the DLQ with `error` as the reason. If even that fails, the event is retried
/// (better a redelivery than a lost request).
async fn dead_letter(
    dlq: &dyn DeadLetters,
    body: &str,
    error: &HandlerError,
    source_message_id: Option<String>,
) -> Result<String, FunctionError> {
    let reason = reason_for(error, source_message_id);
    match dlq.send(body, &reason).await {
        Ok(id) => {
            tracing::warn!(error = %error, field = reason.field.as_deref(), dlq_message_id = %id, "request dead-lettered");
            Ok(id)
        }
        Err(e) => {
            tracing::error!(error = %error, dlq_error = %e, "could not dead-letter a request; it will be retried");
            Err(FunctionError(e))
        }
    }
}

/// The dead-letter attributes of an error: the field and rule when the error names them.
pub fn reason_for(error: &HandlerError, source_message_id: Option<String>) -> DeadLetterReason {
    let (field, rule) = match error {
        HandlerError::Invalid(v) => (Some(v.field.clone()), Some(v.rule.clone())),
        HandlerError::Vendor(VendorError::Rejected { field, message, .. }) => {
            (field.clone(), Some(message.clone()))
        }
        _ => (None, None),
    };
    DeadLetterReason {
        error: error.to_string(),
        field,
        rule,
        source_message_id,
        attribution: Some(error.attribution()),
    }
}

fn parse_epoch_millis(ms: &str) -> Option<OffsetDateTime> {
    let ms: i128 = ms.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
}

/// The request and schedule time of a message body that is the Scheduler wrapper (see the
/// module documentation); `None` for any other body (a bare request). The request's text is
/// kept as written, so the strict parse reads its numbers exactly.
fn scheduled_body(body: &str) -> Option<Result<(&str, Option<OffsetDateTime>), ValidationError>> {
    use serde_json::value::RawValue;
    let members: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(body).ok()?;
    let request = members.get("request")?.get();
    if let Some(twice) = wrapper_key_twice(body) {
        return Some(Err(twice));
    }
    if let Some(other) = members
        .keys()
        .find(|k| !["request", "scheduled_time"].contains(&k.as_str()))
    {
        return Some(Err(ValidationError::new(
            other.as_str(),
            "unknown field of a schedule's wrapper (expected request and scheduled_time)",
        )));
    }
    Some(time_member(&members, "scheduled_time").map(|time| (request, time)))
}

/// The request and time of a message body that is an EventBridge event (it has `detail-type`):
/// its `detail`, kept as written so the strict parse reads its numbers exactly and sees a
/// duplicate key, and its `time`. `None` for any other body.
fn eventbridge_body(body: &str) -> Option<Result<(&str, Option<OffsetDateTime>), ValidationError>> {
    use serde_json::value::RawValue;
    let members: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(body).ok()?;
    members.get("detail-type")?;
    if let Some(twice) = wrapper_key_twice(body) {
        return Some(Err(twice));
    }
    let Some(detail) = members.get("detail").map(|d| d.get()) else {
        return Some(Err(ValidationError::new(
            "detail",
            "an EventBridge event's detail must be the run request",
        )));
    };
    Some(time_member(&members, "time").map(|time| (detail, time)))
}

/// An envelope naming one of its members twice (two `detail`s, two `request`s): which one the
/// sender meant cannot be known, so it is refused, naming the member, as a request's own
/// duplicate key is.
fn wrapper_key_twice(body: &str) -> Option<ValidationError> {
    runbridge_core::request::duplicate_top_level_key(body).map(|key| {
        ValidationError::new(
            key,
            "is given more than once (duplicate key); give each key once",
        )
    })
}

/// An envelope's time member `field` (absent or null: none), as an RFC 3339 string; an error
/// names `field`.
fn time_member(
    members: &std::collections::BTreeMap<String, &serde_json::value::RawValue>,
    field: &str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    match members.get(field).map(|t| t.get()) {
        None | Some("null") => Ok(None),
        Some(text) => serde_json::from_str::<String>(text)
            .map_err(|_| ValidationError::new(field, "must be an RFC 3339 time string"))
            .and_then(|t| parse_time_of(field, &t))
            .map(Some),
    }
}

/// `text` as an RFC 3339 time; an error names `field`.
fn parse_time_of(field: &str, text: &str) -> Result<OffsetDateTime, ValidationError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        ValidationError::new(
            field,
            format!("must be an RFC 3339 time such as 2024-05-01T06:00:00Z ({e})"),
        )
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
