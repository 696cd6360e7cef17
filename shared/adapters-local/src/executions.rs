//! [`LocalExecutions`]: Step Functions on a laptop. Each execution runs the deployed state
//! machine definition ([`STATE_MACHINE_ASL`]) with the ASL interpreter; where the definition
//! names a Lambda, [`StepTasks`] calls the same handler through the same step dispatcher
//! (`runbridge_handlers::steps`) the Lambda adapter uses. An execution that is stopped
//! ([`LocalExecutions::stop`], like `StopExecution`) or times out sends the status-change event
//! Step Functions sends EventBridge to [`StatusChanges`], which the local deployment routes to
//! the same handler the deployed rule invokes. A task parked on a task token (`.waitForTaskToken`)
//! is woken through [`Executions::send_task_success`]/[`Executions::send_task_failure`], which
//! reach it through the machine's [`TaskTokens`], as `SendTaskSuccess`/`SendTaskFailure` do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runbridge_asl::{
    Execution, ExecutionStatus, SendTaskError, StateMachine, StopRequest, TaskFailure, TaskInvoker,
    TaskTokens, WaitClock,
};
use runbridge_core::{cut_text, OffsetDateTime, MAX_REASON_BYTES};
use runbridge_handlers::collect::Collector;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{Callbacks, Executions, StartOutcome, Wake};
use runbridge_handlers::steps::{collect_step, poll_step};
use runbridge_handlers::stopped::{ExecutionStopped, StopStatus};
use runbridge_handlers::{Clock, HandlerError};

/// The state machine Step Functions runs, compiled in from `infra/`.
pub const STATE_MACHINE_ASL: &str = include_str!("../../../infra/statemachine.asl.json");

/// Resource ARN the local runner substitutes for `${PollFunctionArn}`.
pub const LOCAL_POLL_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-poll";
/// Resource ARN the local runner substitutes for `${CollectFunctionArn}`.
pub const LOCAL_COLLECT_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-collect";

/// The ARN the local state machine goes by in status-change events (the interpreter names its
/// executions `arn:aws:states:local:000000000000:execution:local:<name>`).
pub const LOCAL_STATE_MACHINE_ARN: &str = "arn:aws:states:local:000000000000:stateMachine:local";

/// Receives the "Step Functions Execution Status Change" event of a local execution that ended
/// ABORTED, TIMED_OUT or FAILED: what the deployed EventBridge rule passes to the trigger
/// function.
#[async_trait]
pub trait StatusChanges: Send + Sync {
    /// Delivers one event (retrying and dead-lettering as Lambda's asynchronous invocation does).
    async fn deliver(&self, event: serde_json::Value);
}

