//! Polls per run: how often runbridge asks the vendor for a run's status, how late it notices
//! the end, and what a run costs, for the deployed poll plan (`PollPlan`: around the end its
//! workflow's history predicts, else the adaptive policy capped at 10 minutes) against the
//! adaptive `BackoffPolicy` it replaced and fixed waits.
//!
//! Each case runs the deployed state machine (`infra/statemachine.asl.json`) in the local ASL
//! interpreter on virtual time (`InstantClock`), with a poll task that waits as the poll handler
//! does (`PollPlan` itself, a seeded jitter in place of the handler's random one; the first wait
//! is `runbridge_handlers::payload::first_wait`, jittered by the run's key) against a scripted
//! finish time: the run is "done" at the first poll at or after `finish` seconds. So the polls,
//! the lag and the billed state transitions are what Step Functions would see, minus Lambda
//! latency. The storage requests per run are measured once through the real handlers (a local
//! deployment on the Amperity simulator, every ledger, history and sink call counted as the S3
//! request it is deployed as), and the per-poll formula is checked against that run.
//!
//! Usage: `cargo run --release -p runbridge-bench --bin polls` (prints a Markdown section).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{
    LocalConfig, LocalDeployment, Simulators, LOCAL_COLLECT_ARN, LOCAL_POLL_ARN, STATE_MACHINE_ASL,
};
use runbridge_asl::{
    ExecutionStatus, InstantClock, StateMachine, TaskFailure, TaskInvoker, TaskTokens, WaitClock,
};
use runbridge_bench::cost::{Cost, Usage, ASSUMPTIONS};
use runbridge_bench::poll_sim::{
    worst_lag_within, HistoryDraw, Mix, Schedule, Waits, MAX_LAG_SECONDS,
};
use runbridge_bench::storage::{
    Counter, CountingHistory, CountingLedger, CountingSink, CountingSlots, Requests,
};
use runbridge_bench::{at_most, human_seconds, ratio, ratio_at_most, Table};
use runbridge_core::{BackoffPolicy, RunState, HISTORY_RUNS, OVERRUN_MAX_WAIT_SECONDS};
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Simulated run durations (time from submission to the vendor finishing).
const DURATIONS: [u64; 6] = [60, 300, 900, 3_600, 10_800, 21_600];
/// Targets for the 6 h run, set for the adaptive policy before issue 26.
const TARGET_POLLS_6H: f64 = 15.0;
const TARGET_LAG_FRACTION: f64 = 0.10;
/// Seeds over which a jittered plan's worst lag near a duration is taken.
const JITTER_SEEDS: u64 = 200;

/// Median durations of the workflows with history.
const HISTORY_LENGTHS: [u64; 3] = [300, 3_600, 21_600];
/// Seeded runs per workflow, mix and policy.
const SEEDED_RUNS: u64 = 500;
/// Cost per 1,000 runs against fixed 60 s, at most.
const TARGET_COST_RATIO: f64 = 0.15;

/// What one simulated run did.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    polls: u64,
    lag_seconds: u64,
    transitions: u64,
}

/// The poll Lambda, scripted: the vendor finishes `finish_seconds` after the execution starts.
struct ScriptedPoll {
    clock: Arc<InstantClock>,
    started: OffsetDateTime,
    finish_seconds: u64,
    schedule: Mutex<Schedule>,
    /// Run age at each poll, in order.
    poll_ages: Mutex<Vec<u64>>,
    /// Where a parked execution is woken (a queued run's slot is free when it asks).
    tokens: TaskTokens,
    /// The first wait, which Admit answers for a queued run (the trigger's, for another).
    first_wait: u64,
}

