//! Running a loaded [`StateMachine`]: the state loop, input/output processing in spec order
//! (InputPath → Parameters → task → ResultSelector → ResultPath → OutputPath), Retry and Catch,
//! Task and execution timeouts, transition counting, the payload-size and history quotas, and
//! the history itself.

use crate::clock::WaitClock;
use crate::definition::{
    self, error_matches, Dynamic, Io, Seconds, State, TaskState, Transition, WaitFor,
};
use crate::error::{names, DefinitionError, StateError, TaskFailure};
use crate::history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind};
use crate::path::{kind_of, JsonPath};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Invokes a Task state's resource. `resource` is the Task's `Resource` after
/// DefinitionSubstitutions.
#[async_trait::async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Runs the task with its effective input (after InputPath and Parameters) and returns its
    /// raw result (before ResultSelector).
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure>;
}

/// Step Functions' execution-history quota; reaching it fails the execution, which also stops
/// a runaway loop locally.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 25_000;

/// Step Functions' quota on a state's input, output or task result: 256 KiB of UTF-8.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A validated state machine, ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct StateMachine {
    definition: definition::Definition,
    name: String,
    max_history_events: usize,
}

impl StateMachine {
    /// Replaces `${Name}` placeholders (DefinitionSubstitutions semantics), then parses and
    /// validates the definition: `StartAt` exists, every `Next`/`Default`/Catch `Next` target
    /// exists, exactly one of `End`/`Next` for non-terminal states, unknown state types and
    /// fields rejected, every state reachable.
    pub fn from_json(
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<Self, DefinitionError> {
        let text = definition::substitute(definition, substitutions)?;
        Ok(Self {
            definition: definition::parse(&text)?,
            name: "local".into(),
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
        })
    }

    /// Sets the state machine name used in the context object (`$$.StateMachine.Name`) and in
    /// `$$.Execution.Id`. Defaults to `local`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Overrides the history quota (default [`DEFAULT_MAX_HISTORY_EVENTS`]); useful to make
    /// loop-guard tests fast.
    pub fn with_max_history_events(mut self, max: usize) -> Self {
        self.max_history_events = max.max(2);
        self
    }

    /// The state machine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state execution begins at.
    pub fn start_at(&self) -> &str {
        &self.definition.start_at
    }

    /// The top-level `Comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.definition.comment.as_deref()
    }

    /// The top-level `TimeoutSeconds`, if any.
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.definition.timeout_seconds
    }

    /// All state names, sorted.
    pub fn state_names(&self) -> Vec<&str> {
        self.definition.states.keys().map(String::as_str).collect()
    }

    /// Every distinct Task `Resource` (after substitutions), sorted — what a [`TaskInvoker`]
    /// must answer to.
    pub fn task_resources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .definition
            .states
            .values()
            .filter_map(|s| match s {
                State::Task(t) => Some(t.resource.as_str()),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Runs one execution to completion. Never panics on bad input: every problem becomes a
    /// `Failed` (or `TimedOut`) [`Execution`] with an error and cause, as Step Functions reports.
    pub async fn execute(
        &self,
        name: &str,
        input: Value,
        tasks: &dyn TaskInvoker,
        clock: &dyn WaitClock,
    ) -> Execution {
        let start = clock.now();
        let mut run = Run {
            machine: self,
            execution_name: name,
            input: &input,
            tasks,
            clock,
            start,
            deadline: self
                .definition
                .timeout_seconds
                .map(|s| start + time::Duration::seconds(s as i64)),
            history: Vec::new(),
            counted: 0,
            transitions: 0,
        };
        let outcome = run.drive().await;
        run.finish(outcome)
    }
}

/// Why an execution stopped early.
enum Halt {
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    TimedOut(String),
    HistoryLimit,
}

impl From<StateError> for Halt {
    fn from(e: StateError) -> Self {
        Halt::Failed {
            error: Some(e.error),
            cause: Some(e.cause),
        }
    }
}

/// What a state decided.
enum Step {
    Next(String, Value),
    End(Value),
}

impl Step {
    fn after(transition: &Transition, output: Value) -> Self {
        match transition {
            Transition::Next(n) => Step::Next(n.clone(), output),
            Transition::End => Step::End(output),
        }
    }
}

/// Per-state facts the context object exposes.
struct StateCtx<'a> {
    name: &'a str,
    entered: OffsetDateTime,
    retry_count: u64,
}

