//! Task tokens of callback tasks (`.waitForTaskToken`): [`TaskTokens`] issues one per attempt of
//! such a task, and is where `SendTaskSuccess`, `SendTaskFailure` and `SendTaskHeartbeat` arrive
//! from outside the execution. A token is open from the moment its attempt starts (so the invoked
//! function may answer for its own token before it returns) until the attempt ends, however it
//! ends: answered, timed out, or dropped with the execution (stopped, timed out). Closed tokens
//! stay known, so a late caller learns the task is gone (`TaskTimedOut`) rather than that it never
//! existed (`TaskDoesNotExist`).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;
use tokio::sync::mpsc;

/// What every token this interpreter issues starts with; anything else is malformed
/// (`InvalidToken`).
const TOKEN_PREFIX: &str = "local-task-token-";
/// Hex digits of randomness after the prefix.
const TOKEN_RANDOM_DIGITS: usize = 64;

/// Why a `SendTask*` call reached no waiting task. Step Functions answers these three errors;
/// any of them means the task no longer waits (or never did), so the caller's news is not
/// delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendTaskError {
    /// The token is not one Step Functions could have issued.
    #[error("InvalidToken: the provided token is not valid")]
    InvalidToken,
    /// The token is well formed but no task has it.
    #[error("TaskDoesNotExist: no task has this token")]
    TaskDoesNotExist,
    /// The task with this token has already been closed: answered, timed out, or its execution
    /// ended.
    #[error("TaskTimedOut: the task with this token has already been closed")]
    TaskTimedOut,
}

impl SendTaskError {
    /// The Step Functions error code (`InvalidToken`, `TaskDoesNotExist`, `TaskTimedOut`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken => "InvalidToken",
            Self::TaskDoesNotExist => "TaskDoesNotExist",
            Self::TaskTimedOut => "TaskTimedOut",
        }
    }
}

/// What a caller sent to a waiting task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Signal {
    /// `SendTaskSuccess` or `SendTaskFailure`: ends the wait.
    Answer(Answer),
    /// `SendTaskHeartbeat`.
    Heartbeat,
}

/// How a caller ended a task's wait.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Success(Value),
    Failure { error: String, cause: String },
}

#[derive(Debug)]
enum Entry {
    Waiting(mpsc::UnboundedSender<Signal>),
    Closed,
}

/// The task tokens of callback tasks, and the `SendTask*` API on them. Clones share the same
/// tokens; a [`crate::StateMachine`] has one (shared by all its executions and clones, as task
/// tokens are account-wide in Step Functions), which
/// [`StateMachine::task_tokens`](crate::StateMachine::task_tokens) returns.
#[derive(Debug, Clone, Default)]
pub struct TaskTokens {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl TaskTokens {
    /// An empty set of tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// `SendTaskSuccess`: the waiting task succeeds with `output` as its result, and its token
    /// closes.
    pub fn send_task_success(&self, task_token: &str, output: Value) -> Result<(), SendTaskError> {
        self.deliver(task_token, Signal::Answer(Answer::Success(output)))
    }

    /// `SendTaskFailure`: the waiting task fails with `error` and `cause` (subject to its Retry
    /// and Catch), and its token closes.
    pub fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), SendTaskError> {
        self.deliver(
            task_token,
            Signal::Answer(Answer::Failure {
                error: error.to_owned(),
                cause: cause.to_owned(),
            }),
        )
    }

    /// `SendTaskHeartbeat`: restarts the waiting task's `HeartbeatSeconds` clock; the token stays
    /// open.
    pub fn send_task_heartbeat(&self, task_token: &str) -> Result<(), SendTaskError> {
        self.deliver(task_token, Signal::Heartbeat)
    }

