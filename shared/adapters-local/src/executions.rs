//! [`LocalExecutions`]: Step Functions on a laptop. Each execution runs the deployed state
//! machine definition ([`STATE_MACHINE_ASL`]) with the ASL interpreter; where the definition
//! names a Lambda, [`StepTasks`] calls the same handler through the same step dispatcher
//! (`runbridge_handlers::steps`) the Lambda adapter uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runbridge_asl::{Execution, StateMachine, TaskFailure, TaskInvoker, WaitClock};
use runbridge_core::{cut_text, OffsetDateTime, MAX_REASON_BYTES};
use runbridge_handlers::collect::Collector;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{Executions, StartOutcome};
use runbridge_handlers::steps::{collect_step, poll_step};
use runbridge_handlers::{Clock, HandlerError};

/// The state machine Step Functions runs, compiled in from `infra/`.
pub const STATE_MACHINE_ASL: &str = include_str!("../../../infra/statemachine.asl.json");

/// Resource ARN the local runner substitutes for `${PollFunctionArn}`.
pub const LOCAL_POLL_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-poll";
/// Resource ARN the local runner substitutes for `${CollectFunctionArn}`.
pub const LOCAL_COLLECT_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-collect";

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
        tokio::time::sleep(std::time::Duration::from_secs_f64(
            (seconds / self.speed).max(0.0),
        ))
        .await;
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
}

/// Step Functions, locally: each execution runs [`STATE_MACHINE_ASL`] in a task. Starting a name
/// twice with the same input is a no-op, with another input an error, as in Step Functions.
pub struct LocalExecutions {
    machine: Arc<StateMachine>,
    tasks: Arc<dyn TaskInvoker>,
    clock: Arc<dyn WaitClock>,
    started: Mutex<HashMap<String, Started>>,
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
        Ok(Self {
            machine: Arc::new(machine),
            tasks,
            clock,
            started: Mutex::new(HashMap::new()),
        })
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
        let (name_owned, run_input) = (name.to_owned(), input.clone());
        let task = tokio::spawn(async move {
            machine
                .execute(&name_owned, run_input, tasks.as_ref(), clock.as_ref())
                .await
        });
        started.insert(
            name.to_owned(),
            Started {
                input,
                task: Some(task),
                result: None,
            },
        );
        Ok(StartOutcome::Started)
    }
}