/// One execution in progress.
struct Run<'a> {
    machine: &'a StateMachine,
    execution_name: &'a str,
    input: &'a Value,
    tasks: &'a dyn TaskInvoker,
    clock: &'a dyn WaitClock,
    start: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
    history: Vec<HistoryEvent>,
    counted: usize,
    transitions: u64,
}

fn timestamp(t: OffsetDateTime) -> String {
    // Step Functions prints context timestamps in UTC with millisecond precision.
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

fn payload_size(value: &Value) -> usize {
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0)
}

impl Run<'_> {
    fn execution_arn(&self) -> String {
        format!(
            "arn:aws:states:local:000000000000:execution:{}:{}",
            self.machine.name, self.execution_name
        )
    }

    fn context(&self, state: &StateCtx<'_>) -> Value {
        json!({
            "Execution": {
                "Id": self.execution_arn(),
                "Input": self.input,
                "Name": self.execution_name,
                "RoleArn": "arn:aws:iam::000000000000:role/local",
                "StartTime": timestamp(self.start),
            },
            "StateMachine": {
                "Id": format!("arn:aws:states:local:000000000000:stateMachine:{}", self.machine.name),
                "Name": self.machine.name,
            },
            "State": {
                "Name": state.name,
                "EnteredTime": timestamp(state.entered),
                "RetryCount": state.retry_count,
            },
        })
    }

    /// Appends an event. Events AWS would record count toward the quota; the last slot is kept
    /// for the terminal event, so a runaway loop ends with a readable `ExecutionFailed`.
    fn record(&mut self, state: Option<&str>, kind: HistoryEventKind) -> Result<(), Halt> {
        if kind.counts_toward_quota() {
            if self.counted + 1 >= self.machine.max_history_events {
                return Err(Halt::HistoryLimit);
            }
            self.counted += 1;
        }
        self.push(state, kind);
        Ok(())
    }

    fn push(&mut self, state: Option<&str>, kind: HistoryEventKind) {
        self.history.push(HistoryEvent {
            id: self.history.len() as u64 + 1,
            timestamp: self.clock.now(),
            state: state.map(str::to_string),
            kind,
        });
    }

    fn check_size(&self, what: &str, state: &str, value: &Value) -> Result<(), StateError> {
        let size = payload_size(value);
        if size > MAX_PAYLOAD_BYTES {
            return Err(StateError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The {what} of state '{state}' is {size} bytes, more than the \
                     {MAX_PAYLOAD_BYTES}-byte quota"
                ),
            ));
        }
        Ok(())
    }

    fn timed_out(&self) -> Halt {
        Halt::TimedOut(format!(
            "The execution exceeded its TimeoutSeconds of {} seconds",
            self.machine.definition.timeout_seconds.unwrap_or_default()
        ))
    }

    fn remaining(&self) -> Option<f64> {
        self.deadline
            .map(|d| (d - self.clock.now()).as_seconds_f64())
    }

    /// Sleeps on the execution's clock, but never past the execution deadline: reaching it times
    /// the execution out, as the Step Functions timer would fire mid-wait.
    async fn sleep(&self, seconds: f64) -> Result<(), Halt> {
        if let Some(remaining) = self.remaining() {
            if seconds >= remaining {
                if remaining > 0.0 {
                    self.clock.sleep(remaining).await;
                }
                return Err(self.timed_out());
            }
        }
        if seconds > 0.0 {
            self.clock.sleep(seconds).await;
        }
        Ok(())
    }

    async fn drive(&mut self) -> Result<Value, Halt> {
        self.record(
            None,
            HistoryEventKind::ExecutionStarted {
                input: self.input.clone(),
            },
        )?;
        self.check_size("input", "(execution)", self.input)?;
        let machine = self.machine;
        let definition = &machine.definition;
        let mut current: &str = &definition.start_at;
        let mut input = self.input.clone();
        loop {
            if self.remaining().is_some_and(|r| r <= 0.0) {
                return Err(self.timed_out());
            }
            let state = &definition.states[current];
            let entered = self.clock.now();
            tracing::debug!(
                execution = self.execution_name,
                state = current,
                state_type = ?state.state_type(),
                transition = self.transitions + 1,
                "entering state"
            );
            self.record(
                Some(current),
                HistoryEventKind::StateEntered {
                    state_type: state.state_type(),
                    input: input.clone(),
                },
            )?;
            // One billed transition per state entered.
            self.transitions += 1;
            let ctx = StateCtx {
                name: current,
                entered,
                retry_count: 0,
            };
            let step = match state {
                State::Task(task) => self.task(task, &input, ctx).await?,
                State::Pass(pass) => {
                    let context = self.context(&ctx);
                    let effective = input_path(&pass.io, &input, &context)?;
                    let effective = match &pass.parameters {
                        Some(t) => t.evaluate(&effective, &context)?,
                        None => effective,
                    };
                    let result = pass.result.clone().unwrap_or(effective);
                    let output = result_path(pass.result_path.as_ref(), &input, result)?;
                    Step::after(&pass.transition, output_path(&pass.io, output, &context)?)
                }
                State::Wait(wait) => {
                    let context = self.context(&ctx);
                    let effective = input_path(&wait.io, &input, &context)?;
                    let seconds = self.wait_seconds(&wait.wait, &effective, &context)?;
                    tracing::debug!(
                        execution = self.execution_name,
                        state = current,
                        seconds,
                        "waiting"
                    );
                    self.sleep(seconds).await?;
                    Step::after(
                        &wait.transition,
                        output_path(&wait.io, effective, &context)?,
                    )
                }
                State::Choice(choice) => {
                    let context = self.context(&ctx);
                    let effective = input_path(&choice.io, &input, &context)?;
                    let mut next = None;
                    for (rule, target) in &choice.choices {
                        if rule.evaluate(&effective, &context)? {
                            next = Some(target);
                            break;
                        }
                    }
                    let next = next.or(choice.default.as_ref()).ok_or_else(|| {
                        StateError::new(
                            names::NO_CHOICE_MATCHED,
                            format!(
                                "No Choice rule matched and there was no Default in state \
                                 '{current}'. Input: {effective}"
                            ),
                        )
                    })?;
                    Step::Next(next.clone(), output_path(&choice.io, effective, &context)?)
                }
                State::Succeed(io) => {
                    let context = self.context(&ctx);
                    let effective = input_path(io, &input, &context)?;
                    Step::End(output_path(io, effective, &context)?)
                }
                State::Fail(fail) => {
                    let context = self.context(&ctx);
                    let resolve = |d: &Option<Dynamic>, field: &str| -> Result<_, StateError> {
                        d.as_ref()
                            .map(|d| fail_field(d, field, &input, &context))
                            .transpose()
                    };
                    let error = resolve(&fail.error, "ErrorPath")?;
                    let cause = resolve(&fail.cause, "CausePath")?;
                    return Err(Halt::Failed { error, cause });
                }
            };
            let output = match &step {
                Step::Next(_, o) | Step::End(o) => o,
            };
            self.check_size("output", current, output)?;
            self.record(
                Some(current),
                HistoryEventKind::StateExited {
                    output: output.clone(),
                },
            )?;
            match step {
                Step::Next(next, output) => {
                    tracing::debug!(
                        execution = self.execution_name,
                        from = current,
                        to = next.as_str(),
                        "transition"
                    );
                    current = definition
                        .states
                        .get_key_value(next.as_str())
                        .map(|(k, _)| k.as_str())
                        .expect("targets validated at load");
                    input = output;
                }
                Step::End(output) => return Ok(output),
            }
        }
    }

    fn wait_seconds(
        &self,
        wait: &WaitFor,
        effective: &Value,
        context: &Value,
    ) -> Result<f64, StateError> {
        Ok(match wait {
            WaitFor::Seconds(s) => *s as f64,
            WaitFor::SecondsPath(path) => {
                let value = select(path, effective, context, "SecondsPath")?;
                value.as_u64().ok_or_else(|| {
                    StateError::runtime(format!(
                        "SecondsPath '{path}' must select a non-negative integer, got {value}"
                    ))
                })? as f64
            }
            WaitFor::Timestamp(t) => (*t - self.clock.now()).as_seconds_f64().max(0.0),
            WaitFor::TimestampPath(path) => {
                let value = select(path, effective, context, "TimestampPath")?;
                let t = value
                    .as_str()
                    .and_then(crate::choice::parse_timestamp)
                    .ok_or_else(|| {
                        StateError::runtime(format!(
                            "TimestampPath '{path}' must select an RFC 3339 timestamp, got {value}"
                        ))
                    })?;
                (t - self.clock.now()).as_seconds_f64().max(0.0)
            }
        })
    }

    /// A Task state: attempts, Retry, Catch.
    async fn task(
        &mut self,
        task: &TaskState,
        raw: &Value,
        mut ctx: StateCtx<'_>,
    ) -> Result<Step, Halt> {
        let state_name = ctx.name;
        // InputPath failures are States.Runtime, which no Retry or Catch handles.
        let effective = input_path(&task.io, raw, &self.context(&ctx))?;
        let mut retries_used = vec![0u64; task.retry.len()];
        loop {
            let err = match self.attempt(task, raw, &effective, &ctx).await? {
                Ok(output) => return Ok(Step::after(&task.transition, output)),
                Err(err) if err.is_terminal() => return Err(err.into()),
                Err(err) => err,
            };
            // Only the first Retrier whose ErrorEquals matches applies; once it is exhausted the
            // error goes to Catch, even if a later Retrier would also match.
            if let Some(index) = task
                .retry
                .iter()
                .position(|r| error_matches(&r.error_equals, &err.error))
            {
                let retrier = &task.retry[index];
                if retries_used[index] < retrier.max_attempts {
                    let base = retrier.base_delay(retries_used[index]);
                    let delay = if retrier.full_jitter {
                        rand::rng().random_range(0.0..=base)
                    } else {
                        base
                    };
                    retries_used[index] += 1;
                    ctx.retry_count += 1;
                    // Step Functions bills each retry as a state transition.
                    self.transitions += 1;
                    tracing::debug!(
                        execution = self.execution_name,
                        state = state_name,
                        error = err.error.as_str(),
                        attempt = retries_used[index],
                        delay_seconds = delay,
                        "retrying task"
                    );
                    self.record(
                        Some(state_name),
                        HistoryEventKind::RetryScheduled {
                            error: err.error.clone(),
                            retrier: index,
                            attempt: retries_used[index] as u32,
                            delay_seconds: delay,
                        },
                    )?;
                    self.sleep(delay).await?;
                    continue;
                }
            }
            if let Some((index, catcher)) = task
                .catch
                .iter()
                .enumerate()
                .find(|(_, c)| error_matches(&c.error_equals, &err.error))
            {
                tracing::debug!(
                    execution = self.execution_name,
                    state = state_name,
                    error = err.error.as_str(),
                    next = catcher.next.as_str(),
                    "caught error"
                );
                let error_output = json!({"Error": err.error, "Cause": err.cause});
                // The Catcher's ResultPath applies to the state's raw input; OutputPath does not
                // apply on this path.
                let output = result_path(catcher.result_path.as_ref(), raw, error_output)?;
                self.record(
                    Some(state_name),
                    HistoryEventKind::CatchTaken {
                        error: err.error,
                        catcher: index,
                        next: catcher.next.clone(),
                    },
                )?;
                return Ok(Step::Next(catcher.next.clone(), output));
            }
            return Err(err.into());
        }
    }

    /// One attempt of a Task: Parameters, invoke (with timeouts), ResultSelector, ResultPath,
    /// OutputPath. The outer `Result` stops the execution; the inner one is the state's error,
    /// subject to Retry and Catch.
    async fn attempt(
        &mut self,
        task: &TaskState,
        raw: &Value,
        effective: &Value,
        ctx: &StateCtx<'_>,
    ) -> Result<Result<Value, StateError>, Halt> {
        let state_name = ctx.name;
        let context = self.context(ctx);
        let parameters = match &task.parameters {
            Some(t) => match t.evaluate(effective, &context) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            },
            None => effective.clone(),
        };
        if let Err(e) = self.check_size("input", state_name, &parameters) {
            return Ok(Err(e));
        }
        let task_timeout = match &task.timeout {
            None => None,
            Some(Seconds::Fixed(s)) => Some(*s),
            Some(Seconds::Path(path)) => {
                match select(path, effective, &context, "TimeoutSecondsPath").and_then(|v| {
                    v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                        StateError::runtime(format!(
                            "TimeoutSecondsPath '{path}' must select a positive integer, got {v}"
                        ))
                    })
                }) {
                    Ok(s) => Some(s),
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        self.record(
            Some(state_name),
            HistoryEventKind::TaskScheduled {
                resource: task.resource.clone(),
                parameters: parameters.clone(),
            },
        )?;
        self.record(
            Some(state_name),
            HistoryEventKind::TaskStarted {
                resource: task.resource.clone(),
            },
        )?;
        tracing::debug!(
            execution = self.execution_name,
            state = state_name,
            resource = task.resource.as_str(),
            retry_count = ctx.retry_count,
            "invoking task"
        );
        // The Task's own timeout is wall-clock (the handler really runs); the execution deadline,
        // kept on the WaitClock, also bounds the call so a hung handler cannot outlive it.
        let exec_remaining = self.remaining().map(|r| r.max(0.0));
        let limit = match (task_timeout.map(|s| s as f64), exec_remaining) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        };
        let call = self.tasks.invoke(&task.resource, parameters);
        let outcome = match limit {
            None => Some(call.await),
            Some(seconds) => tokio::time::timeout(Duration::from_secs_f64(seconds), call)
                .await
                .ok(),
        };
        let result = match outcome {
            Some(Ok(result)) => result,
            Some(Err(failure)) => {
                self.record(
                    Some(state_name),
                    HistoryEventKind::TaskFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    },
                )?;
                return Ok(Err(StateError::new(failure.error, failure.cause)));
            }
            None => {
                let task_fired = match (task_timeout, exec_remaining) {
                    (Some(t), Some(e)) => (t as f64) <= e,
                    (Some(_), None) => true,
                    _ => false,
                };
                if !task_fired {
                    return Err(self.timed_out());
                }
                let cause = format!(
                    "Task '{state_name}' timed out after {} seconds",
                    task_timeout.unwrap_or_default()
                );
                self.record(
                    Some(state_name),
                    HistoryEventKind::TaskTimedOut {
                        error: names::TIMEOUT.into(),
                        cause: cause.clone(),
                    },
                )?;
                return Ok(Err(StateError::new(names::TIMEOUT, cause)));
            }
        };
        self.record(
            Some(state_name),
            HistoryEventKind::TaskSucceeded {
                output: result.clone(),
            },
        )?;
        Ok(self.process_result(task, state_name, raw, result, &context))
    }

    fn process_result(
        &self,
        task: &TaskState,
        state_name: &str,
        raw: &Value,
        result: Value,
        context: &Value,
    ) -> Result<Value, StateError> {
        self.check_size("task result", state_name, &result)?;
        let selected = match &task.result_selector {
            Some(t) => t.evaluate(&result, context)?,
            None => result,
        };
        let output = result_path(task.result_path.as_ref(), raw, selected)?;
        output_path(&task.io, output, context)
    }

    fn finish(self, outcome: Result<Value, Halt>) -> Execution {
        let mut run = self;
        let (status, output, error, cause, kind) = match outcome {
            Ok(output) => (
                ExecutionStatus::Succeeded,
                Some(output.clone()),
                None,
                None,
                HistoryEventKind::ExecutionSucceeded { output },
            ),
            Err(Halt::Failed { error, cause }) => (
                ExecutionStatus::Failed,
                None,
                error.clone(),
                cause.clone(),
                HistoryEventKind::ExecutionFailed { error, cause },
            ),
            Err(Halt::TimedOut(cause)) => (
                ExecutionStatus::TimedOut,
                None,
                Some(names::TIMEOUT.to_string()),
                Some(cause.clone()),
                HistoryEventKind::ExecutionTimedOut {
                    error: names::TIMEOUT.into(),
                    cause,
                },
            ),
            Err(Halt::HistoryLimit) => {
                let error = names::HISTORY_LIMIT_EXCEEDED.to_string();
                let cause = format!(
                    "The execution history reached {} events (the Step Functions quota is \
                     {DEFAULT_MAX_HISTORY_EVENTS}); the state machine is probably looping \
                     without end",
                    run.machine.max_history_events
                );
                (
                    ExecutionStatus::Failed,
                    None,
                    Some(error.clone()),
                    Some(cause.clone()),
                    HistoryEventKind::ExecutionFailed {
                        error: Some(error),
                        cause: Some(cause),
                    },
                )
            }
        };
        tracing::debug!(
            execution = run.execution_name,
            status = ?status,
            error = error.as_deref(),
            transitions = run.transitions,
            "execution finished"
        );
        // The terminal event always fits: `record` kept a slot for it.
        run.push(None, kind);
        Execution {
            name: run.execution_name.to_string(),
            status,
            output,
            error,
            cause,
            transitions: run.transitions,
            start_time: run.start,
            stop_time: run.clock.now(),
            history: run.history,
        }
    }
}