    /// The tokens whose tasks wait now, sorted.
    pub fn waiting(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Waiting(_)))
            .map(|(token, _)| token.clone())
            .collect();
        out.sort_unstable();
        out
    }

    fn deliver(&self, task_token: &str, signal: Signal) -> Result<(), SendTaskError> {
        if !well_formed(task_token) {
            return Err(SendTaskError::InvalidToken);
        }
        let mut tokens = self.lock();
        let entry = tokens
            .get_mut(task_token)
            .ok_or(SendTaskError::TaskDoesNotExist)?;
        let Entry::Waiting(sender) = entry else {
            return Err(SendTaskError::TaskTimedOut);
        };
        let closes = !matches!(signal, Signal::Heartbeat);
        // The receiver lives as long as the attempt, whose end closes the entry under this same
        // lock, so a waiting entry always has a receiver.
        if sender.send(signal).is_err() {
            *entry = Entry::Closed;
            return Err(SendTaskError::TaskTimedOut);
        }
        if closes {
            *entry = Entry::Closed;
        }
        Ok(())
    }

    /// Opens a new token for one attempt of a callback task.
    pub(crate) fn issue(&self) -> (OpenToken, mpsc::UnboundedReceiver<Signal>) {
        use rand::Rng;
        let mut rng = rand::rng();
        let token = format!(
            "{TOKEN_PREFIX}{:016x}{:016x}{:016x}{:016x}",
            rng.random::<u64>(),
            rng.random::<u64>(),
            rng.random::<u64>(),
            rng.random::<u64>()
        );
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(token.clone(), Entry::Waiting(sender));
        (
            OpenToken {
                tokens: self.clone(),
                token,
            },
            receiver,
        )
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every update is one insert or one assignment, so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|random| {
        random.len() == TOKEN_RANDOM_DIGITS && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The token of an attempt in progress. Dropping it closes the token: the attempt ended, or the
/// execution around it was dropped (stopped, timed out).
pub(crate) struct OpenToken {
    tokens: TaskTokens,
    token: String,
}

impl OpenToken {
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Closes the token now and returns the answer that reached it first, if one did: whatever a
    /// caller was told was delivered must count, even if a deadline passed in between.
    pub fn settle(&self, receiver: &mut mpsc::UnboundedReceiver<Signal>) -> Option<Answer> {
        self.tokens.lock().insert(self.token.clone(), Entry::Closed);
        std::iter::from_fn(|| receiver.try_recv().ok()).find_map(|signal| match signal {
            Signal::Answer(answer) => Some(answer),
            Signal::Heartbeat => None,
        })
    }
}

impl Drop for OpenToken {
    fn drop(&mut self) {
        self.tokens.lock().insert(self.token.clone(), Entry::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_answers_once_then_reads_as_closed() {
        let tokens = TaskTokens::new();
        let (open, mut receiver) = tokens.issue();
        let token = open.token().to_owned();
        assert_eq!(tokens.waiting(), vec![token.clone()]);
        assert_eq!(tokens.send_task_heartbeat(&token), Ok(()));
        assert_eq!(tokens.send_task_success(&token, json!({"a": 1})), Ok(()));
        assert_eq!(
            tokens.send_task_failure(&token, "E", "c"),
            Err(SendTaskError::TaskTimedOut)
        );
        assert_eq!(receiver.try_recv(), Ok(Signal::Heartbeat));
        assert_eq!(
            receiver.try_recv(),
            Ok(Signal::Answer(Answer::Success(json!({"a": 1}))))
        );
        assert!(tokens.waiting().is_empty());
    }

    #[test]
    fn unknown_and_malformed_tokens_are_told_apart() {
        let tokens = TaskTokens::new();
        let (open, _receiver) = tokens.issue();
        let unknown = format!("{TOKEN_PREFIX}{}", "0".repeat(TOKEN_RANDOM_DIGITS));
        assert_ne!(open.token(), unknown);
        assert_eq!(
            tokens.send_task_heartbeat(&unknown),
            Err(SendTaskError::TaskDoesNotExist)
        );
        for bad in ["", "nope", TOKEN_PREFIX, &format!("{unknown}0")] {
            assert_eq!(
                tokens.send_task_heartbeat(bad),
                Err(SendTaskError::InvalidToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn settling_keeps_an_answer_that_arrived_first_and_closes_the_token() {
        let tokens = TaskTokens::new();
        let (open, mut receiver) = tokens.issue();
        let token = open.token().to_owned();
        tokens.send_task_heartbeat(&token).unwrap();
        tokens
            .send_task_failure(&token, "Boom", "late but first")
            .unwrap();
        assert_eq!(
            open.settle(&mut receiver),
            Some(Answer::Failure {
                error: "Boom".into(),
                cause: "late but first".into()
            })
        );
        let (open, mut receiver) = tokens.issue();
        let token = open.token().to_owned();
        assert_eq!(open.settle(&mut receiver), None);
        assert_eq!(
            tokens.send_task_success(&token, json!(1)),
            Err(SendTaskError::TaskTimedOut)
        );
    }

    #[test]
    fn dropping_an_open_token_closes_it() {
        let tokens = TaskTokens::new();
        let (open, _receiver) = tokens.issue();
        let token = open.token().to_owned();
        drop(open);
        assert_eq!(
            tokens.send_task_success(&token, json!(1)),
            Err(SendTaskError::TaskTimedOut)
        );
    }
}