#[async_trait]
impl TaskInvoker for ScriptedPoll {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        match resource {
            // A queued run (AMC) parks on `WaitForSlot`; its enqueue step finds a slot free and
            // wakes it at once, then Admit submits it.
            LOCAL_POLL_ARN if input["step"] == "enqueue" => {
                let token = input["task_token"].as_str().unwrap_or_default();
                self.tokens
                    .send_task_success(token, json!({"admitted": true}))
                    .map_err(|e| TaskFailure::new("SendTaskSuccess", e.to_string()))?;
                Ok(json!({"StatusCode": 202}))
            }
            LOCAL_POLL_ARN if input["step"] == "admit" => Ok(json!({
                "handle": input["handle"],
                "failed": false,
                "try_again": false,
                "queued": false,
                "wait_seconds": self.first_wait,
            })),
            LOCAL_POLL_ARN => {
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

async fn simulate(
    machine: &StateMachine,
    waits: Waits,
    seed: u64,
    finish: u64,
) -> anyhow::Result<Outcome> {
    Ok(simulate_run(machine, waits, seed, finish, false).await?.0)
}

/// One run through the state machine; `queued`: of a profile with a concurrency limit (AMC),
/// whose execution starts parked for a slot (free at once here).
async fn simulate_run(
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
async fn queue_states(machine: &StateMachine) -> anyhow::Result<Vec<String>> {
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

/// The storage requests of one run, by step, measured through the real handlers.
#[derive(Debug, Clone, Copy)]
struct StorageModel {
    trigger: Requests,
    first_poll: Requests,
    later_poll: Requests,
    collect: Requests,
    /// Polls and transitions of the measured run.
    polls: u64,
    transitions: u64,
}

impl StorageModel {
    /// What a run with `polls` polls and `transitions` transitions uses: one trigger and one
    /// collect invocation, its polls, and its S3 requests by the measured steps.
    fn usage(&self, polls: u64, transitions: u64) -> Usage {
        let later = polls.saturating_sub(1);
        let gets = self.trigger.gets()
            + self.first_poll.gets()
            + later * self.later_poll.gets()
            + self.collect.gets();
        let puts = self.trigger.puts()
            + self.first_poll.puts()
            + later * self.later_poll.puts()
            + self.collect.puts();
        Usage {
            transitions: transitions as f64,
            triggers: 1.0,
            polls: polls as f64,
            collects: 1.0,
            s3_gets: gets as f64,
            s3_puts: puts as f64,
        }
    }

    fn describe(&self) -> String {
        let r = |r: &Requests| format!("{} GET + {} PUT", r.gets(), r.puts());
        format!(
            "trigger {} (ledger claim, the submit's read and record), first poll {} (the \
             ledger entry, the workflow's history), every later poll {} (the ledger entry), \
             collect {} (ledger entry, manifest check, the result file as a multipart upload, \
             manifest, announcement, the history's read and write)",
            r(&self.trigger),
            r(&self.first_poll),
            r(&self.later_poll),
            r(&self.collect)
        )
    }
}

/// The tasks, with each invocation's storage requests recorded (one run at a time).
struct StepLog {
    inner: Arc<dyn TaskInvoker>,
    counter: Arc<Counter>,
    steps: Arc<Mutex<Vec<(String, Requests)>>>,
}

#[async_trait]
impl TaskInvoker for StepLog {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let step = input["step"].as_str().unwrap_or("?").to_owned();
        let before = self.counter.total();
        let out = self.inner.invoke(resource, input).await;
        let used = self.counter.total().since(&before);
        self.steps.lock().expect("steps lock").push((step, used));
        out
    }
}

/// One Amperity run (300 s) through the local deployment with every storage port counted.
async fn measure_storage() -> anyhow::Result<StorageModel> {
    let sim = SimHandle::start(SimConfig {
        speed: 100.0,
        token_ttl_seconds: 365 * 86_400,
        download_url_ttl_seconds: 365 * 86_400,
        default_script: RunScript {
            queue_seconds: 0.0,
            run_seconds: 300.0,
            rows: 100,
            files: 1,
            ..RunScript::default()
        },
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let counter = Arc::new(Counter::default());
    let steps = Arc::new(Mutex::new(Vec::new()));
    let mut config = LocalConfig::on_simulators(
        Simulators::Here {
            sim: &sim,
            profiles: &[],
        },
        &RetryConfig::fast(),
        dir.path().join("out"),
        dir.path().join("_ledger"),
    )?;
    let c = counter.clone();
    config.wrap_ledger = Some(Box::new(move |inner| {
        Arc::new(CountingLedger { inner, counter: c })
    }));
    let c = counter.clone();
    config.wrap_history = Some(Box::new(move |inner| {
        Arc::new(CountingHistory { inner, counter: c })
    }));
    let c = counter.clone();
    config.wrap_slots = Some(Box::new(move |inner| {
        Arc::new(CountingSlots::new(inner, c))
    }));
    let c = counter.clone();
    config.wrap_sink = Some(Box::new(move |inner| {
        Arc::new(CountingSink { inner, counter: c })
    }));
    let (c, s) = (counter.clone(), steps.clone());
    config.wrap_tasks = Some(Box::new(move |inner| {
        Arc::new(StepLog {
            inner,
            counter: c,
            steps: s,
        })
    }));
    let deployment = LocalDeployment::new(config)?;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amperity.json");
    let triggered = deployment
        .trigger
        .handle_bytes(&std::fs::read(path)?, None)
        .await?;
    let (execution, manifest) = deployment
        .wait(triggered.key())
        .await?
        .context("the execution was started")?;
    let manifest = manifest.context("a manifest")?;
    ensure!(
        manifest.state == RunState::Succeeded,
        "the measured run ended {:?}",
        manifest.state
    );
    let steps = steps.lock().expect("steps lock").clone();
    let polls: Vec<Requests> = steps
        .iter()
        .filter(|(s, _)| s == "poll")
        .map(|(_, r)| *r)
        .collect();
    let collects: Vec<Requests> = steps
        .iter()
        .filter(|(s, _)| s == "collect")
        .map(|(_, r)| *r)
        .collect();
    ensure!(
        polls.len() >= 3,
        "the measured run polled {} times",
        polls.len()
    );
    ensure!(collects.len() == 1, "{} collects", collects.len());
    ensure!(
        polls[1..].iter().all(|p| *p == polls[1]),
        "later polls made different storage requests: {polls:?}"
    );
    // What no step made, the trigger made (it ran before the execution's first task).
    let mut by_steps = Requests::default();
    for (_, r) in &steps {
        by_steps = by_steps.plus(r);
    }
    let model = StorageModel {
        trigger: counter.total().since(&by_steps),
        first_poll: polls[0],
        later_poll: polls[1],
        collect: collects[0],
        polls: polls.len() as u64,
        transitions: execution.transitions,
    };
    // The formula the tables use, checked against the run it comes from.
    let total = counter.total();
    let usage = model.usage(model.polls, model.transitions);
    ensure!(
        usage.s3_gets as u64 == total.gets() && usage.s3_puts as u64 == total.puts(),
        "the formula gives {} GET + {} PUT, the run made {} + {}",
        usage.s3_gets,
        usage.s3_puts,
        total.gets(),
        total.puts()
    );
    ensure!(
        execution.transitions == 3 * model.polls + 3,
        "{} transitions for {} polls: not IsQueued + 3 per poll + Collect + RunSucceeded",
        execution.transitions,
        model.polls
    );
    Ok(model)
}

fn describe(waits: &Waits) -> String {
    match waits {
        Waits::Backoff(p) if p.age_fraction == 0.0 => format!("fixed {} s", p.min_wait_seconds),
        Waits::Backoff(p) => format!(
            "first {} s, then {} × age, at most {}",
            p.min_wait_seconds,
            p.age_fraction,
            human_seconds(p.max_wait_seconds)
        ),
        Waits::Planned(None) => {
            let d = BackoffPolicy::default();
            format!(
                "`PollPlan` without history: first {} s, then {} × age, at most {}, every wait \
                 jittered (shortened by up to a fifth)",
                d.min_wait_seconds,
                d.age_fraction,
                human_seconds(OVERRUN_MAX_WAIT_SECONDS)
            )
        }
        Waits::Planned(Some(_)) => "`PollPlan` from the workflow's history".to_owned(),
    }
}

fn usd(x: f64) -> String {
    format!("{x:.3}")
}

/// One seeded run of a workflow with history.
#[derive(Debug, Clone, Copy)]
struct SeededRun {
    finish: u64,
    outlier: bool,
    outcome: Outcome,
}

/// Many seeded runs of one workflow, mix and policy.
struct Cell {
    length: u64,
    mix: Mix,
    policy: usize,
    runs: Vec<SeededRun>,
}

impl Cell {
    fn worst(&self, filter: impl Fn(&SeededRun) -> bool) -> Option<&SeededRun> {
        self.runs
            .iter()
            .filter(|r| filter(r))
            .max_by_key(|r| r.outcome.lag_seconds)
    }

    /// The 95th percentile of the lags (nearest rank).
    fn p95_lag(&self) -> u64 {
        let mut lags: Vec<u64> = self.runs.iter().map(|r| r.outcome.lag_seconds).collect();
        lags.sort_unstable();
        let rank = (lags.len() * 95).div_ceil(100).max(1);
        lags.get(rank - 1).copied().unwrap_or(0)
    }

    fn worst_fraction(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.lag_seconds as f64 / r.finish as f64)
            .fold(0.0, f64::max)
    }

    fn late(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.outcome.lag_seconds > self.mix.lag_target(r.finish))
            .count()
    }

    fn mean_polls(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.polls as f64)
            .sum::<f64>()
            / self.runs.len() as f64
    }

    fn max_polls(&self) -> u64 {
        self.runs.iter().map(|r| r.outcome.polls).max().unwrap_or(0)
    }

    fn mean_transitions(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.transitions as f64)
            .sum::<f64>()
            / self.runs.len() as f64
    }

    /// Cost per 1,000 runs.
    fn cost(&self, storage: &StorageModel) -> Cost {
        let mut usage = Usage::default();
        for r in &self.runs {
            usage = usage.plus(&storage.usage(r.outcome.polls, r.outcome.transitions));
        }
        usage.times(1_000.0 / self.runs.len() as f64).cost()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let subs = HashMap::from([
        ("PollFunctionArn".to_owned(), LOCAL_POLL_ARN.to_owned()),
        (
            "CollectFunctionArn".to_owned(),
            LOCAL_COLLECT_ARN.to_owned(),
        ),
    ]);
    let machine =
        StateMachine::from_json(STATE_MACHINE_ASL, &subs).context("deployed state machine")?;
    let storage = measure_storage()
        .await
        .context("measuring a run's storage requests")?;

    let adaptive = BackoffPolicy::default();
    // The default before the 0.85 tuning (15 s first, half the age, at most 30 min), kept as a
    // reference row so the trade-off of that tuning stays visible.
    let previous = BackoffPolicy {
        min_wait_seconds: 15,
        max_wait_seconds: 1_800,
        age_fraction: 0.5,
    };
    let policies = [
        (
            "runbridge default for a workflow without history (since issue 26)",
            Waits::Planned(None),
        ),
        (
            "adaptive before issue 26 (the `BackoffPolicy` default alone)",
            Waits::Backoff(adaptive),
        ),
        (
            "adaptive, the default before that",
            Waits::Backoff(previous),
        ),
        ("fixed 30 s", Waits::Backoff(BackoffPolicy::fixed(30))),
        (
            "fixed 60 s (baseline)",
            Waits::Backoff(BackoffPolicy::fixed(60)),
        ),
    ];

    // Seed 0 at the scripted finish; the worst lag near it over seeds for the jittered plan.
    let mut results: Vec<Vec<(Outcome, u64)>> = Vec::new();
    for (_, waits) in &policies {
        let seeds = match waits {
            Waits::Backoff(_) => 1,
            Waits::Planned(_) => JITTER_SEEDS,
        };
        let mut row = Vec::new();
        for finish in DURATIONS {
            let outcome = simulate(&machine, *waits, 0, finish).await?;
            let worst = worst_lag_within(*waits, seeds, finish * 9 / 10, finish * 11 / 10);
            row.push((outcome, worst));
        }
        results.push(row);
    }
    let baseline = results.last().expect("fixed 60 s is last").clone();
    let cost_of = |o: &Outcome| storage.usage(o.polls, o.transitions).cost().times(1_000.0);

    println!("## 1. Polls per run\n");
    println!(
        "Each run is the deployed state machine (`infra/statemachine.asl.json`) executed by the \
         local ASL interpreter on virtual time (`InstantClock`), with a poll task that waits as \
         the poll handler does against a scripted finish time: `PollPlan` itself (the \
         handler's random jitter replaced by a seeded one, so the figures repeat), the first \
         wait from `runbridge_handlers::payload::first_wait` (jittered by the run's key). The \
         policies before issue 26 are `BackoffPolicy` alone, without jitter, as they were \
         deployed. *Lag* is the time between the vendor finishing and the poll that notices it; \
         *worst lag ±10 %* is the largest lag of any run ending within ±10 % of that duration \
         (one scripted finish can land right on a poll; for the jittered plan, over \
         {JITTER_SEEDS} seeds; the other columns are seed 0). Transitions are every state a run \
         passes, as Step Functions bills them: `IsQueued`, Wait + Poll + Choice per poll, \
         Collect and RunSucceeded (a run of a profile without a concurrency limit; an AMC run \
         passes `WaitForSlot`, `Admit` and `IsAdmitted` too, see section 5). *$ per 1,000 \
         runs* counts every line item: the transitions, Lambda requests and GB-seconds, and S3 \
         requests. Ratios are against fixed 60 s waits in the same run. Lambda latency is not \
         included.\n"
    );
    println!(
        "S3 requests per run, measured once through the real handlers (one Amperity run of \
         300 s on the simulator, {} polls, every ledger, history and sink call counted as the \
         S3 request its AWS adapter makes) and charged to every policy alike: {}. The formula \
         (those per step, times the polls) gives exactly what that run made, and its \
         transitions are 3 per poll + 3. {ASSUMPTIONS}.\n",
        storage.polls,
        storage.describe()
    );
    let queue = queue_states(&machine).await?;
    let queue_cost = Usage {
        transitions: queue.len() as f64,
        polls: 2.0,
        ..Usage::default()
    }
    .cost()
    .times(1_000.0);
    println!(
        "A run of a profile with a concurrency limit (AMC) starts parked for a slot \
         (`IsQueued` → `WaitForSlot`); admitted at once, it passes {} more states ({}: the same \
         machine run with `queued`, its polls unchanged) and makes 2 more poll-function calls \
         (enqueue, admit): ${} more per 1,000 runs before their storage requests, which \
         section 5 measures. The tables are for a profile without a limit.\n",
        queue.len(),
        queue
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", "),
        usd(queue_cost.total())
    );
    for (i, (name, waits)) in policies.iter().enumerate() {
        println!("**{name}** — {}\n", describe(waits));
        let mut table = Table::new([
            "run",
            "polls",
            "polls vs fixed 60 s",
            "lag",
            "lag % of run",
            "worst lag ±10 %",
            "transitions",
            "$ per 1,000 runs",
            "of which Step Functions",
            "cost vs fixed 60 s",
        ]);
        for (j, finish) in DURATIONS.iter().enumerate() {
            let (o, worst) = results[i][j];
            let cost = cost_of(&o);
            table.row([
                human_seconds(*finish),
                o.polls.to_string(),
                ratio(o.polls as f64, baseline[j].0.polls as f64),
                format!("{} s", o.lag_seconds),
                format!("{:.1} %", 100.0 * o.lag_seconds as f64 / *finish as f64),
                format!("{worst} s ({:.0} %)", 100.0 * worst as f64 / *finish as f64),
                o.transitions.to_string(),
                usd(cost.total()),
                usd(cost.transitions),
                ratio(cost.total(), cost_of(&baseline[j].0).total()),
            ]);
        }
        println!("{}", table.markdown());
    }

    let unknown = &results[0];
    let worst_unknown = unknown.iter().map(|(_, w)| *w).max().unwrap_or(0);
    println!("**Targets for workflows without history (issue 26)**\n");
    println!(
        "- worst lag ≤ 10 min at every length (runs ending within ±10 % of 1 min … 6 h, \
         {JITTER_SEEDS} seeds each): {}; polls at the scripted finish {}; $ per 1,000 runs {}",
        at_most(worst_unknown as f64, MAX_LAG_SECONDS as f64, "s"),
        DURATIONS
            .iter()
            .zip(unknown)
            .map(|(d, (o, _))| format!("{} {}", human_seconds(*d), o.polls))
            .collect::<Vec<_>>()
            .join(", "),
        DURATIONS
            .iter()
            .zip(unknown)
            .map(|(d, (o, _))| format!("{} {}", human_seconds(*d), usd(cost_of(o).total())))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let six_hours = results[1][DURATIONS.len() - 1];
    println!(
        "- earlier targets (6 h run), for the adaptive policy before issue 26 they were set \
         for: polls ≤ {TARGET_POLLS_6H}: {}; lag ≤ {:.0} % of run time: {}; worst lag for runs \
         ending within ±10 % of 6 h: {} s ({:.1} % of 6 h) — {}\n",
        at_most(six_hours.0.polls as f64, TARGET_POLLS_6H, "polls"),
        TARGET_LAG_FRACTION * 100.0,
        at_most(
            six_hours.0.lag_seconds as f64,
            TARGET_LAG_FRACTION * 21_600.0,
            "s"
        ),
        six_hours.1,
        100.0 * six_hours.1 as f64 / 21_600.0,
        at_most(six_hours.1 as f64, TARGET_LAG_FRACTION * 21_600.0, "s")
    );

    history_tables(&machine, &storage, adaptive).await?;

    println!(
        "**Vendor hints.** None of the four vendors' status APIs offers progress or an ETA \
         (`shared/vendor-docs/`): AMC answers a state and `lastUpdatedTime`, Amperity \
         `created_at` and `ended_at` (when it ended, not when it will), Adobe a flow run's \
         `metrics.durationSummary` (started and completed times; the spec's `percentCompleted` \
         belongs to a flow's state-action request body, not to runs), CARTO a status object; so \
         the plan rests on each workflow's history alone, and a vendor's Retry-After still sets \
         a floor.\n"
    );
    Ok(())
}

/// The table for workflows with history: 5 min, 1 h and 6 h workflows in three mixes, the plan
/// against fixed 60 s and the adaptive policy before issue 26, in the same run.
async fn history_tables(
    machine: &StateMachine,
    storage: &StorageModel,
    adaptive: BackoffPolicy,
) -> anyhow::Result<()> {
    let names = [
        "runbridge (`PollPlan` from history)",
        "adaptive before issue 26",
        "fixed 60 s",
    ];
    let mut cells: Vec<Cell> = Vec::new();
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL.iter() {
            let mut runs: [Vec<SeededRun>; 3] = Default::default();
            for seed in 0..SEEDED_RUNS {
                let HistoryDraw {
                    prediction,
                    finish,
                    outlier,
                } = HistoryDraw::new(length, *mix, seed);
                ensure!(prediction.is_some(), "{HISTORY_RUNS} runs predict an end");
                let policies = [
                    Waits::Planned(prediction),
                    Waits::Backoff(adaptive),
                    Waits::Backoff(BackoffPolicy::fixed(60)),
                ];
                for (p, waits) in policies.into_iter().enumerate() {
                    let outcome = simulate(machine, waits, seed, finish).await?;
                    runs[p].push(SeededRun {
                        finish,
                        outlier,
                        outcome,
                    });
                }
            }
            for (policy, runs) in runs.into_iter().enumerate() {
                cells.push(Cell {
                    length,
                    mix: *mix,
                    policy,
                    runs,
                });
            }
        }
    }
    let cell = |length: u64, mix: Mix, policy: usize| {
        cells
            .iter()
            .find(|c| c.length == length && c.mix == mix && c.policy == policy)
            .expect("every cell simulated")
    };

    println!("### Workflows with history\n");
    println!(
        "A workflow of 5 min, 1 h or 6 h (its median), its durations in one of three mixes: \
         uniformly within ±10 % of the median, within ±30 %, or within ±10 % with one run in 10 \
         three times as long (drawn at random: about {} of the {SEEDED_RUNS}). Each of \
         {SEEDED_RUNS} seeded runs draws the workflow's {HISTORY_RUNS} previous runs from the \
         same mix into a `DurationHistory`, predicts from it (`DurationHistory::predict`), then \
         draws the run itself and polls it through the state machine as above; the other two \
         policies poll the same runs. *Worst lag* is the largest over the {SEEDED_RUNS} runs \
         (with the run it happened in), *p95 lag* the 95th percentile; *late* counts runs over the issue's bound for the mix \
         (±10 %: max(60 s, 2 % of the run); ±30 %: max(60 s, 5 %); outliers: 10 min). The \
         history holds the runs' true durations; deployed, collect records the middle of the \
         last two polls, off by at most half a lag.\n",
        SEEDED_RUNS / 10
    );
    let mut table = Table::new([
        "workflow",
        "mix",
        "policy",
        "worst lag",
        "p95 lag",
        "largest lag ÷ its run",
        "late",
        "polls mean",
        "polls max",
        "transitions mean",
    ]);
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL {
            for (p, name) in names.iter().enumerate() {
                let c = cell(length, mix, p);
                let worst = c.worst(|_| true).expect("runs");
                table.row([
                    human_seconds(length),
                    mix.label().to_owned(),
                    name.to_string(),
                    format!(
                        "{} s (run of {} s{})",
                        worst.outcome.lag_seconds,
                        worst.finish,
                        if worst.outlier { ", an outlier" } else { "" }
                    ),
                    format!("{} s", c.p95_lag()),
                    format!("{:.1} %", 100.0 * c.worst_fraction()),
                    format!("{}/{}", c.late(), c.runs.len()),
                    format!("{:.1}", c.mean_polls()),
                    c.max_polls().to_string(),
                    format!("{:.1}", c.mean_transitions()),
                ]);
            }
        }
    }
    println!("{}", table.markdown());

