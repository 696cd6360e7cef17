//! The typed model of a loaded definition: what [`crate::parse`] builds and [`crate::validate`]
//! checks, and what the executor runs. Only what the interpreter implements has a place here:
//! Task, Pass, Wait, Choice, Succeed and Fail states with the fields listed in
//! [`crate::parse`]; Task resources that are plain ARNs or the optimized Lambda integration
//! (`lambda:invoke`, `lambda:invoke.waitForTaskToken`); no intrinsic functions, no Wait
//! timestamps.

use crate::choice::Rule;
use crate::history::StateType;
use crate::path::JsonPath;
use crate::template::Template;
use serde_json::Value;
use std::collections::BTreeMap;

/// A validated definition.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub timeout_seconds: Option<u64>,
    pub comment: Option<String>,
}

/// Where a non-terminal state goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

/// `InputPath`/`OutputPath`: `None` is JSON `null` (which selects `{}`); absent means `$`.
#[derive(Debug, Clone)]
pub(crate) struct Io {
    pub input_path: Option<JsonPath>,
    pub output_path: Option<JsonPath>,
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    Task(TaskState),
    Pass(PassState),
    Wait(WaitState),
    Choice(ChoiceState),
    Succeed(Io),
    Fail(FailState),
}

impl State {
    pub fn state_type(&self) -> StateType {
        match self {
            State::Task(_) => StateType::Task,
            State::Pass(_) => StateType::Pass,
            State::Wait(_) => StateType::Wait,
            State::Choice(_) => StateType::Choice,
            State::Succeed(_) => StateType::Succeed,
            State::Fail(_) => StateType::Fail,
        }
    }

    /// Every transition target with the field it came from, for validation.
    pub fn targets(&self) -> Vec<(String, &str)> {
        fn next(t: &Transition) -> Vec<(String, &str)> {
            match t {
                Transition::Next(n) => vec![("Next".to_string(), n.as_str())],
                Transition::End => vec![],
            }
        }
        match self {
            State::Task(t) => {
                let mut out = next(&t.transition);
                out.extend(
                    t.catch
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (format!("Catch[{i}].Next"), c.next.as_str())),
                );
                out
            }
            State::Pass(p) => next(&p.transition),
            State::Wait(w) => next(&w.transition),
            State::Choice(c) => {
                let mut out: Vec<(String, &str)> = c
                    .choices
                    .iter()
                    .enumerate()
                    .map(|(i, (_, n))| (format!("Choices[{i}].Next"), n.as_str()))
                    .collect();
                if let Some(d) = &c.default {
                    out.push(("Default".to_string(), d.as_str()));
                }
                out
            }
            State::Succeed(_) | State::Fail(_) => vec![],
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    /// The `Resource` after substitutions.
    pub resource: String,
    /// How the resource is called.
    pub integration: Integration,
    pub io: Io,
    pub parameters: Option<Template>,
    /// `None` is `ResultPath: null` (discard the result).
    pub result_path: Option<JsonPath>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
    /// The Task's `TimeoutSeconds` or `TimeoutSecondsPath`: one attempt that runs longer fails
    /// with `States.Timeout` (subject to Retry and Catch, like any state error). While the
    /// invoker runs it is measured on the tokio clock, as the handler's own run time is; while a
    /// callback task is parked, on the [`crate::WaitClock`], as a Wait state's time is.
    pub timeout: Option<Seconds>,
    /// `HeartbeatSeconds` or `HeartbeatSecondsPath` (callback tasks only): a parked task that
    /// goes this long without a heartbeat fails with `States.Timeout`, which a Retrier or
    /// Catcher can also name as `States.HeartbeatTimeout`.
    pub heartbeat: Option<Seconds>,
}

/// How a Task state's `Resource` is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Integration {
    /// Any other resource (a Lambda function ARN, an activity): the invoker gets the resource and
    /// the effective input, and its answer is the task result.
    Resource,
    /// `arn:aws:states:::lambda:invoke` (`wait_for_task_token: false`): the invoker gets
    /// `Parameters.FunctionName` and `Parameters.Payload`; the result is the Invoke response
    /// (`{"Payload": …, "StatusCode": 200, …}`). With `.waitForTaskToken` the invoke only submits
    /// the task, which then waits for `SendTaskSuccess`/`SendTaskFailure` on its token.
    LambdaInvoke { wait_for_task_token: bool },
}