/// Resolves a path that must select something, or raises States.Runtime.
fn select<'v>(
    path: &JsonPath,
    input: &'v Value,
    context: &'v Value,
    field: &str,
) -> Result<&'v Value, StateError> {
    path.select(input, context).ok_or_else(|| {
        StateError::runtime(format!(
            "Invalid path '{path}' in {field}: No results for path in the input '{input}'"
        ))
    })
}

/// InputPath: `null` gives `{}`; a path that selects nothing is States.Runtime.
fn input_path(io: &Io, raw: &Value, context: &Value) -> Result<Value, StateError> {
    match &io.input_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) => select(path, raw, context, "InputPath").cloned(),
    }
}

/// OutputPath: `null` gives `{}`; a path that selects nothing is States.Runtime.
fn output_path(io: &Io, output: Value, context: &Value) -> Result<Value, StateError> {
    match &io.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) if path.is_root() => Ok(output),
        Some(path) => select(path, &output, context, "OutputPath").cloned(),
    }
}

/// ResultPath: `null` keeps the raw input; otherwise the result is written into it.
fn result_path(path: Option<&JsonPath>, raw: &Value, result: Value) -> Result<Value, StateError> {
    match path {
        None => Ok(raw.clone()),
        Some(path) => path
            .write(raw, result)
            .map_err(|cause| StateError::new(names::RESULT_PATH_MATCH_FAILURE, cause)),
    }
}

/// A Fail state's Error/Cause value. Paths and intrinsics must produce a string.
fn fail_field(
    dynamic: &Dynamic,
    field: &str,
    input: &Value,
    context: &Value,
) -> Result<String, StateError> {
    let value = match dynamic {
        Dynamic::Literal(s) => return Ok(s.clone()),
        Dynamic::Path(path) => select(path, input, context, field)?.clone(),
        Dynamic::Call(call) => call.evaluate(input, context)?,
    };
    match value {
        Value::String(s) => Ok(s),
        other => Err(StateError::runtime(format!(
            "{field} must resolve to a string, got {}",
            kind_of(&other)
        ))),
    }
}
