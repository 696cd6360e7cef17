//! A local interpreter of Amazon States Language (ASL).
//!
//! The runbridge CLI runs the *same* state machine JSON that is deployed to AWS Step Functions,
//! calling in-process handlers instead of Lambdas, so local and cloud behaviour cannot drift.
//! Load a definition with [`StateMachine::from_json`] (which applies `DefinitionSubstitutions`
//! and validates everything it can), then [`StateMachine::execute`] it with a [`TaskInvoker`]
//! (who answers Task states) and a [`WaitClock`] (how Wait states and retry intervals pass time:
//! [`RealClock`] or the virtual [`InstantClock`]).
//!
//! It implements what the deployed definition (`infra/statemachine.asl.json`) uses and little
//! more: Task, Pass, Wait, Choice (`Variable` + `BooleanEquals` rules), Succeed and Fail states;
//! InputPath, Parameters (paths and the `$$` context object), ResultPath and OutputPath; Retry
//! (with backoff and jitter) and Catch; Task resources that are plain ARNs (the invoker gets the
//! resource and the effective input) or the optimized Lambda integration
//! `arn:aws:states:::lambda:invoke` (the invoker gets `Parameters.FunctionName` and
//! `Parameters.Payload`; the result is the Invoke response, `{"Payload": …, "StatusCode": 200,
//! …}`) and its callback form `….waitForTaskToken` (the task gets a token, `$$.Task.Token`,
//! and waits after the invoke until [`TaskTokens`] delivers `SendTaskSuccess` or
//! `SendTaskFailure` for it); Task `TimeoutSeconds`/`TimeoutSecondsPath` and, on callback tasks,
//! `HeartbeatSeconds`/`HeartbeatSecondsPath` (`States.Timeout`, which `States.HeartbeatTimeout`
//! also matches for a missed heartbeat); the execution timeout; stopping an execution from
//! outside (`StopExecution`: [`StateMachine::execute_stoppable`], status `Aborted`);
//! billing-style transition counts (none while a callback task waits);
//! the 25,000-event history quota and the 256 KiB payload quota. The parse is strict: anything
//! else (Parallel and Map states, intrinsic functions, other Choice operators and And/Or/Not,
//! JSONata, variables, ResultSelector, other service integrations and Lambda Invoke parameters,
//! heartbeats on tasks that do not wait for a token, Wait timestamps, or a
//! misspelt field) is rejected at load time with an error naming it, and a test parses every
//! `infra/*.asl.json` so the definition cannot outgrow the interpreter unnoticed.
//!
//! Modules: `error` (definition/task errors and reserved error names), `path` (the JSONPath
//! subset), `template` (Parameters templates), `choice` (Choice rules), `definition` (the typed
//! model), `parse` (substitutions and the strict parse), `validate` (checks across states),
//! `execute` (the public machine and the run loop), `task` (Task attempts, Retry and Catch),
//! `callback` (how an attempt calls its resource: the Lambda integration's request and
//! response, and a callback task's wait for its token), `tokens` (task tokens and the
//! `SendTask*` API), `wait` (Wait states and the execution deadline), `dataflow`
//! (InputPath/ResultPath/OutputPath), `history` (execution results and events), `clock` (time).
#![deny(missing_docs)]

mod callback;
mod choice;
mod clock;
mod dataflow;
mod definition;
mod error;
mod execute;
mod history;
mod parse;
mod path;
mod task;
mod template;
mod tokens;
mod validate;
mod wait;

pub use clock::{InstantClock, RealClock, WaitClock};
pub use definition::Retrier;
pub use error::{names, DefinitionError, TaskFailure};
pub use execute::{
    StateMachine, StopRequest, TaskInvoker, DEFAULT_MAX_HISTORY_EVENTS, MAX_PAYLOAD_BYTES,
};
pub use history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind, StateType};
pub use tokens::{SendTaskError, TaskTokens};