impl Integration {
    /// Whether the task waits for a task token after its resource answered.
    pub fn waits_for_task_token(self) -> bool {
        matches!(
            self,
            Integration::LambdaInvoke {
                wait_for_task_token: true
            }
        )
    }
}

/// A number of seconds given literally (`TimeoutSeconds`) or by a path into the effective input
/// (`TimeoutSecondsPath`), which must select a positive integer when the state runs.
#[derive(Debug, Clone)]
pub(crate) enum Seconds {
    Fixed(u64),
    Path(JsonPath),
}

/// One `Retry` entry of a Task state, as parsed (read by simulations through
/// [`crate::StateMachine::retriers`]).
#[derive(Debug, Clone)]
pub struct Retrier {
    /// The error names it handles (`ErrorEquals`).
    pub error_equals: Vec<String>,
    /// `IntervalSeconds`: the first retry's delay before jitter.
    pub interval_seconds: u64,
    /// `MaxAttempts`: retries before the error goes on to Catch.
    pub max_attempts: u64,
    /// `BackoffRate`: each delay's factor over the one before.
    pub backoff_rate: f64,
    /// `JitterStrategy: FULL`: each delay drawn uniformly from zero to its base.
    pub full_jitter: bool,
    /// `MaxDelaySeconds`: the most an interval grows to by `BackoffRate`.
    pub max_delay_seconds: Option<u64>,
}

impl Retrier {
    /// The delay before retry number `attempt` (0-based) of this Retrier, before jitter:
    /// `IntervalSeconds × BackoffRate^attempt`, at most `MaxDelaySeconds`.
    pub fn base_delay(&self, attempt: u64) -> f64 {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let delay = self.interval_seconds as f64 * self.backoff_rate.powi(exponent);
        match self.max_delay_seconds {
            Some(max) => delay.min(max as f64),
            None => delay,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: Option<JsonPath>,
}

#[derive(Debug, Clone)]
pub(crate) struct PassState {
    pub io: Io,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: Option<JsonPath>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) struct WaitState {
    pub io: Io,
    pub wait: WaitFor,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceState {
    pub io: Io,
    pub choices: Vec<(Rule, String)>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct FailState {
    pub error: Option<Dynamic>,
    pub cause: Option<Dynamic>,
}

/// A Fail state's `Error`/`Cause` (literal) or `ErrorPath`/`CausePath` (path).
#[derive(Debug, Clone)]
pub(crate) enum Dynamic {
    Literal(String),
    Path(JsonPath),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{error_matches, names};

    #[test]
    fn retrier_delays() {
        let r = Retrier {
            error_equals: vec![],
            interval_seconds: 2,
            max_attempts: 5,
            backoff_rate: 3.0,
            full_jitter: false,
            max_delay_seconds: None,
        };
        let delays: Vec<f64> = (0..4).map(|a| r.base_delay(a)).collect();
        assert_eq!(delays, vec![2.0, 6.0, 18.0, 54.0]);
        let capped = Retrier {
            max_delay_seconds: Some(20),
            ..r
        };
        let delays: Vec<f64> = (0..5).map(|a| capped.base_delay(a)).collect();
        assert_eq!(delays, vec![2.0, 6.0, 18.0, 20.0, 20.0]);
    }

    #[test]
    fn task_failed_wildcard_excludes_timeout() {
        let list = vec![names::TASK_FAILED.to_string()];
        assert!(error_matches(&list, "Boom", false));
        assert!(!error_matches(&list, names::TIMEOUT, false));
        assert!(!error_matches(&list, names::TIMEOUT, true));
        assert!(error_matches(
            &[names::ALL.to_string()],
            names::TIMEOUT,
            false
        ));
    }

    #[test]
    fn heartbeat_timeout_is_a_timeout_that_can_also_be_named_as_such() {
        let timeout = vec![names::TIMEOUT.to_string()];
        let heartbeat = vec![names::HEARTBEAT_TIMEOUT.to_string()];
        assert!(error_matches(&timeout, names::TIMEOUT, true));
        assert!(error_matches(&heartbeat, names::TIMEOUT, true));
        assert!(!error_matches(&heartbeat, names::TIMEOUT, false));
    }
}