    println!("**Cost per 1,000 runs by line item** (USD; mean over the {SEEDED_RUNS} runs)\n");
    let mut table = Table::new([
        "workflow",
        "mix",
        "policy",
        "Step Functions",
        "Lambda requests",
        "Lambda GB-s",
        "S3 GET",
        "S3 PUT",
        "total",
        "vs fixed 60 s",
    ]);
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL {
            let fixed = cell(length, mix, 2).cost(storage).total();
            for (p, name) in names.iter().enumerate() {
                let c = cell(length, mix, p).cost(storage);
                table.row([
                    human_seconds(length),
                    mix.label().to_owned(),
                    name.to_string(),
                    usd(c.transitions),
                    usd(c.lambda_requests),
                    usd(c.lambda_compute),
                    usd(c.s3_gets),
                    usd(c.s3_puts),
                    usd(c.total()),
                    ratio(c.total(), fixed),
                ]);
            }
        }
    }
    println!("{}", table.markdown());

    // Over the mix: 1,000 runs of each of the three workflows together.
    let over_mix = |mix: Mix, policy: usize| -> f64 {
        HISTORY_LENGTHS
            .iter()
            .map(|l| cell(*l, mix, policy).cost(storage).total())
            .sum()
    };
    println!(
        "**Cost over the mix** — 1,000 runs of each of the three workflows together (USD), \
         against fixed 60 s:\n"
    );
    let mut table = Table::new(["mix", "runbridge", "adaptive before issue 26", "fixed 60 s"]);
    for mix in Mix::ALL {
        let fixed = over_mix(mix, 2);
        table.row([
            mix.label().to_owned(),
            format!(
                "{} ({})",
                usd(over_mix(mix, 0)),
                ratio(over_mix(mix, 0), fixed)
            ),
            format!(
                "{} ({})",
                usd(over_mix(mix, 1)),
                ratio(over_mix(mix, 1), fixed)
            ),
            usd(fixed),
        ]);
    }
    println!("{}", table.markdown());

