//! The outcome of an execution ([`Execution`]) and its event history ([`HistoryEvent`]).
//!
//! Events mirror the Step Functions history closely enough that the 25,000-event quota is
//! reached after about as many loop iterations as in the cloud: a Lambda task records
//! scheduled/started/succeeded like `LambdaFunction*` events do, and a callback task
//! scheduled/started/submitted, then succeeded, failed or timed out, like Step Functions' `Task*`
//! events (heartbeats record nothing, as there). The two local-only kinds
//! (`RetryScheduled`, `CatchTaken`) explain what happened but do not count toward the quota,
//! because AWS has no such events.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Reached a Succeed state or a state with `End: true`.
    Succeeded,
    /// A Fail state, an unhandled error, or the history quota.
    Failed,
    /// The top-level `TimeoutSeconds` elapsed (on the [`crate::WaitClock`]).
    TimedOut,
    /// Stopped from outside (`StopExecution`; locally [`crate::StateMachine::execute_stoppable`]).
    Aborted,
}

/// The ASL state types this interpreter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StateType {
    /// `"Type": "Task"`.
    Task,
    /// `"Type": "Pass"`.
    Pass,
    /// `"Type": "Wait"`.
    Wait,
    /// `"Type": "Choice"`.
    Choice,
    /// `"Type": "Succeed"`.
    Succeed,
    /// `"Type": "Fail"`.
    Fail,
}

/// One entry in an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    /// 1-based position in the history.
    pub id: u64,
    /// When it happened, on the execution's [`crate::WaitClock`].
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The state it belongs to; `None` for execution-level events.
    pub state: Option<String>,
    /// What happened.
    pub kind: HistoryEventKind,
}

/// What a [`HistoryEvent`] records.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum HistoryEventKind {
    /// The execution began with this input.
    ExecutionStarted {
        /// Execution input.
        input: Value,
    },
    /// A state was entered with this (raw) input.
    StateEntered {
        /// The state's type.
        state_type: StateType,
        /// The state's raw input.
        input: Value,
    },
    /// A state finished with this output.
    StateExited {
        /// The state's output, after all output processing.
        output: Value,
    },
    /// A Task's resource is about to be invoked with these parameters.
    TaskScheduled {
        /// The resource, after substitutions.
        resource: String,
        /// The task input, after InputPath and Parameters.
        parameters: Value,
        /// The attempt's `TimeoutSeconds` (or what `TimeoutSecondsPath` selected), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
        /// The attempt's `HeartbeatSeconds` (or what `HeartbeatSecondsPath` selected), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        heartbeat_seconds: Option<u64>,
    },
    /// The invocation began.
    TaskStarted {
        /// The resource being invoked.
        resource: String,
    },
    /// A callback task's resource accepted the task (the function's Invoke returned); the task
    /// now waits for its token. No state transition is billed while it waits.
    TaskSubmitted {
        /// The resource's response (for `lambda:invoke.waitForTaskToken`, the Invoke response).
        output: Value,
    },
    /// The task returned a result: the invocation's, or for a callback task the output sent with
    /// `SendTaskSuccess`.
    TaskSucceeded {
        /// The raw task result, before ResultPath.
        output: Value,
    },
    /// The invocation failed (for a callback task, also: `SendTaskFailure`).
    TaskFailed {
        /// Error name.
        error: String,
        /// Error detail.
        cause: String,
    },
    /// An optimized-integration task (`arn:aws:states:::…`) ran past its `TimeoutSeconds`, or a
    /// callback task went `HeartbeatSeconds` without a heartbeat. (A task on a plain resource
    /// ARN that times out records [`HistoryEventKind::TaskFailed`] with `States.Timeout`.)
    TaskTimedOut {
        /// Always `States.Timeout`.
        error: String,
        /// Which limit passed.
        cause: String,
    },
    /// Local only: a Retrier matched and the task will run again after `delay_seconds`.
    RetryScheduled {
        /// The error that triggered the retry.
        error: String,
        /// Index of the Retrier in the state's `Retry` array.
        retrier: usize,
        /// Which retry this is for that Retrier (1-based).
        attempt: u32,
        /// The interval slept before retrying.
        delay_seconds: f64,
    },
    /// Local only: a Catcher matched and the execution continues at `next`.
    CatchTaken {
        /// The caught error.
        error: String,
        /// Index of the Catcher in the state's `Catch` array.
        catcher: usize,
        /// Where execution continues.
        next: String,
    },
    /// The execution succeeded.
    ExecutionSucceeded {
        /// Final output.
        output: Value,
    },
    /// The execution failed.
    ExecutionFailed {
        /// Error name, if any.
        error: Option<String>,
        /// Error detail, if any.
        cause: Option<String>,
    },
    /// The execution was stopped from outside (`StopExecution`).
    ExecutionAborted {
        /// The error the stopper gave, if any.
        error: Option<String>,
        /// The cause the stopper gave, if any.
        cause: Option<String>,
    },
    /// The execution's `TimeoutSeconds` elapsed.
    ExecutionTimedOut {
        /// Always `States.Timeout`.
        error: String,
        /// Detail.
        cause: String,
    },
}

impl HistoryEventKind {
    /// Whether Step Functions would record an equivalent event (and so whether it counts toward
    /// the history quota).
    pub fn counts_toward_quota(&self) -> bool {
        !matches!(self, Self::RetryScheduled { .. } | Self::CatchTaken { .. })
    }
}

/// The result of [`crate::StateMachine::execute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// The execution name given to `execute`.
    pub name: String,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Final output when it succeeded.
    pub output: Option<Value>,
    /// Error name when it failed or timed out (a Fail state may leave it unset).
    pub error: Option<String>,
    /// Error detail when it failed or timed out.
    pub cause: Option<String>,
    /// Everything that happened, in order.
    pub history: Vec<HistoryEvent>,
    /// State transitions as Step Functions Standard bills them: one per state entered, plus one
    /// per retry.
    pub transitions: u64,
    /// When it started, on the execution's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub start_time: OffsetDateTime,
    /// When it ended, on the execution's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub stop_time: OffsetDateTime,
}

impl Execution {
    /// The names of the states entered, in order (a state entered twice appears twice).
    pub fn states_entered(&self) -> Vec<&str> {
        self.history
            .iter()
            .filter(|e| matches!(e.kind, HistoryEventKind::StateEntered { .. }))
            .filter_map(|e| e.state.as_deref())
            .collect()
    }

    /// How many times the state named `state` was entered.
    pub fn times_entered(&self, state: &str) -> usize {
        self.states_entered()
            .iter()
            .filter(|s| **s == state)
            .count()
    }
}
