//! Shared test helpers: a scriptable fake invoker, a fixed-start virtual clock, a clock on tokio's
//! (pausable) time, loaders, and a history digest.

use runbridge_asl::{
    Execution, HistoryEventKind, InstantClock, StateMachine, TaskFailure, TaskInvoker, WaitClock,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use time::macros::datetime;
use time::OffsetDateTime;

/// The virtual clock's start in every test.
pub const START: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

/// A clock reading [`START`].
pub fn clock() -> InstantClock {
    InstantClock::new(START)
}

/// Loads a definition given as a JSON value, with no substitutions.
pub fn machine(definition: Value) -> StateMachine {
    StateMachine::from_json(&definition.to_string(), &HashMap::new())
        .unwrap_or_else(|e| panic!("definition should load: {e}"))
}

type Handler = dyn Fn(&str, &Value, usize) -> Result<Value, TaskFailure> + Send + Sync;

/// An invoker driven by a closure `(resource, input, call_index) -> result` that records every
/// call.
pub struct FakeInvoker {
    handler: Box<Handler>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl FakeInvoker {
    pub fn new(
        handler: impl Fn(&str, &Value, usize) -> Result<Value, TaskFailure> + Send + Sync + 'static,
    ) -> Self {
        Self {
            handler: Box::new(handler),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// Inputs of the calls made to `resource`.
    pub fn inputs_to(&self, resource: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(r, _)| r == resource)
            .map(|(_, input)| input)
            .collect()
    }
}

#[async_trait::async_trait]
impl TaskInvoker for FakeInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((resource.to_string(), input.clone()));
            calls.iter().filter(|(r, _)| r == resource).count() - 1
        };
        (self.handler)(resource, &input, index)
    }
}

/// A WaitClock on tokio's clock, reading [`START`] when created: under
/// `#[tokio::test(start_paused = true)]` time passes only when every task waits, so a parked
/// execution and the test that wakes it interleave deterministically.
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[async_trait::async_trait]
impl WaitClock for TokioClock {
    async fn sleep(&self, seconds: f64) {
        if seconds > 0.0 && seconds.is_finite() {
            tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
        }
    }

    fn now(&self) -> OffsetDateTime {
        START + self.origin.elapsed()
    }
}

/// The kinds of the events recorded for `state`, in order (`"TaskScheduled"`, …).
pub fn task_events(exec: &Execution, state: &str) -> Vec<&'static str> {
    exec.history
        .iter()
        .filter(|e| e.state.as_deref() == Some(state))
        .map(|e| match &e.kind {
            HistoryEventKind::StateEntered { .. } => "StateEntered",
            HistoryEventKind::StateExited { .. } => "StateExited",
            HistoryEventKind::TaskScheduled { .. } => "TaskScheduled",
            HistoryEventKind::TaskStarted { .. } => "TaskStarted",
            HistoryEventKind::TaskSubmitted { .. } => "TaskSubmitted",
            HistoryEventKind::TaskSucceeded { .. } => "TaskSucceeded",
            HistoryEventKind::TaskFailed { .. } => "TaskFailed",
            HistoryEventKind::TaskTimedOut { .. } => "TaskTimedOut",
            HistoryEventKind::RetryScheduled { .. } => "RetryScheduled",
            HistoryEventKind::CatchTaken { .. } => "CatchTaken",
            other => panic!("unexpected state event {other:?}"),
        })
        .collect()
}
