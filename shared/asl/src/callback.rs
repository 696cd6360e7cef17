//! How one attempt of a Task state calls its resource, between `TaskStarted` and its result: the
//! attempt's timeouts ([`Limits`], `TimeoutSecondsPath`/`HeartbeatSecondsPath` resolved), who the
//! [`TaskInvoker`](crate::TaskInvoker) is called with ([`Call`]: the resource and the effective
//! input, or for the optimized Lambda integration `FunctionName` and `Payload`), the Invoke
//! response `lambda:invoke` answers with, and a callback task's wait for its token.
//!
//! Time: while the invoker runs, `TimeoutSeconds` is measured on the tokio clock (machine time,
//! as for any handler); while a callback task waits for its token, its `TimeoutSeconds` (counted
//! from `TaskStarted`) and `HeartbeatSeconds` (counted from the submission or the last
//! heartbeat) are measured on the [`WaitClock`](crate::WaitClock), like a Wait state, since
//! what it waits for happens in workflow time. On [`InstantClock`](crate::InstantClock) that time
//! passes at once, so a parked task with a timeout times out unless its answer is already there.
//! The execution deadline bounds both phases.

use crate::dataflow::select;
use crate::definition::{Integration, Seconds, TaskState};
use crate::error::{names, StateError, TaskFailure};
use crate::execute::{Halt, Run};
use crate::history::HistoryEventKind;
use crate::tokens::{Answer, OpenToken, Signal};
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

/// One attempt's `TimeoutSeconds` and `HeartbeatSeconds`, paths resolved.
pub(crate) struct Limits {
    pub timeout: Option<u64>,
    pub heartbeat: Option<u64>,
}

impl Limits {
    /// Resolves the paths against the effective input; a path that selects nothing, or anything
    /// but a positive integer, is `States.Runtime`.
    pub fn resolve(
        task: &TaskState,
        effective: &Value,
        context: &Value,
    ) -> Result<Self, StateError> {
        Ok(Self {
            timeout: seconds(
                task.timeout.as_ref(),
                effective,
                context,
                "TimeoutSecondsPath",
            )?,
            heartbeat: seconds(
                task.heartbeat.as_ref(),
                effective,
                context,
                "HeartbeatSecondsPath",
            )?,
        })
    }
}

fn seconds(
    seconds: Option<&Seconds>,
    effective: &Value,
    context: &Value,
    field: &str,
) -> Result<Option<u64>, StateError> {
    match seconds {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Path(path)) => {
            let value = select(path, effective, context, field)?;
            match value.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(StateError::runtime(format!(
                    "{field} '{path}' must select a positive integer, got {value}"
                ))),
            }
        }
    }
}

/// Who the invoker is called with.
pub(crate) struct Call {
    pub target: String,
    pub payload: Value,
}

impl Call {
    /// A plain resource gets the effective input (after Parameters); the Lambda integration's
    /// function gets `Payload` (`{}` when there is none, as an Invoke without a payload).
    pub fn new(task: &TaskState, parameters: Value) -> Result<Self, StateError> {
        match task.integration {
            Integration::Resource => Ok(Self {
                target: task.resource.clone(),
                payload: parameters,
            }),
            Integration::LambdaInvoke { .. } => {
                let target = match parameters.get("FunctionName") {
                    Some(Value::String(name)) if !name.is_empty() => name.clone(),
                    other => {
                        return Err(StateError::runtime(format!(
                            "The FunctionName parameter of {} must be a function name or ARN, \
                             got {}",
                            task.resource,
                            other.map_or("nothing".to_owned(), Value::to_string)
                        )))
                    }
                };
                Ok(Self {
                    target,
                    payload: parameters
                        .get("Payload")
                        .cloned()
                        .unwrap_or_else(|| json!({})),
                })
            }
        }
    }
}

/// How an attempt's call ended.
pub(crate) enum Outcome {
    /// The task result (before ResultPath).
    Succeeded(Value),
    /// The resource failed, or a caller sent `SendTaskFailure`.
    Failed(TaskFailure),
    /// `TimeoutSeconds` or `HeartbeatSeconds` passed.
    TimedOut(StateError),
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Success(output) => Outcome::Succeeded(output),
            Answer::Failure { error, cause } => Outcome::Failed(TaskFailure { error, cause }),
        }
    }
}

/// How the invoker's call ended.
enum Invoked {
    Answer(Result<Value, TaskFailure>),
    TaskTimeout(u64),
    ExecutionDeadline,
}

/// Which limit a parked task reached.
enum Expired {
    Task(u64),
    Heartbeat(u64),
    Execution,
}

fn task_timeout(limit: u64) -> StateError {
    StateError::new(
        names::TIMEOUT,
        format!("Task timed out after {limit} seconds"),
    )
}

/// The Invoke response Step Functions' `lambda:invoke` answers with: the function's result as
/// `Payload`, beside the call's status and metadata.
fn invoke_response(payload: Value) -> Value {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    let hex = format!("{bits:032x}");
    let request_id = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Content-Type": ["application/json"],
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-RequestId": [request_id],
            },
            "HttpHeaders": {
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    })
}

