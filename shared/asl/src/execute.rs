//! The public [`StateMachine`] and the run loop of one execution: entering each state, running
//! the Pass, Choice, Succeed and Fail states inline, transition counting, the payload-size and
//! history quotas, the context object, and turning the outcome into an [`Execution`] with its
//! history. Task states (attempts, Retry, Catch) live in [`crate::task`], waiting and the
//! execution deadline in [`crate::wait`], path processing in [`crate::dataflow`].

use crate::clock::WaitClock;
use crate::dataflow::{fail_field, input_path, output_path, result_path};
use crate::definition::{self, Dynamic, Retrier, State, Transition};
use crate::error::{names, DefinitionError, StateError, TaskFailure};
use crate::history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind};
use crate::parse;
use crate::tokens::TaskTokens;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Invokes a Task state's resource. `resource` is the Task's `Resource` after
/// DefinitionSubstitutions; for the optimized Lambda integration (`arn:aws:states:::lambda:invoke`
/// and `….waitForTaskToken`) it is `Parameters.FunctionName`, and `input` is
/// `Parameters.Payload`.
#[async_trait::async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Runs the task with its effective input (after InputPath and Parameters) and returns its
    /// raw result (before ResultPath and OutputPath). A failure's `error` is what Retry and Catch
    /// match: for a Lambda function, its `errorType`.
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
    pub(crate) definition: definition::Definition,
    name: String,
    max_history_events: usize,
    pub(crate) task_tokens: TaskTokens,
}

impl StateMachine {
    /// Replaces `${Name}` placeholders (DefinitionSubstitutions semantics), then parses and
    /// validates the definition: any state type, field, Choice operator or intrinsic function
    /// this interpreter does not implement is rejected naming it; `StartAt` exists, every
    /// `Next`/`Default`/Catch `Next` target exists, exactly one of `End`/`Next` for non-terminal
    /// states, every state reachable.
    pub fn from_json(
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<Self, DefinitionError> {
        let text = parse::substitute(definition, substitutions)?;
        Ok(Self {
            definition: parse::parse(&text)?,
            name: "local".into(),
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
            task_tokens: TaskTokens::new(),
        })
    }

    /// The task tokens of this machine's callback tasks (`.waitForTaskToken`), shared by all its
    /// executions and clones: where `SendTaskSuccess`, `SendTaskFailure` and `SendTaskHeartbeat`
    /// reach a running execution.
    pub fn task_tokens(&self) -> &TaskTokens {
        &self.task_tokens
    }

    /// Shares `tokens` with other machines (task tokens are account-wide in Step Functions), in
    /// place of this machine's own.
    pub fn with_task_tokens(mut self, tokens: TaskTokens) -> Self {
        self.task_tokens = tokens;
        self
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

    /// The `Retry` list of Task state `state`, in order (`None`: no Task state of that name), so
    /// a simulation can wait out an error as this definition says.
    pub fn retriers(&self, state: &str) -> Option<&[Retrier]> {
        match self.definition.states.get(state)? {
            State::Task(task) => Some(&task.retry),
            _ => None,
        }
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

    /// Overrides the top-level `TimeoutSeconds` (`None`: no execution timeout), so a test can
    /// reach an execution timeout without waiting the deployed one out.
    pub fn with_timeout_seconds(mut self, seconds: Option<u64>) -> Self {
        self.definition.timeout_seconds = seconds;
        self
    }

    /// The top-level `TimeoutSeconds`, if any.
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.definition.timeout_seconds
    }

    /// All state names, sorted.
    pub fn state_names(&self) -> Vec<&str> {
        self.definition.states.keys().map(String::as_str).collect()
    }

    /// Every distinct resource a [`TaskInvoker`] must answer to, sorted: each Task's `Resource`
    /// (after substitutions), or for the Lambda integration its `FunctionName` when that is
    /// given literally (one taken from a path is known only when the state runs).
    pub fn task_resources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .definition
            .states
            .values()
            .filter_map(|s| match s {
                State::Task(t) => match t.integration {
                    definition::Integration::Resource => Some(t.resource.as_str()),
                    definition::Integration::LambdaInvoke { .. } => t
                        .parameters
                        .as_ref()
                        .and_then(|p| p.literal_field("FunctionName")),
                },
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
        self.execute_stoppable(name, input, tasks, clock, std::future::pending())
            .await
    }

    /// Like [`StateMachine::execute`], but `stop` resolving first aborts the execution, as
    /// `StopExecution` does: it ends `Aborted` with the stopper's error and cause, wherever it
    /// was. The task in flight is dropped (Step Functions lets a running Lambda finish and
    /// ignores its result; the handlers are safe either way, since every step is repeatable); a
    /// callback task's token closes, so a later `SendTask*` on it answers `TaskTimedOut`.
    pub async fn execute_stoppable(
        &self,
        name: &str,
        input: Value,
        tasks: &dyn TaskInvoker,
        clock: &dyn WaitClock,
        stop: impl std::future::Future<Output = StopRequest> + Send,
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
        let outcome = tokio::select! {
            biased;
            request = stop => Err(Halt::Aborted {
                error: request.error,
                cause: request.cause,
            }),
            outcome = run.drive() => outcome,
        };
        run.finish(outcome)
    }
}

/// What `StopExecution` passes: an optional error name and cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopRequest {
    /// The error name recorded with the abort.
    pub error: Option<String>,
    /// The cause recorded with the abort.
    pub cause: Option<String>,
}

/// Why an execution stopped early.
pub(crate) enum Halt {
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    TimedOut(String),
    Aborted {
        error: Option<String>,
        cause: Option<String>,
    },
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
pub(crate) enum Step {
    Next(String, Value),
    End(Value),
}

impl Step {
    pub(crate) fn after(transition: &Transition, output: Value) -> Self {
        match transition {
            Transition::Next(n) => Step::Next(n.clone(), output),
            Transition::End => Step::End(output),
        }
    }
}

/// Per-state facts the context object exposes (a callback task's `$$.Task.Token` is added per
/// attempt, in [`crate::task`]).
pub(crate) struct StateCtx<'a> {
    pub name: &'a str,
    pub entered: OffsetDateTime,
    pub retry_count: u64,
}

/// One execution in progress.
pub(crate) struct Run<'a> {
    pub machine: &'a StateMachine,
    pub execution_name: &'a str,
    pub input: &'a Value,
    pub tasks: &'a dyn TaskInvoker,
    pub clock: &'a dyn WaitClock,
    pub start: OffsetDateTime,
    pub deadline: Option<OffsetDateTime>,
    history: Vec<HistoryEvent>,
    counted: usize,
    pub transitions: u64,
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

    pub(crate) fn context(&self, state: &StateCtx<'_>) -> Value {
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
    pub(crate) fn record(
        &mut self,
        state: Option<&str>,
        kind: HistoryEventKind,
    ) -> Result<(), Halt> {
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

    pub(crate) fn check_size(
        &self,
        what: &str,
        state: &str,
        value: &Value,
    ) -> Result<(), StateError> {
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
            Err(Halt::Aborted { error, cause }) => (
                ExecutionStatus::Aborted,
                None,
                error.clone(),
                cause.clone(),
                HistoryEventKind::ExecutionAborted { error, cause },
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
