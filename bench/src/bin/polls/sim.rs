//! One simulated run: the deployed state machine in the ASL interpreter on virtual time, with a
//! scripted poll task, and the states a queued run passes beyond another's.

use std::sync::{Arc, Mutex};

use anyhow::{bail, ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{LOCAL_COLLECT_ARN, LOCAL_POLL_ARN};
use runbridge_asl::{
    ExecutionStatus, InstantClock, StateMachine, TaskFailure, TaskInvoker, TaskTokens, WaitClock,
};
use runbridge_bench::poll_sim::{Schedule, Waits};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// What one simulated run did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub polls: u64,
    pub lag_seconds: u64,
    pub transitions: u64,
}

/// The poll Lambda, scripted: the vendor finishes `finish_seconds` after the execution starts.
pub struct ScriptedPoll {
    pub clock: Arc<InstantClock>,
    pub started: OffsetDateTime,
    pub finish_seconds: u64,
    pub schedule: Mutex<Schedule>,
    /// Run age at each poll, in order.
    pub poll_ages: Mutex<Vec<u64>>,
    /// Where a parked execution is woken (a queued run's slot is free when it asks).
    pub tokens: TaskTokens,
    /// The first wait, which Admit answers for a queued run (the trigger's, for another).
    pub first_wait: u64,
}

#[async_trait]
impl TaskInvoker for ScriptedPoll {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        match resource {
            // A queued run (AMC) parks on `WaitForSlot`; its enqueue step finds a slot free and
            // wakes it at once, then Admit submits it.
            LOCAL_POLL_ARN => {
                if let Some(answer) =
                    runbridge_bench::queue_steps::answer(&self.tokens, &input, self.first_wait)
                {
                    return answer;
                }
                let age = (self.clock.now() - self.started).whole_seconds().max(0) as u64;
                self.poll_ages.lock().expect("poll ages lock").push(age);
                let done = age >= self.finish_seconds;
                let wait = if done {
                    0
                } else {
                    self.schedule.lock().expect("schedule lock").next_wait(age)
                };
                Ok(json!({
                    "handle": input["handle"],
                    "state": if done { "SUCCEEDED" } else { "RUNNING" },
                    "done": done,
                    "failed": false,
                    "wait_seconds": wait,
                    "reason": null,
                    "attribution": null,
                }))
            }
            LOCAL_COLLECT_ARN => Ok(json!({"manifest_key": "manifest.json", "files": 1})),
            other => Err(TaskFailure::new("UnknownResource", other)),
        }
    }
}

pub async fn simulate(
    machine: &StateMachine,
    waits: Waits,
    seed: u64,
    finish: u64,
) -> anyhow::Result<Outcome> {
    Ok(simulate_run(machine, waits, seed, finish, false).await?.0)
}

/// One run through the state machine; `queued`: of a profile with a concurrency limit (AMC),
/// whose execution starts parked for a slot (free at once here).
pub async fn simulate_run(
    machine: &StateMachine,
    waits: Waits,
    seed: u64,
    finish: u64,
    queued: bool,
) -> anyhow::Result<(Outcome, Vec<String>)> {
    let clock = Arc::new(InstantClock::starting_now());
    let started = clock.now();
    let schedule = Schedule::new(waits, seed);
    let first_wait = schedule.first;
    // The trigger's input, as `runbridge_handlers::payload::execution_input` makes it.
    let input = if queued {
        json!({"handle": {"key": "bench"}, "queued": true, "waits": 0, "wait_seconds": 0,
               "park_seconds": 3_600})
    } else {
        json!({"handle": {"key": "bench"}, "wait_seconds": first_wait})
    };
    let tasks = ScriptedPoll {
        clock: clock.clone(),
        started,
        finish_seconds: finish,
        schedule: Mutex::new(schedule),
        poll_ages: Mutex::new(Vec::new()),
        tokens: machine.task_tokens().clone(),
        first_wait,
    };
    let execution = machine
        .execute("bench", input, &tasks, clock.as_ref())
        .await;
    if execution.status != ExecutionStatus::Succeeded {
        bail!(
            "execution ended {:?}: {:?} {:?}",
            execution.status,
            execution.error,
            execution.cause
        );
    }
    let ages = tasks.poll_ages.into_inner().expect("poll ages lock");
    let noticed = *ages.last().context("no poll happened")?;
    // The interpreter and the arithmetic must agree, or one of them is not what we think it is.
    let expected = Schedule::ages(waits, seed, finish);
    if ages != expected {
        bail!("state machine polled at {ages:?}, the plan's schedule is {expected:?}");
    }
    let states = execution
        .states_entered()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((
        Outcome {
            polls: ages.len() as u64,
            lag_seconds: noticed - finish,
            transitions: execution.transitions,
        },
        states,
    ))
}

/// The states a run of a profile with a concurrency limit (AMC) passes beyond another's, when
/// a slot is free as it asks: the same machine run both ways, at several lengths.
pub async fn queue_states(machine: &StateMachine) -> anyhow::Result<Vec<String>> {
    let mut found: Option<Vec<String>> = None;
    for finish in [300, 3_600, 21_600] {
        let waits = Waits::Planned(None);
        let (plain, plain_states) = simulate_run(machine, waits, 0, finish, false).await?;
        let (queued, mut queued_states) = simulate_run(machine, waits, 0, finish, true).await?;
        ensure!(
            (plain.polls, plain.lag_seconds) == (queued.polls, queued.lag_seconds),
            "a queued run admitted at once polled differently"
        );
        for state in &plain_states {
            if let Some(i) = queued_states.iter().position(|s| s == state) {
                queued_states.remove(i);
            }
        }
        ensure!(
            queued_states.len() as u64 == queued.transitions - plain.transitions,
            "the queued run's extra states {queued_states:?} are not its extra transitions"
        );
        if let Some(before) = &found {
            ensure!(
                *before == queued_states,
                "the queue's states depend on the run's length"
            );
        }
        found = Some(queued_states);
    }
    found.context("no run simulated")
}
