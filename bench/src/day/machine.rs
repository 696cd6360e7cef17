//! What the deployed state machine (`infra/statemachine.asl.json`) does per step, read from the
//! real definition and measured by running it in the ASL interpreter (`runbridge_asl`) on
//! virtual time: the throttle Retrier of every Lambda task, and the state transitions and
//! history events of a run's fixed part, of each poll loop, of the AMC queue's states and of
//! each throttled attempt. The simulated day charges runs with these, so a change of the
//! definition changes the day.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{LOCAL_COLLECT_ARN, LOCAL_POLL_ARN, STATE_MACHINE_ASL};
use runbridge_asl::{
    Execution, ExecutionStatus, InstantClock, Retrier, StateMachine, TaskFailure, TaskInvoker,
    TaskTokens,
};
use serde_json::{json, Value};

/// The error a Lambda invoke fails with when the function is throttled.
pub const LAMBDA_THROTTLE: &str = "Lambda.TooManyRequestsException";
/// The Lambda Task states of the definition a run passes.
pub const LAMBDA_TASKS: [&str; 4] = ["WaitForSlot", "Admit", "Poll", "Collect"];

/// Per-step transitions and history events of the deployed definition, and its throttle
/// Retrier.
#[derive(Debug, Clone)]
pub struct MachineFacts {
    /// The Retrier every Lambda task uses for [`LAMBDA_THROTTLE`] (checked to be the same).
    pub throttle: Retrier,
    /// A run without the queue: transitions and history events besides its poll loops.
    pub base_transitions: u64,
    pub base_events: u64,
    /// Each poll loop (Wait, Poll, Choice).
    pub poll_transitions: u64,
    pub poll_events: u64,
    /// What a run of a limited profile (AMC) adds: the queue's states.
    pub queue_transitions: u64,
    pub queue_events: u64,
    /// Each throttled attempt of a Lambda task that its Retrier retries.
    pub retry_transitions: u64,
    pub retry_events: u64,
}

/// A poll task answering "done" at its `done_at`-th poll, throttled `throttles` times first.
struct Scripted {
    done_at: u64,
    throttles: u64,
    calls: AtomicU64,
    tokens: TaskTokens,
}

#[async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        match resource {
            LOCAL_POLL_ARN => {
                if let Some(answer) = crate::queue_steps::answer(&self.tokens, &input, 10) {
                    return answer;
                }
                let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if call <= self.throttles {
                    return Err(TaskFailure::new(LAMBDA_THROTTLE, "Rate exceeded"));
                }
                let done = call - self.throttles >= self.done_at;
                Ok(json!({
                    "handle": input["handle"],
                    "state": if done { "SUCCEEDED" } else { "RUNNING" },
                    "done": done, "failed": false, "wait_seconds": 10,
                    "reason": null, "attribution": null,
                }))
            }
            LOCAL_COLLECT_ARN => Ok(json!({"manifest_key": "manifest.json", "files": 1})),
            other => Err(TaskFailure::new("UnknownResource", other)),
        }
    }
}

fn events(execution: &Execution) -> u64 {
    execution
        .history
        .iter()
        .filter(|e| e.kind.counts_toward_quota())
        .count() as u64
}

async fn run(
    machine: &StateMachine,
    polls: u64,
    throttles: u64,
    queued: bool,
) -> anyhow::Result<(u64, u64)> {
    let clock = InstantClock::starting_now();
    let input = if queued {
        json!({"handle": {"key": "day"}, "queued": true, "waits": 0, "wait_seconds": 0,
               "park_seconds": 3_600})
    } else {
        json!({"handle": {"key": "day"}, "wait_seconds": 10})
    };
    let tasks = Scripted {
        done_at: polls,
        throttles,
        calls: AtomicU64::new(0),
        tokens: machine.task_tokens().clone(),
    };
    let execution = machine.execute("day", input, &tasks, &clock).await;
    if execution.status != ExecutionStatus::Succeeded {
        bail!(
            "execution ended {:?}: {:?}",
            execution.status,
            execution.cause
        );
    }
    Ok((execution.transitions, events(&execution)))
}

/// The deployed definition, with the local functions in place of the ARNs.
pub fn deployed_machine() -> anyhow::Result<StateMachine> {
    let subs = HashMap::from([
        ("PollFunctionArn".to_owned(), LOCAL_POLL_ARN.to_owned()),
        (
            "CollectFunctionArn".to_owned(),
            LOCAL_COLLECT_ARN.to_owned(),
        ),
    ]);
    StateMachine::from_json(STATE_MACHINE_ASL, &subs).context("the deployed state machine")
}

impl MachineFacts {
    /// Reads the Retrier and measures the per-step figures with the interpreter.
    pub async fn measure() -> anyhow::Result<Self> {
        let machine = deployed_machine()?;
        let mut throttle: Option<Retrier> = None;
        for state in LAMBDA_TASKS {
            let retriers = machine
                .retriers(state)
                .with_context(|| format!("no Task state {state}"))?;
            let found = retriers
                .iter()
                .find(|r| r.error_equals.iter().any(|e| e == LAMBDA_THROTTLE))
                .with_context(|| format!("{state} does not retry {LAMBDA_THROTTLE}"))?;
            if let Some(seen) = &throttle {
                ensure!(
                    (
                        seen.interval_seconds,
                        seen.max_attempts,
                        seen.max_delay_seconds
                    ) == (
                        found.interval_seconds,
                        found.max_attempts,
                        found.max_delay_seconds
                    ) && seen.backoff_rate == found.backoff_rate,
                    "{state}'s throttle Retrier differs from the others'"
                );
            }
            throttle = Some(found.clone());
        }
        let (t1, e1) = run(&machine, 1, 0, false).await?;
        let (t2, e2) = run(&machine, 2, 0, false).await?;
        let (q1, qe1) = run(&machine, 1, 0, true).await?;
        let (r1, re1) = run(&machine, 1, 1, false).await?;
        let (poll_transitions, poll_events) = (t2 - t1, e2 - e1);
        Ok(Self {
            throttle: throttle.context("no Lambda task")?,
            base_transitions: t1 - poll_transitions,
            base_events: e1 - poll_events,
            poll_transitions,
            poll_events,
            queue_transitions: q1 - t1,
            queue_events: qe1 - e1,
            retry_transitions: r1 - t1,
            retry_events: re1 - e1,
        })
    }

    /// The delay before retry `attempt` (0-based) of a throttled task, as the Retrier draws it
    /// (`unit` in `[0, 1)` in place of its random number); `None` once its attempts are spent.
    pub fn throttle_delay_ms(&self, attempt: u64, unit: f64) -> Option<u64> {
        if attempt >= self.throttle.max_attempts {
            return None;
        }
        let base = self.throttle.base_delay(attempt);
        let delay = if self.throttle.full_jitter {
            base * unit
        } else {
            base
        };
        Some((delay * 1_000.0).round() as u64)
    }

    /// History events of a run with `polls` poll loops and `retries` throttled attempts.
    pub fn history_events(&self, polls: u64, retries: u64, queued: bool) -> u64 {
        self.base_events
            + polls * self.poll_events
            + retries * self.retry_events
            + if queued { self.queue_events } else { 0 }
    }

    /// State transitions of the same run.
    pub fn transitions(&self, polls: u64, retries: u64, queued: bool) -> u64 {
        self.base_transitions
            + polls * self.poll_transitions
            + retries * self.retry_transitions
            + if queued { self.queue_transitions } else { 0 }
    }
}