/// Wait states that pass `speed` times faster than real time, reading the handlers' clock.
pub struct ScaledWaitClock {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// The clock the handlers use.
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl WaitClock for ScaledWaitClock {
    async fn sleep(&self, seconds: f64) {
        // A tiny speed (`--speed 1e-20`) makes the real wait too long for a `Duration`: it then
        // waits for ever instead of panicking; `max` also turns NaN into 0.
        let real = std::time::Duration::try_from_secs_f64((seconds / self.speed).max(0.0))
            .unwrap_or(std::time::Duration::MAX);
        tokio::time::sleep(real).await;
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// Invokes the poll and collect handlers where the definition names their Lambda ARNs, through
/// the same step dispatcher the Lambdas use.
pub struct StepTasks {
    /// The poll handler.
    pub poller: Arc<Poller>,
    /// The collect handler.
    pub collector: Arc<Collector>,
}

/// As the Lambda adapter reports it: the cause cut to [`MAX_REASON_BYTES`] (it lands in the
/// state's input through `Catch` … `ResultPath`).
fn task_error(e: HandlerError) -> TaskFailure {
    TaskFailure {
        error: e.error_type().to_owned(),
        cause: cut_text(&e.to_string(), MAX_REASON_BYTES),
    }
}

#[async_trait]
impl TaskInvoker for StepTasks {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        match resource {
            LOCAL_POLL_ARN => poll_step(&self.poller, input).await.map_err(task_error),
            LOCAL_COLLECT_ARN => collect_step(&self.collector, input)
                .await
                .map_err(task_error),
            other => Err(TaskFailure {
                error: "States.TaskFailed".into(),
                cause: format!("no local handler for {other}"),
            }),
        }
    }
}

struct Started {
    input: serde_json::Value,
    task: Option<tokio::task::JoinHandle<Execution>>,
    result: Option<Execution>,
    /// Stops the execution (`StopExecution`); gone once used.
    stop: Option<tokio::sync::oneshot::Sender<StopRequest>>,
}

/// Step Functions, locally: each execution runs [`STATE_MACHINE_ASL`] in a task. Starting a name
/// twice with the same input is a no-op, with another input an error, as in Step Functions.
pub struct LocalExecutions {
    machine: Arc<StateMachine>,
    tasks: Arc<dyn TaskInvoker>,
    clock: Arc<dyn WaitClock>,
    started: Mutex<HashMap<String, Started>>,
    status_changes: Option<Arc<dyn StatusChanges>>,
}

impl LocalExecutions {
    /// Executions of the deployed definition, invoking `tasks` (normally [`StepTasks`]),
    /// waiting on `clock`.
    pub fn new(
        tasks: Arc<dyn TaskInvoker>,
        clock: Arc<dyn WaitClock>,
    ) -> Result<Self, HandlerError> {
        let subs = HashMap::from([
            ("PollFunctionArn".to_owned(), LOCAL_POLL_ARN.to_owned()),
            (
                "CollectFunctionArn".to_owned(),
                LOCAL_COLLECT_ARN.to_owned(),
            ),
        ]);
        let machine = StateMachine::from_json(STATE_MACHINE_ASL, &subs).map_err(|e| {
            HandlerError::port(
                "executions",
                format!("state machine definition: {e}"),
                false,
            )
        })?;
        Ok(Self::from_machine(machine, tasks, clock))
    }

    /// Executions of another definition (tests of the machinery with a tiny state machine).
    pub fn from_machine(
        machine: StateMachine,
        tasks: Arc<dyn TaskInvoker>,
        clock: Arc<dyn WaitClock>,
    ) -> Self {
        Self {
            machine: Arc::new(machine),
            tasks,
            clock,
            started: Mutex::new(HashMap::new()),
            status_changes: None,
        }
    }

    /// The task tokens of the executions' callback tasks (`SendTaskHeartbeat`, which tasks
    /// waiting with `HeartbeatSeconds` need, is [`TaskTokens::send_task_heartbeat`]).
    pub fn task_tokens(&self) -> &TaskTokens {
        self.machine.task_tokens()
    }

    /// The same executions, their callback tasks answering through `tokens` (shared with the
    /// [`LocalCallbacks`] the handlers wake waiters with).
    pub fn with_task_tokens(mut self, tokens: TaskTokens) -> Self {
        self.machine = Arc::new((*self.machine).clone().with_task_tokens(tokens));
        self
    }

    /// Callbacks that wake these executions' parked tasks.
    pub fn callbacks(&self) -> LocalCallbacks {
        LocalCallbacks::new(self.task_tokens().clone())
    }

    /// Sends the status change of every execution that ends ABORTED, TIMED_OUT or FAILED to `to`, as the
    /// deployed EventBridge rule does.
    pub fn with_status_changes(mut self, to: Arc<dyn StatusChanges>) -> Self {
        self.status_changes = Some(to);
        self
    }

    /// Overrides the definition's execution `TimeoutSeconds` (tests reaching a timeout without
    /// waiting the deployed one out).
    pub fn with_timeout_seconds(mut self, seconds: Option<u64>) -> Self {
        self.machine = Arc::new((*self.machine).clone().with_timeout_seconds(seconds));
        self
    }

    /// Stops execution `name`, as `StopExecution` does: it ends ABORTED with `error` and `cause`,
    /// and its status change is delivered. `Ok(false)` when it had already ended (nothing to
    /// stop); an error when no such execution was started.
    pub fn stop(
        &self,
        name: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<bool, HandlerError> {
        let mut started = self.started.lock().expect("executions lock");
        let entry = started.get_mut(name).ok_or_else(|| {
            HandlerError::port(
                "executions",
                format!("ExecutionDoesNotExist: {name}"),
                false,
            )
        })?;
        if entry.result.is_some() {
            return Ok(false);
        }
        let Some(stop) = entry.stop.take() else {
            return Ok(false);
        };
        // The receiver is gone when the execution already ended: nothing stopped.
        Ok(stop
            .send(StopRequest {
                error: error.map(str::to_owned),
                cause: cause.map(str::to_owned),
            })
            .is_ok())
    }

    /// Names of all started executions.
    pub fn names(&self) -> Vec<String> {
        self.started
            .lock()
            .expect("executions lock")
            .keys()
            .cloned()
            .collect()
    }

    /// The input execution `name` was started with.
    pub fn input(&self, name: &str) -> Option<serde_json::Value> {
        self.started
            .lock()
            .expect("executions lock")
            .get(name)
            .map(|e| e.input.clone())
    }

    /// Waits for execution `name` to end and returns it (None if never started).
    pub async fn wait(&self, name: &str) -> Option<Execution> {
        let task = {
            let mut started = self.started.lock().expect("executions lock");
            let entry = started.get_mut(name)?;
            if let Some(done) = &entry.result {
                return Some(done.clone());
            }
            entry.task.take()
        };
        let execution = match task {
            Some(t) => t.await.expect("execution task does not panic"),
            // Another caller is awaiting it; poll until it stores the result.
            None => loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if let Some(done) = self
                    .started
                    .lock()
                    .expect("executions lock")
                    .get(name)
                    .and_then(|e| e.result.clone())
                {
                    break done;
                }
            },
        };
        self.started
            .lock()
            .expect("executions lock")
            .get_mut(name)?
            .result = Some(execution.clone());
        Some(execution)
    }
}

/// Any of Step Functions' answers for a token that no task waits on means the news was not
/// delivered.
fn wake(sent: Result<(), SendTaskError>) -> Wake {
    match sent {
        Ok(()) => Wake::Delivered,
        Err(e) => {
            tracing::debug!(code = e.code(), "task token no longer waits");
            Wake::Gone
        }
    }
}

#[async_trait]
impl Executions for LocalExecutions {
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError> {
        let mut started = self.started.lock().expect("executions lock");
        if let Some(existing) = started.get(name) {
            return if existing.input == input {
                Ok(StartOutcome::AlreadyStarted)
            } else {
                Err(HandlerError::port(
                    "executions",
                    format!("ExecutionAlreadyExists: {name} with a different input"),
                    false,
                ))
            };
        }
        let (machine, tasks, clock) =
            (self.machine.clone(), self.tasks.clone(), self.clock.clone());
        let status_changes = self.status_changes.clone();
        let (name_owned, run_input) = (name.to_owned(), input.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<StopRequest>();
        let task = tokio::spawn(async move {
            // A dropped sender (the execution was never stopped) must not read as a stop.
            let stop = async move {
                match stop_rx.await {
                    Ok(request) => request,
                    Err(_) => std::future::pending().await,
                }
            };
            let execution = machine
                .execute_stoppable(&name_owned, run_input, tasks.as_ref(), clock.as_ref(), stop)
                .await;
            let status = match execution.status {
                ExecutionStatus::Aborted => Some(StopStatus::Aborted),
                ExecutionStatus::TimedOut => Some(StopStatus::TimedOut),
                ExecutionStatus::Failed => Some(StopStatus::Failed),
                _ => None,
            };
            // Delivered before the execution reads as ended, so whoever waits for it sees what
            // the stop handler did (deployed, the event arrives a moment after the stop).
            if let (Some(status), Some(to)) = (status, status_changes) {
                let stopped = ExecutionStopped {
                    name: name_owned.clone(),
                    status,
                    execution_arn: None,
                    error: execution.error.clone(),
                    cause: execution.cause.clone(),
                };
                to.deliver(stopped.to_event(LOCAL_STATE_MACHINE_ARN, clock.now()))
                    .await;
            }
            execution
        });
        started.insert(
            name.to_owned(),
            Started {
                input,
                task: Some(task),
                result: None,
                stop: Some(stop_tx),
            },
        );
        Ok(StartOutcome::Started)
    }
}

/// Wakes the local executions parked on a task token: the twin of `SendTaskSuccess` and
/// `SendTaskFailure`. Holds the interpreter's [`TaskTokens`], so it can be made before the
/// executions it wakes (the poll and collect handlers, which the executions invoke, hold one).
#[derive(Clone, Default)]
pub struct LocalCallbacks {
    tokens: TaskTokens,
}

impl LocalCallbacks {
    /// Callbacks over `tokens` (shared with [`LocalExecutions::with_task_tokens`]).
    pub fn new(tokens: TaskTokens) -> Self {
        Self { tokens }
    }

    fn task_tokens(&self) -> &TaskTokens {
        &self.tokens
    }
}

#[async_trait]
impl Callbacks for LocalCallbacks {
    async fn send_task_success(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, HandlerError> {
        Ok(wake(
            self.task_tokens().send_task_success(task_token, output),
        ))
    }

    async fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, HandlerError> {
        Ok(wake(
            self.task_tokens()
                .send_task_failure(task_token, error, cause),
        ))
    }
}