    println!("**Targets for workflows with history (issue 26), runbridge's plan**\n");
    for mix in Mix::ALL {
        let mut lines = Vec::new();
        for length in HISTORY_LENGTHS {
            let c = cell(length, mix, 0);
            let worst = c.worst(|_| true).expect("runs");
            // The bound of the run the worst lag happened in; `late` counts every run.
            let bound = mix.lag_target(worst.finish);
            let mut line = format!(
                "{}: worst lag {} ({} of {} runs over their bound)",
                human_seconds(length),
                at_most(worst.outcome.lag_seconds as f64, bound as f64, "s"),
                c.late(),
                c.runs.len()
            );
            if let (Some(target), 21_600) = (mix.polls_target_6h(), length) {
                line.push_str(&format!(
                    "; polls per 6 h run ≤ {target}: {}",
                    at_most(c.max_polls() as f64, target as f64, "polls")
                ));
            }
            if mix == Mix::Outliers {
                let outliers = c.worst(|r| r.outlier);
                let others = c.worst(|r| !r.outlier).expect("runs that are no outlier");
                line.push_str(&format!(
                    "; the outliers ({} runs) all polled to their end, the latest noticed {} s \
                     after it; the other runs at most {} s late, {} of them over max(60 s, 2 % \
                     of the run)",
                    c.runs.iter().filter(|r| r.outlier).count(),
                    outliers.map_or(0, |r| r.outcome.lag_seconds),
                    others.outcome.lag_seconds,
                    c.runs
                        .iter()
                        .filter(|r| !r.outlier
                            && r.outcome.lag_seconds > Mix::Tight.lag_target(r.finish))
                        .count()
                ));
            }
            let ratio_here = c.cost(storage).total() / cell(length, mix, 2).cost(storage).total();
            line.push_str(&format!(
                "; cost ≤ {TARGET_COST_RATIO}× fixed 60 s at this length: {}",
                ratio_at_most(ratio_here, TARGET_COST_RATIO)
            ));
            lines.push(line);
        }
        println!(
            "- {} (lag bound {}): {}; cost over the mix ≤ {TARGET_COST_RATIO}× fixed 60 s: {}",
            mix.label(),
            mix.target_text(),
            lines.join("; "),
            ratio_at_most(over_mix(mix, 0) / over_mix(mix, 2), TARGET_COST_RATIO)
        );
    }
    println!();

    // What the history buys against the policy it replaced, in this run's figures.
    let summary: Vec<String> = HISTORY_LENGTHS
        .iter()
        .map(|l| {
            let (plan, old, fixed) = (
                cell(*l, Mix::Tight, 0),
                cell(*l, Mix::Tight, 1),
                cell(*l, Mix::Tight, 2),
            );
            let lag = |c: &Cell| c.worst(|_| true).map_or(0, |r| r.outcome.lag_seconds);
            format!(
                "{}: worst lag {} s → {} s, polls {:.1} → {:.1} (fixed 60 s: {:.1})",
                human_seconds(*l),
                lag(old),
                lag(plan),
                old.mean_polls(),
                plan.mean_polls(),
                fixed.mean_polls()
            )
        })
        .collect();
    println!(
        "**What the history buys** (±10 %, the adaptive policy before issue 26 → runbridge's \
         plan, mean polls per run): {}. On a 5 min workflow a fixed minute is already \
         within the lag target, and the plan, whose lag target there is that same minute, \
         cannot poll much less; the fixed per-run costs (trigger, collect, their requests) \
         weigh more there too.\n",
        summary.join("; ")
    );
    Ok(())
}