impl Run<'_> {
    /// Calls the resource and, for a callback task (`token` is its open token), waits for the
    /// answer. `started` is when the task started, on the WaitClock. The outer `Result` stops the
    /// execution (its deadline, the history quota).
    pub(crate) async fn call(
        &mut self,
        task: &TaskState,
        state_name: &str,
        call: Call,
        limits: &Limits,
        started: OffsetDateTime,
        mut token: Option<(OpenToken, UnboundedReceiver<Signal>)>,
    ) -> Result<Outcome, Halt> {
        let (invoked, early) = match token.as_mut() {
            None => (self.invoke(call, limits.timeout).await, None),
            Some((_, receiver)) => {
                // The function may answer for its own token before its invoke returns.
                let invoke = self.invoke(call, limits.timeout);
                tokio::pin!(invoke);
                let mut early = None;
                let invoked = loop {
                    tokio::select! {
                        biased;
                        invoked = &mut invoke => break invoked,
                        Some(signal) = receiver.recv(), if early.is_none() => {
                            if let Signal::Answer(answer) = signal {
                                early = Some(answer);
                            }
                        }
                    }
                };
                (invoked, early)
            }
        };
        // An answer that arrived while the function still ran decides the task, whatever the
        // invoke did afterwards: Step Functions closes the task when the answer arrives.
        if let Some(answer) = early {
            return Ok(answer.into());
        }
        let ending = match invoked {
            Invoked::Answer(Ok(result)) => Ok(result),
            Invoked::Answer(Err(failure)) => Err(Ok(Outcome::Failed(failure))),
            Invoked::TaskTimeout(limit) => Err(Ok(Outcome::TimedOut(task_timeout(limit)))),
            Invoked::ExecutionDeadline => Err(Err(self.timed_out())),
        };
        let result = match ending {
            Ok(result) => result,
            Err(ending) => {
                // The task ends here, unless an answer got in first; closing the token first
                // means every caller told "delivered" is heard.
                if let Some(answer) = token.as_mut().and_then(|(open, r)| open.settle(r)) {
                    return Ok(answer.into());
                }
                return ending;
            }
        };
        let result = match task.integration {
            Integration::Resource => result,
            Integration::LambdaInvoke { .. } => invoke_response(result),
        };
        let Some((open, mut receiver)) = token else {
            return Ok(Outcome::Succeeded(result));
        };
        // An answer already queued came while the function ran (a function that answers for its
        // own token, then returns): the task closed before it was submitted.
        while let Ok(signal) = receiver.try_recv() {
            if let Signal::Answer(answer) = signal {
                return Ok(answer.into());
            }
        }
        self.record(
            Some(state_name),
            HistoryEventKind::TaskSubmitted { output: result },
        )?;
        tracing::debug!(
            execution = self.execution_name,
            state = state_name,
            "task submitted; waiting for its token"
        );
        self.park(&open, &mut receiver, limits, started).await
    }

    /// The invoker's call, bounded by the task's `TimeoutSeconds` and the execution deadline.
    async fn invoke(&self, call: Call, timeout: Option<u64>) -> Invoked {
        // The execution deadline is kept on the WaitClock; it also bounds the call (in tokio
        // time) so a hung handler cannot outlive the execution.
        let remaining = self.remaining();
        let answer = self.tasks.invoke(&call.target, call.payload);
        let bounded = async move {
            match timeout {
                None => Invoked::Answer(answer.await),
                Some(limit) => tokio::time::timeout(Duration::from_secs(limit), answer)
                    .await
                    .map_or(Invoked::TaskTimeout(limit), Invoked::Answer),
            }
        };
        match remaining {
            None => bounded.await,
            Some(seconds) => {
                // `max` also turns NaN into 0; a deadline too far to represent never fires.
                let left = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX);
                tokio::time::timeout(left, bounded)
                    .await
                    .unwrap_or(Invoked::ExecutionDeadline)
            }
        }
    }

    /// A callback task's wait for its answer, on the WaitClock. No transition is billed and no
    /// event recorded while it waits (heartbeats included).
    async fn park(
        &self,
        open: &OpenToken,
        receiver: &mut UnboundedReceiver<Signal>,
        limits: &Limits,
        started: OffsetDateTime,
    ) -> Result<Outcome, Halt> {
        let after =
            |from: OffsetDateTime, seconds: u64| from + time::Duration::seconds(seconds as i64);
        let task_deadline = limits.timeout.map(|s| (after(started, s), s));
        let mut beat_deadline = limits.heartbeat.map(|s| (after(self.clock.now(), s), s));
        loop {
            let now = self.clock.now();
            let expired = match (task_deadline, beat_deadline) {
                (Some((deadline, limit)), _) if now >= deadline => Some(Expired::Task(limit)),
                (_, Some((deadline, limit))) if now >= deadline => Some(Expired::Heartbeat(limit)),
                _ if self.remaining().is_some_and(|r| r <= 0.0) => Some(Expired::Execution),
                _ => None,
            };
            if let Some(expired) = expired {
                if let Some(answer) = open.settle(receiver) {
                    return Ok(answer.into());
                }
                return match expired {
                    Expired::Task(limit) => Ok(Outcome::TimedOut(task_timeout(limit))),
                    Expired::Heartbeat(limit) => {
                        Ok(Outcome::TimedOut(StateError::heartbeat_timeout(format!(
                            "Task sent no heartbeat for {limit} seconds"
                        ))))
                    }
                    Expired::Execution => Err(self.timed_out()),
                };
            }
            let next = [task_deadline, beat_deadline]
                .into_iter()
                .flatten()
                .map(|(deadline, _)| (deadline - now).as_seconds_f64())
                .chain(self.remaining())
                .reduce(f64::min);
            let sleep = async {
                match next {
                    Some(seconds) => self.clock.sleep(seconds).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(signal) = receiver.recv() => match signal {
                    Signal::Heartbeat => {
                        beat_deadline =
                            limits.heartbeat.map(|s| (after(self.clock.now(), s), s));
                    }
                    // Delivering it closed the token.
                    Signal::Answer(answer) => return Ok(answer.into()),
                },
                () = sleep => {}
            }
        }
    }
}
