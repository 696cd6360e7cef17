//! A local interpreter of Amazon States Language (ASL).
//!
//! The runbridge CLI runs the *same* state machine JSON that is deployed to AWS Step Functions,
//! calling in-process handlers instead of Lambdas, so local and cloud behaviour cannot drift.
//! Load a definition with [`StateMachine::from_json`] (which applies `DefinitionSubstitutions`
//! and validates everything it can), then [`StateMachine::execute`] it with a [`TaskInvoker`]
//! (who answers Task states) and a [`WaitClock`] (how Wait states and retry intervals pass time:
//! [`RealClock`] or the virtual [`InstantClock`]).
//!
//! Supported: Task, Pass, Wait, Choice, Succeed and Fail states; InputPath, Parameters (paths,
//! the `$$` context object and intrinsic functions), ResultSelector, ResultPath and OutputPath;
//! Retry (with backoff, MaxDelaySeconds and jitter) and Catch; Task and execution timeouts;
//! billing-style transition counts; the 25,000-event history quota and the 256 KiB payload quota.
//! Rejected at load time with a [`DefinitionError::Unsupported`]: Parallel and Map states,
//! JSONata, variables (`Assign`) and `States.Hash`.
//!
//! Modules: `error` (definition/task errors and reserved error names), `path` (the JSONPath
//! subset), `intrinsic` (intrinsic functions), `template` (payload templates), `choice` (Choice
//! rules), `definition` (loading and validation), `execute` (the interpreter), `history`
//! (execution results and events), `clock` (time).
#![deny(missing_docs)]

mod choice;
mod clock;
mod definition;
mod error;
mod execute;
mod history;
mod intrinsic;
mod path;
mod template;

pub use clock::{InstantClock, RealClock, WaitClock};
pub use error::{names, DefinitionError, TaskFailure};
pub use execute::{StateMachine, TaskInvoker, DEFAULT_MAX_HISTORY_EVENTS, MAX_PAYLOAD_BYTES};
pub use history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind, StateType};
