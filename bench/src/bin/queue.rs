//! AMC's concurrency queue (issue 23): requests over an instance's limit (10 running executions)
//! park on a task token (`WaitForSlot`) and are admitted in arrival order when a slot frees, on
//! the AMC simulator, through the deployed state machine and the real handlers.
//!
//! Measured, each on its own local deployment and simulator:
//! - 50 requests for one instance at once, after a few warm-up runs of the same workflow (so its
//!   history predicts the end and holders notice it quickly): the most executions the instance
//!   had active, AMC's 429 refusals, requests the trigger could not take (dead letters in a
//!   deployment), first request → last manifest against the ideal ⌈50/10⌉ × the run time, and
//!   admissions out of arrival order. Baseline, same run: the queue switched off
//!   (`amc.max_concurrent` = 0), as every version before the queue behaved.
//! - Per run, from the executions' histories and counting wrappers around the ledger, slots and
//!   history ports (`runbridge_bench::storage`): state transitions and storage requests of a run
//!   that waited for a slot against one admitted at once (and one without the queue), and polls
//!   per holder with and without waiters.
//! - 30 instances × 30 requests each, at once.
//! - A holder that crashes while others wait: its execution dies (every call of its function
//!   fails from the poll that would have seen its run end) without giving the slot back, which
//!   is taken over when its lease runs out.
//!
//! The simulator's clock runs `speed` times faster than real time; every millisecond of real
//! processing is `speed` ms of simulated time, so the overhead above the ideal includes that.
//!
//! Usage: `cargo run --release -p runbridge-bench --bin queue` (prints a Markdown section).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{DirHistory, LocalConfig, LocalDeployment, Simulators, HISTORY_DIR};
use runbridge_asl::{Execution, TaskFailure, TaskInvoker};
use runbridge_bench::storage::{
    task_run, AttributedTasks, Counter, CountingHistory, CountingLedger, CountingSlots, Requests,
    ScopeWrite,
};
use runbridge_bench::{at_most, ratio_at_most, Table};
use runbridge_core::{
    Clock, HandleRef, IdempotencyKey, LedgerEntry, Manifest, OffsetDateTime, Prediction,
    RunRequest, RunState, VendorKind, ADMISSION_LEASE, DEFAULT_PROFILE,
};
use runbridge_handlers::{History, Ledger};
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use serde_json::Value;

/// AMC's limit of PENDING + RUNNING executions per instance, and the queue's.
const LIMIT: u32 = 10;
/// Simulated seconds each AMC run takes.
const RUN_SECONDS: f64 = 600.0;
/// Runs of the workflow before a measurement, so that its history predicts the end: a first
/// round without history (polled by the default plan, so their recorded durations — the
/// middle of the last two polls — are off by up to half a lag), then a round predicted from it
/// (nobody waits: as many as the limit), which outnumbers the first in the history.
const WARM_UP_ROUNDS: [usize; 2] = [3, LIMIT as usize];
/// The instance of `examples/amc.json`.
const INSTANCE: &str = "amcabc123def";
/// Requests in the one-instance measurement.
const RUNS: usize = 50;
/// Instances and requests per instance in the many-instance measurement.
const INSTANCES: usize = 30;
const RUNS_PER_INSTANCE: usize = 30;
/// Requests in the crash measurement: enough that runs still wait when the crashed holder's
/// lease (`ADMISSION_LEASE` after its admission) runs out.
const CRASH_RUNS: usize = 100;
/// Simulated seconds per real second: the one-instance and crash measurements, and the
/// 30-instance one (slower, so that 900 runs' processing on a shared machine adds little
/// simulated time).
const SPEED: f64 = 100.0;
const SPEED_MANY: f64 = 25.0;

/// The states of the poll loop and the ending every run passes, with or without the queue.
const LOOP_STATES: [&str; 6] = [
    "IsQueued",
    "WaitBeforePoll",
    "Poll",
    "IsRunFinished",
    "Collect",
    "RunSucceeded",
];

fn request(instance: &str, id: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amc.json");
    let mut r: Value =
        serde_json::from_slice(&std::fs::read(path).expect("examples/amc.json")).unwrap();
    r["request_id"] = id.into();
    r["instance_id"] = instance.into();
    serde_json::to_vec(&r).unwrap()
}

/// Makes one run's execution die: from the first poll at or after its vendor run's end, every
/// call of its functions fails with an error nothing retries, before the handler runs — so the
/// poll that would give the slot back never happens, nor does the failure record's release.
struct CrashingTasks {
    inner: Arc<dyn TaskInvoker>,
    victim: Arc<Mutex<Option<String>>>,
    crashed: Mutex<bool>,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl TaskInvoker for CrashingTasks {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let is_victim =
            self.victim.lock().expect("victim lock").as_deref() == Some(task_run(&input).as_str());
        if is_victim {
            let mut crashed = self.crashed.lock().expect("crashed lock");
            if !*crashed && input["step"] == "poll" {
                let handle: HandleRef =
                    serde_json::from_value(input["handle"].clone()).expect("a handle");
                let age = (self.clock.now() - handle.submitted_at).as_seconds_f64();
                *crashed = handle.vendor_run_id.is_some() && age >= RUN_SECONDS;
            }
            if *crashed {
                return Err(TaskFailure::new(
                    "Crashed",
                    "the benchmark crashed this run's function",
                ));
            }
        }
        self.inner.invoke(resource, input).await
    }
}

/// One local deployment on its own AMC simulator, every storage port counted.
struct Bench {
    sim: SimHandle,
    dir: tempfile::TempDir,
    deployment: Arc<LocalDeployment>,
    counter: Arc<Counter>,
    slots: Arc<OnceLock<Arc<CountingSlots>>>,
    victim: Arc<Mutex<Option<String>>>,
}

/// One run, once its execution ended.
struct Run {
    key: String,
    execution: Execution,
    manifest: Option<Manifest>,
    entry: LedgerEntry,
    storage: Requests,
    /// The queue's share of `storage`: the enqueue and admit steps, and the slot requests of
    /// the poll and collect steps (lease renewals, the release).
    queue_storage: Requests,
    /// That share by step: enqueue, admit, polls (slot requests), collect (slot requests).
    queue_steps: [Requests; 4],
}

impl Run {
    fn succeeded(&self) -> bool {
        self.manifest
            .as_ref()
            .is_some_and(|m| m.state == RunState::Succeeded)
    }

    fn polls(&self) -> usize {
        self.execution
            .states_entered()
            .iter()
            .filter(|s| **s == "Poll")
            .count()
    }

    /// Transitions beyond the poll loop and its ending: the queue's states and their retries.
    fn queue_transitions(&self) -> u64 {
        let loop_states = self
            .execution
            .states_entered()
            .iter()
            .filter(|s| LOOP_STATES.contains(s))
            .count() as u64;
        self.execution.transitions - loop_states
    }

    fn arrived(&self) -> OffsetDateTime {
        self.entry
            .queue()
            .map_or(self.entry.claimed_at, |q| q.since)
    }
}

impl Bench {
    async fn start(limit: Option<u32>, speed: f64, crash: bool) -> anyhow::Result<Self> {
        let sim = SimHandle::start(SimConfig {
            speed,
            token_ttl_seconds: 365 * 86_400,
            download_url_ttl_seconds: 365 * 86_400,
            default_script: RunScript {
                queue_seconds: 0.0,
                run_seconds: RUN_SECONDS,
                rows: 100,
                files: 1,
                ..RunScript::default()
            },
        })
        .await?;
        let dir = tempfile::tempdir()?;
        let mut config = LocalConfig::on_simulators(
            Simulators::Here {
                sim: &sim,
                profiles: &[],
            },
            &RetryConfig::fast(),
            dir.path().join("out"),
            dir.path().join("_ledger"),
        )?;
        config.vendors = config
            .vendors
            .with_limit(VendorKind::Amc, DEFAULT_PROFILE, limit);
        let counter = Arc::new(Counter::default());
        let slots = Arc::new(OnceLock::new());
        let victim = Arc::new(Mutex::new(None));
        let c = counter.clone();
        config.wrap_ledger = Some(Box::new(move |inner| {
            Arc::new(CountingLedger { inner, counter: c })
        }));
        let c = counter.clone();
        config.wrap_history = Some(Box::new(move |inner| {
            Arc::new(CountingHistory { inner, counter: c })
        }));
        let (c, s, clock) = (counter.clone(), slots.clone(), config.clock.clone());
        config.wrap_slots = Some(Box::new(move |inner| {
            let counting = Arc::new(CountingSlots::new(inner, c).with_clock(clock));
            let _ = s.set(counting.clone());
            counting
        }));
        let (v, clock) = (victim.clone(), config.clock.clone());
        config.wrap_tasks = Some(Box::new(move |inner| {
            let inner: Arc<dyn TaskInvoker> = if crash {
                Arc::new(CrashingTasks {
                    inner,
                    victim: v,
                    crashed: Mutex::new(false),
                    clock,
                })
            } else {
                inner
            };
            Arc::new(AttributedTasks { inner })
        }));
        let deployment = Arc::new(LocalDeployment::new(config)?);
        Ok(Self {
            sim,
            dir,
            deployment,
            counter,
            slots,
            victim,
        })
    }

    fn now(&self) -> OffsetDateTime {
        self.sim.sim.clock.now()
    }

    /// Triggers `requests` (instance, request id) at once: the keys taken, and how many the
    /// trigger refused.
    async fn trigger(&self, requests: &[(String, String)]) -> (Vec<IdempotencyKey>, usize) {
        let triggers: Vec<_> = requests
            .iter()
            .map(|(instance, id)| {
                let (d, body) = (self.deployment.clone(), request(instance, id));
                tokio::spawn(async move { d.trigger.handle_bytes(&body, None).await })
            })
            .collect();
        let (mut keys, mut refused) = (Vec::new(), 0);
        for t in triggers {
            match t.await.expect("trigger task") {
                Ok(t) => keys.push(t.key().clone()),
                Err(_) => refused += 1,
            }
        }
        (keys, refused)
    }

    /// Waits for every run of `keys` to end.
    async fn settle(&self, keys: &[IdempotencyKey]) -> anyhow::Result<Vec<Run>> {
        let mut runs = Vec::new();
        for key in keys {
            let (execution, manifest) = self
                .deployment
                .wait(key)
                .await?
                .with_context(|| format!("{key} has no execution"))?;
            let entry = self
                .deployment
                .ledger
                .get(key)
                .await?
                .with_context(|| format!("{key} has no ledger entry"))?;
            let run = key.as_str();
            let slots_of = |step: &str| {
                let r = self.counter.of_step(run, step);
                Requests {
                    slots_gets: r.slots_gets,
                    slots_puts: r.slots_puts,
                    slots_refused: r.slots_refused,
                    ..Requests::default()
                }
            };
            let queue_steps = [
                self.counter.of_step(run, "enqueue"),
                self.counter.of_step(run, "admit"),
                slots_of("poll"),
                slots_of("collect"),
            ];
            let queue_storage = queue_steps
                .iter()
                .fold(Requests::default(), |sum, r| sum.plus(r));
            runs.push(Run {
                key: key.to_string(),
                execution,
                manifest,
                entry,
                storage: self.counter.of(run),
                queue_storage,
                queue_steps,
            });
        }
        Ok(runs)
    }

    /// The warm-up rounds ([`WARM_UP_ROUNDS`]) on every instance of `instances`.
    async fn warm_up(&self, instances: &[String]) -> anyhow::Result<()> {
        for (round, count) in WARM_UP_ROUNDS.iter().enumerate() {
            let (runs, _) = self
                .wave(&format!("warm{round}"), instances, *count)
                .await?;
            ensure!(runs.iter().all(Run::succeeded), "a warm-up run failed");
        }
        Ok(())
    }

    /// The prediction the workflow of `instance` has now.
    async fn prediction(&self, instance: &str) -> anyhow::Result<Option<Prediction>> {
        let request = RunRequest::from_json(&request(instance, "any"))?.resolve(self.now());
        let history = DirHistory::new(self.dir.path().join("_ledger").join(HISTORY_DIR));
        Ok(history.read(&request.workflow_key()).await?.predict())
    }

    /// Triggers `count` runs per instance at once and waits for them all.
    async fn wave(
        &self,
        tag: &str,
        instances: &[String],
        count: usize,
    ) -> anyhow::Result<(Vec<Run>, usize)> {
        let requests: Vec<(String, String)> = (0..count)
            .flat_map(|i| {
                instances
                    .iter()
                    .enumerate()
                    .map(move |(n, instance)| (instance.clone(), format!("{tag}-{n:02}-{i:02}")))
            })
            .collect();
        let (keys, refused) = self.trigger(&requests).await;
        Ok((self.settle(&keys).await?, refused))
    }

    fn writes(&self) -> Vec<ScopeWrite> {
        self.slots.get().map(|s| s.writes()).unwrap_or_default()
    }

    fn max_active(&self, instances: &[String]) -> u64 {
        instances
            .iter()
            .map(|i| {
                self.sim
                    .sim
                    .control
                    .max_observed(&format!("amc.active.{i}"))
            })
            .max()
            .unwrap_or(0)
    }

    fn amc_429s(&self) -> u64 {
        self.sim.sim.control.requests("amc.create.over_limit")
    }
}

/// A waiter given a slot by a stored change of its scope's record.
#[derive(Debug, Clone)]
struct Admission {
    scope: String,
    key: String,
    at: OffsetDateTime,
    /// The run whose step made the change (itself: admitted when it asked, never waited).
    by: Option<String>,
    /// The runs still in line after the change.
    still_waiting: Vec<String>,
    /// The change's place among the writes.
    write: usize,
}

fn admissions(writes: &[ScopeWrite]) -> Vec<Admission> {
    let mut out = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        for h in &w.after.holders {
            if w.before.holders.iter().all(|b| b.key != h.key) {
                out.push(Admission {
                    scope: w.scope.clone(),
                    key: h.key.to_string(),
                    at: h.since,
                    by: w.by.clone(),
                    still_waiting: w.after.waiting.iter().map(|x| x.key.to_string()).collect(),
                    write: i,
                });
            }
        }
    }
    out
}

/// A slot freed while runs waited in its scope's line, and when the next run had it.
#[derive(Debug, Clone)]
struct Handover {
    /// The change that freed it also gave it to the oldest waiter.
    same_write: bool,
    /// Seconds from the change that freed the slot to the change that gave it on.
    admitted_after: f64,
    /// Seconds from the change that freed the slot to the next holder's submission at AMC
    /// (its wake-up by `SendTaskSuccess`, the Admit step, the submit).
    submitted_after: Option<f64>,
}

/// Every slot freed while others waited (a holder left, or its lease was dropped), from the
/// scope records' stored changes, with the runs' submissions.
fn handovers(writes: &[ScopeWrite], runs: &[Run]) -> Vec<Handover> {
    let submitted: HashMap<&str, OffsetDateTime> = runs
        .iter()
        .filter_map(|r| Some((r.key.as_str(), r.entry.run()?.submitted_at)))
        .collect();
    let mut out = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let Some(freed_at) = w.at else { continue };
        if w.before.waiting.is_empty() {
            continue;
        }
        let gone = w
            .before
            .holders
            .iter()
            .filter(|h| w.after.holders.iter().all(|a| a.key != h.key));
        for holder in gone {
            // The next run to hold that slot number (the lowest free one goes first).
            let next = writes[i..]
                .iter()
                .enumerate()
                .filter(|(_, x)| x.scope == w.scope)
                .find_map(|(j, x)| {
                    let heir = x.after.holders.iter().find(|h| {
                        h.slot == holder.slot && x.before.holders.iter().all(|b| b.key != h.key)
                    })?;
                    Some((j == 0, x.at?, heir.key.to_string()))
                });
            let Some((same_write, admitted_at, heir)) = next else {
                continue;
            };
            out.push(Handover {
                same_write,
                admitted_after: seconds(freed_at, admitted_at),
                submitted_after: submitted
                    .get(heir.as_str())
                    .map(|at| seconds(freed_at, *at)),
            });
        }
    }
    out
}

/// "n of m in the same change; freed → next holder submitted at AMC: mean, p95, max".
fn describe_handovers(handovers: &[Handover], speed: f64) -> String {
    if handovers.is_empty() {
        return "no slot was freed while others waited".to_owned();
    }
    let same = handovers.iter().filter(|h| h.same_write).count();
    let admitted = handovers
        .iter()
        .map(|h| h.admitted_after)
        .fold(0.0, f64::max);
    let mut submitted: Vec<f64> = handovers.iter().filter_map(|h| h.submitted_after).collect();
    submitted.sort_by(f64::total_cmp);
    let p95 = submitted
        .get((submitted.len() * 95).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);
    let max = submitted.last().copied().unwrap_or(f64::NAN);
    format!(
        "{same} of {} freed slots given to the oldest waiter by the change that freed them \
         (at most {admitted:.1} s later otherwise); freed → the next holder submitted at AMC \
         (its wake-up, Admit, the submit): mean {:.1} s, p95 {p95:.1} s, max {max:.1} s \
         simulated, i.e. {:.0} / {:.0} / {:.0} ms of real processing at {speed:.0}×",
        handovers.len(),
        mean(submitted.iter().copied()),
        1_000.0 * mean(submitted.iter().copied()) / speed,
        1_000.0 * p95 / speed,
        1_000.0 * max / speed,
    )
}

/// The scope record's requests of a run's enqueue and admit steps (what admitting it costs).
fn admission_requests(run: &Run) -> u64 {
    let [enqueue, admit, _, _] = run.queue_steps;
    enqueue.slots_gets + enqueue.slots_puts + admit.slots_gets + admit.slots_puts
}

/// "mean (max) scope-record requests per admission, deepest line n".
fn describe_admission_cost(runs: &[Run], writes: &[ScopeWrite]) -> String {
    let per_run: Vec<u64> = runs.iter().map(admission_requests).collect();
    let refused = runs
        .iter()
        .map(|r| r.queue_steps[0].slots_refused + r.queue_steps[1].slots_refused);
    let deepest = writes
        .iter()
        .map(|w| w.after.waiting.len())
        .max()
        .unwrap_or(0);
    format!(
        "{:.1} mean, {} max scope-record requests (GET + conditional PUT) per admission, of \
         which {:.1} conditional PUTs refused because another change of the record came first \
         (each refusal costs a GET and a PUT more), with up to {deepest} runs in line",
        mean(per_run.iter().map(|n| *n as f64)),
        per_run.iter().max().copied().unwrap_or(0),
        mean(refused.map(|n| n as f64)),
    )
}

/// Admissions out of arrival order among `runs`.
#[derive(Debug, Clone, Copy, Default)]
struct Order {
    /// Admissions: each run's first.
    admitted: usize,
    /// Runs admitted while an earlier arrival was in their scope's line and stayed there.
    in_line: usize,
    /// Runs admitted after an earlier arrival had arrived and before that one was admitted.
    by_times: usize,
    /// Of `by_times`, those where no earlier arrival passed over had reached the line yet
    /// (its execution had not yet asked for a slot when the later one took a free one).
    not_yet_in_line: usize,
    /// The largest arrival gap between a run and an earlier arrival it passed, seconds.
    largest_gap: f64,
}

/// Each run's arrival (its ledger entry's `queue().since`), by key.
fn arrivals(runs: &[Run]) -> HashMap<String, OffsetDateTime> {
    runs.iter().map(|r| (r.key.clone(), r.arrived())).collect()
}

/// Admissions out of arrival order, from the scope records' stored changes (`writes`) and the
/// runs' arrivals; runs without an arrival are left out.
fn out_of_order(arrivals: &HashMap<String, OffsetDateTime>, writes: &[ScopeWrite]) -> Order {
    let admissions = admissions(writes);
    // Arrival order as the scope record orders its line: by time, then by key.
    let arrived: HashMap<&str, (OffsetDateTime, &str)> = arrivals
        .iter()
        .map(|(k, at)| (k.as_str(), (*at, k.as_str())))
        .collect();
    // When each run first appears in its scope's record (in line or holding).
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        let keys = w.after.waiting.iter().map(|x| &x.key);
        for key in keys.chain(w.after.holders.iter().map(|h| &h.key)) {
            first_seen.entry(key.to_string()).or_insert(i);
        }
    }
    let mut first: BTreeMap<&str, &Admission> = BTreeMap::new();
    for a in &admissions {
        first.entry(a.key.as_str()).or_insert(a);
    }
    let mut order = Order {
        admitted: first.len(),
        ..Order::default()
    };
    for a in first.values() {
        let Some(mine) = arrived.get(a.key.as_str()) else {
            continue;
        };
        if a.still_waiting
            .iter()
            .any(|w| arrived.get(w.as_str()).is_some_and(|theirs| theirs < mine))
        {
            order.in_line += 1;
        }
        let passed: Vec<&&Admission> = first
            .values()
            .filter(|b| {
                b.scope == a.scope
                    && arrived
                        .get(b.key.as_str())
                        .is_some_and(|theirs| theirs < mine && theirs.0 <= a.at && b.at > a.at)
            })
            .collect();
        if passed.is_empty() {
            continue;
        }
        order.by_times += 1;
        if passed
            .iter()
            .all(|b| first_seen.get(&b.key).is_some_and(|seen| *seen > a.write))
        {
            order.not_yet_in_line += 1;
        }
        for b in passed {
            let gap = seconds(arrived[b.key.as_str()].0, mine.0);
            order.largest_gap = order.largest_gap.max(gap);
        }
    }
    order
}

impl Order {
    fn cell(&self) -> String {
        format!("{} / {}", self.in_line, self.by_times)
    }

    fn describe(&self) -> String {
        format!(
            "{} of {} admissions out of order in line, {} by times{}",
            self.in_line,
            self.admitted,
            self.by_times,
            if self.by_times > 0 {
                format!(
                    " ({} of them passed only runs whose executions had not yet asked for a \
                     slot; arrivals at most {:.1} s apart)",
                    self.not_yet_in_line, self.largest_gap
                )
            } else {
                String::new()
            }
        )
    }
}

fn describe_prediction(p: Option<&Prediction>) -> String {
    match p {
        Some(p) => format!(
            "median {} s, usual range {}–{} s, from {} runs",
            p.median_seconds, p.low_seconds, p.high_seconds, p.runs
        ),
        None => "none".to_owned(),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

fn seconds(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64()
}

/// The first request → last manifest of `runs`, from `started`.
fn span(started: OffsetDateTime, runs: &[Run]) -> f64 {
    runs.iter()
        .filter_map(|r| r.manifest.as_ref())
        .map(|m| seconds(started, m.finished_at))
        .fold(0.0, f64::max)
}

/// Per-run figures of a class of runs, for the table.
fn class_row(name: &str, runs: &[&Run]) -> [String; 8] {
    let n = runs.len() as f64;
    let sum = |f: &dyn Fn(&Run) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
    let mean_requests = |f: &dyn Fn(&Run) -> Requests| {
        let mut total = Requests::default();
        for r in runs {
            total = total.plus(&f(r));
        }
        total
    };
    let all = mean_requests(&|r| r.storage);
    let queue = mean_requests(&|r| r.queue_storage);
    let per_run = |r: Requests| {
        let div = |x: u64| x as f64 / n;
        format!(
            "{:.1} (ledger {:.1}, slots {:.1}, history {:.1}; {:.1} GET + {:.1} PUT)",
            div(r.state_requests()),
            div(r.ledger_gets + r.ledger_puts + r.ledger_deletes),
            div(r.slots_gets + r.slots_puts),
            div(r.history_gets + r.history_puts),
            div(r.ledger_gets + r.slots_gets + r.history_gets),
            div(r.ledger_puts + r.slots_puts + r.history_puts),
        )
    };
    [
        name.to_owned(),
        runs.len().to_string(),
        format!("{:.1}", sum(&|r| r.polls() as f64)),
        format!("{:.1}", sum(&|r| r.execution.transitions as f64)),
        format!("{:.1}", sum(&|r| r.queue_transitions() as f64)),
        per_run(all),
        per_run(queue),
        format!(
            "{:.0} s",
            sum(&|r| r
                .entry
                .run()
                .map_or(0.0, |run| seconds(r.arrived(), run.submitted_at)))
        ),
    ]
}

fn mean_of(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    mean(runs.iter().map(|r| f(r)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let one = vec![INSTANCE.to_owned()];

    // The queue on one instance: warm-up, then 10 runs (nobody waits), then 50.
    let queued = Bench::start(Some(LIMIT), SPEED, false).await?;
    queued.warm_up(&one).await?;
    let prediction = queued.prediction(INSTANCE).await?;
    let before_429s = queued.amc_429s();
    let writes_before = queued.writes().len();
    let started = queued.now();
    let (fifty, fifty_refused) = queued.wave("q", &one, RUNS).await?;
    let fifty_span = span(started, &fifty);
    let fifty_writes = queued.writes()[writes_before..].to_vec();
    let fifty_admissions = admissions(&fifty_writes);
    let fifty_order = out_of_order(&arrivals(&fifty), &fifty_writes);
    let fifty_429s = queued.amc_429s() - before_429s;
    let max_active = queued.max_active(&one);
    let dead_letters = queued.deployment.dead_letters.sent().len();

    // Baseline: the queue switched off, the same history warm-up.
    let direct = Bench::start(None, SPEED, false).await?;
    direct.warm_up(&one).await?;
    let before_429s = direct.amc_429s();
    let started_direct = direct.now();
    let (direct_runs, direct_refused) = direct.wave("q", &one, RUNS).await?;
    let direct_span = span(started_direct, &direct_runs);
    let direct_completed = direct_runs.iter().filter(|r| r.succeeded()).count();
    let direct_429s = direct.amc_429s() - before_429s;

    // Which runs waited: admitted by another run's change, not when they asked.
    let by_key: HashMap<&str, &Admission> = fifty_admissions
        .iter()
        .map(|a| (a.key.as_str(), a))
        .collect();
    let waited = |r: &Run| {
        by_key
            .get(r.key.as_str())
            .is_some_and(|a| a.by.as_deref() != Some(r.key.as_str()))
    };
    let waiters: Vec<&Run> = fifty.iter().filter(|r| waited(r)).collect();
    let at_once: Vec<&Run> = fifty.iter().filter(|r| !waited(r)).collect();
    let no_queue: Vec<&Run> = direct_runs.iter().filter(|r| r.succeeded()).collect();

    // Holders without waiters: as many runs as the limit, after the same warm-up, so that
    // their history is the one the 50 started with.
    let lone = Bench::start(Some(LIMIT), SPEED, false).await?;
    lone.warm_up(&one).await?;
    let lone_prediction = lone.prediction(INSTANCE).await?;
    let writes_before = lone.writes().len();
    let (alone, _) = lone.wave("alone", &one, LIMIT as usize).await?;
    ensure!(
        alone.iter().all(Run::succeeded),
        "a run without waiters failed"
    );
    let alone_waited = admissions(&lone.writes()[writes_before..])
        .iter()
        .filter(|a| a.by.as_deref() != Some(a.key.as_str()))
        .count();

    // Holders with and without waiters: whether the line was non-empty at any change of the
    // scope's record while the run held its slot.
    let had_waiters = |r: &Run| {
        fifty_writes.iter().any(|w| {
            w.before.holders.iter().any(|h| h.key.as_str() == r.key) && !w.before.waiting.is_empty()
        })
    };
    let holders_with: Vec<&Run> = fifty.iter().filter(|r| had_waiters(r)).collect();
    let holders_without: Vec<&Run> = fifty.iter().filter(|r| !had_waiters(r)).collect();
    let alone_runs: Vec<&Run> = alone.iter().collect();

    // 30 instances × 30 runs at once.
    let many = Bench::start(Some(LIMIT), SPEED_MANY, false).await?;
    let instances: Vec<String> = (0..INSTANCES).map(|n| format!("amcbench{n:04}")).collect();
    many.warm_up(&instances).await?;
    let before_429s = many.amc_429s();
    let writes_before = many.writes().len();
    let started_many = many.now();
    let (many_runs, many_refused) = many.wave("m", &instances, RUNS_PER_INSTANCE).await?;
    let many_span = span(started_many, &many_runs);
    let many_writes = many.writes()[writes_before..].to_vec();
    let many_order = out_of_order(&arrivals(&many_runs), &many_writes);
    let many_completed = many_runs.iter().filter(|r| r.succeeded()).count();
    let many_429s = many.amc_429s() - before_429s;
    let many_max_active = many.max_active(&instances);
    let many_dead_letters = many.deployment.dead_letters.sent().len();

    // A holder crashes while others wait.
    let crash = Bench::start(Some(LIMIT), SPEED, true).await?;
    crash.warm_up(&one).await?;
    let writes_before = crash.writes().len();
    let started_crash = crash.now();
    // The victim arrives first (so it holds a slot), then the others at once.
    let (victim_keys, _) = crash
        .trigger(&[(INSTANCE.to_owned(), "c-victim".to_owned())])
        .await;
    let victim_key = victim_keys
        .first()
        .context("the victim was triggered")?
        .clone();
    *crash.victim.lock().expect("victim lock") = Some(victim_key.to_string());
    let requests: Vec<(String, String)> = (0..CRASH_RUNS - 1)
        .map(|i| (INSTANCE.to_owned(), format!("c-{i:03}")))
        .collect();
    let (mut crash_keys, crash_refused) = crash.trigger(&requests).await;
    crash_keys.insert(0, victim_key.clone());
    let crash_runs = crash.settle(&crash_keys).await?;
    let crash_writes = crash.writes()[writes_before..].to_vec();
    let crash_admissions = admissions(&crash_writes);
    let crash_order = out_of_order(&arrivals(&crash_runs), &crash_writes);
    let victim = &crash_runs[0];
    let others_ok = crash_runs[1..].iter().filter(|r| r.succeeded()).count();
    let crash_dead_letters = crash.deployment.dead_letters.sent().len();
    // The change that dropped the victim's expired hold, and who took its slot.
    let victim_name = victim_key.as_str();
    let victim_admitted = crash_admissions
        .iter()
        .find(|a| a.key == victim_name)
        .map(|a| a.at);
    let takeover = crash_writes.iter().find_map(|w| {
        let held = w
            .before
            .holders
            .iter()
            .find(|h| h.key.as_str() == victim_name)?;
        if w.after
            .holders
            .iter()
            .any(|h| h.key.as_str() == victim_name)
        {
            return None;
        }
        let slot = held.slot;
        let heir = w.after.holders.iter().find(|h| h.slot == slot)?;
        Some((
            held.until,
            heir.key.to_string(),
            heir.since,
            w.before.waiting.clone(),
        ))
    });

    // ----------------------------------------------------------------------------- output
    let ideal = (RUNS as f64 / f64::from(LIMIT)).ceil() * RUN_SECONDS;
    let ideal_many = (RUNS_PER_INSTANCE as f64 / f64::from(LIMIT)).ceil() * RUN_SECONDS;
    println!("## 5. AMC's concurrency limit as a queue\n");
    println!(
        "AMC allows {LIMIT} PENDING + RUNNING executions per instance (the simulator refuses \
         the next with 429). Requests over the limit park on a task token (`WaitForSlot`, \
         `lambda:invoke.waitForTaskToken`) and are admitted in arrival order by whoever frees a \
         slot (issue 23). Each run takes {RUN_SECONDS:.0} simulated seconds; every measurement \
         has its own local deployment (the deployed state machine in the ASL interpreter, the \
         real handlers) and its own simulator, which runs {SPEED:.0}× real time \
         ({SPEED_MANY:.0}× for the 30 instances), so every real millisecond of processing on \
         this shared machine is {SPEED:.0} ms of simulated time in the figures. Before each \
         measurement, warm-up runs of the same workflow on each instance give it a history, so \
         every measured run's polls follow its predicted end (section 1) — durations are the \
         same every run here: {} at once without history (the default plan; collect records \
         the middle of the last two polls, which for those is off by up to half a lag), then \
         {} at once predicted from them, which outnumber them in the history. The {RUNS} \
         started with the prediction {}. Transitions are from each execution's \
         history (`runbridge_asl::Execution`); storage requests are every ledger, slot-record \
         and duration-history call, counted by wrappers around those ports and attributed to \
         the run whose step made it (as S3 requests: a refused conditional PUT counts). \
         `cargo run --release -p runbridge-bench --bin queue`.\n",
        WARM_UP_ROUNDS[0],
        WARM_UP_ROUNDS[1],
        describe_prediction(prediction.as_ref()),
    );

    println!(
        "**{RUNS} requests for one instance at once.** Ideal: ⌈{RUNS}/{LIMIT}⌉ × \
         {RUN_SECONDS:.0} s = {ideal:.0} s. *Out of order, in line*: admitted while an earlier \
         arrival (its ledger entry's `queue().since`) was in the scope's line and stayed there \
         (read from the stored scope records); *by times*: admitted after an earlier arrival \
         had arrived and before that one was admitted.\n"
    );
    let mut table = Table::new([
        "",
        "completed",
        "refused at the trigger (DLQ after retries)",
        "max active at AMC",
        "AMC 429s",
        "first request → last manifest",
        "÷ ideal",
        "out of order (in line / by times)",
    ]);
    let completed = fifty.iter().filter(|r| r.succeeded()).count();
    table.row([
        "queue (`max_concurrent` 10, the default)".to_owned(),
        format!("{completed}/{RUNS}"),
        fifty_refused.to_string(),
        max_active.to_string(),
        fifty_429s.to_string(),
        format!("{fifty_span:.0} s"),
        format!("{:.3}", fifty_span / ideal),
        fifty_order.cell(),
    ]);
    table.row([
        "baseline: no queue (`max_concurrent` 0)".to_owned(),
        format!("{direct_completed}/{RUNS}"),
        direct_refused.to_string(),
        direct.max_active(&one).to_string(),
        direct_429s.to_string(),
        format!("{direct_span:.0} s"),
        if direct_completed == RUNS {
            format!("{:.3}", direct_span / ideal)
        } else {
            format!("n/a ({} never ran)", RUNS - direct_completed)
        },
        "n/a".to_owned(),
    ]);
    println!("{}", table.markdown());

    println!(
        "**Per run** ({RUNS}-request measurement; *waited*: admitted by another run's change of \
         the scope record, *at once*: admitted when it asked; the queue's share is the enqueue \
         and admit steps and the slot requests of polls and collect — lease renewals, the \
         release; means per run):\n"
    );
    let mut table = Table::new([
        "runs",
        "n",
        "polls",
        "transitions",
        "of which the queue's states",
        "storage requests",
        "of which the queue's",
        "arrival → submit",
    ]);
    table.row(class_row("queued, waited for a slot", &waiters));
    table.row(class_row("queued, admitted at once", &at_once));
    table.row(class_row("no queue (baseline deployment)", &no_queue));
    println!("{}", table.markdown());

    println!("The queue's storage requests per run, by step (means):\n");
    let mut table = Table::new([
        "runs",
        "enqueue",
        "admit",
        "polls: slot record (lease renewals, the release)",
        "collect: slot record (release)",
    ]);
    for (name, runs) in [
        ("queued, waited for a slot", &waiters),
        ("queued, admitted at once", &at_once),
    ] {
        let step = |i: usize| {
            let (gets, puts) = (
                mean_of(runs, |r| r.queue_steps[i].gets() as f64),
                mean_of(runs, |r| r.queue_steps[i].puts() as f64),
            );
            format!("{:.1} GET + {:.1} PUT", gets, puts)
        };
        table.row([name.to_owned(), step(0), step(1), step(2), step(3)]);
    }
    println!("{}", table.markdown());

    let total_storage = |runs: &[&Run]| mean_of(runs, |r| r.storage.state_requests() as f64);
    let queue_storage = |runs: &[&Run]| mean_of(runs, |r| r.queue_storage.state_requests() as f64);
    let transitions = |runs: &[&Run]| mean_of(runs, |r| r.execution.transitions as f64);
    let queue_transitions = |runs: &[&Run]| mean_of(runs, |r| r.queue_transitions() as f64);
    let worst_queue_transitions = waiters
        .iter()
        .map(|r| r.queue_transitions())
        .max()
        .unwrap_or(0);
    let worst_queue_storage = waiters
        .iter()
        .map(|r| r.queue_storage.state_requests())
        .max()
        .unwrap_or(0);

    println!(
        "**A freed slot is handed on at once, and admitting costs the same at any depth** \
         (from the stored changes of the scope records, stamped with the simulator's clock, \
         and each run's submission in its ledger entry):\n"
    );
    for (name, writes, runs, speed) in [
        (
            format!("{RUNS} requests, one instance"),
            &fifty_writes,
            &fifty,
            SPEED,
        ),
        (
            format!("{INSTANCES} × {RUNS_PER_INSTANCE}"),
            &many_writes,
            &many_runs,
            SPEED_MANY,
        ),
        (
            format!("{CRASH_RUNS} requests, a crashed holder"),
            &crash_writes,
            &crash_runs,
            SPEED,
        ),
    ] {
        println!(
            "- {name}: {}; {}",
            describe_handovers(&handovers(writes, runs), speed),
            describe_admission_cost(runs, writes)
        );
    }
    println!();

    println!(
        "**Holders poll as if nobody waited** (polls per run; a holder *with waiters* held its \
         slot while the line was not empty at a change of the scope's record; the {LIMIT} \
         alone ran on their own deployment after the same warm-up, and started with the \
         prediction {}):\n",
        describe_prediction(lone_prediction.as_ref())
    );
    let mut table = Table::new(["holders", "runs", "polls mean", "polls min", "polls max"]);
    for (name, runs) in [
        (format!("{LIMIT} requests alone, nobody waits"), &alone_runs),
        (format!("of the {RUNS}, with waiters"), &holders_with),
        (format!("of the {RUNS}, without waiters"), &holders_without),
    ] {
        table.row([
            name,
            runs.len().to_string(),
            format!("{:.1}", mean_of(runs, |r| r.polls() as f64)),
            runs.iter()
                .map(|r| r.polls())
                .min()
                .unwrap_or(0)
                .to_string(),
            runs.iter()
                .map(|r| r.polls())
                .max()
                .unwrap_or(0)
                .to_string(),
        ]);
    }
    println!("{}", table.markdown());

    println!(
        "**{INSTANCES} instances × {RUNS_PER_INSTANCE} requests each, at once** ({} runs, at \
         {SPEED_MANY:.0}×; ideal ⌈{RUNS_PER_INSTANCE}/{LIMIT}⌉ × {RUN_SECONDS:.0} s = \
         {ideal_many:.0} s):\n",
        INSTANCES * RUNS_PER_INSTANCE
    );
    let mut table = Table::new([
        "completed",
        "refused at the trigger",
        "dead letters",
        "max active at AMC (any instance)",
        "AMC 429s",
        "first request → last manifest",
        "÷ ideal",
        "out of order (in line / by times)",
        "transitions per run",
        "storage requests per run",
    ]);
    let many_all: Vec<&Run> = many_runs.iter().collect();
    table.row([
        format!("{many_completed}/{}", INSTANCES * RUNS_PER_INSTANCE),
        many_refused.to_string(),
        many_dead_letters.to_string(),
        many_max_active.to_string(),
        many_429s.to_string(),
        format!("{many_span:.0} s"),
        format!("{:.3}", many_span / ideal_many),
        many_order.cell(),
        format!("{:.1}", transitions(&many_all)),
        format!("{:.1}", total_storage(&many_all)),
    ]);
    println!("{}", table.markdown());

    println!(
        "**A holder crashes while others wait.** {CRASH_RUNS} requests for one instance; the \
         first to arrive holds a slot, and from the poll that would see its run end, every \
         call of its functions fails with an error nothing retries (its execution ends without \
         giving the slot back: no release by that poll, none by the failure record). Its slot \
         is taken over when its lease (`ADMISSION_LEASE`, {} min after admission; polls of a \
         short run never extend it) has run out, by the next change of the scope's record.\n",
        ADMISSION_LEASE.whole_minutes()
    );
    let victim_state = format!(
        "{:?}, {}",
        victim.execution.status,
        if victim.manifest.is_some() {
            "with a manifest"
        } else {
            "no manifest"
        }
    );
    match (&takeover, victim_admitted) {
        (Some((until, heir, at, line)), Some(admitted)) => {
            let heir_arrival = crash_runs
                .iter()
                .find(|r| &r.key == heir)
                .map(|r| r.arrived());
            let oldest = line
                .iter()
                .filter_map(|w| crash_runs.iter().find(|r| r.key == w.key.as_str()))
                .map(|r| (r.arrived(), r.key.clone()))
                .min();
            let heir_was_oldest = oldest.as_ref().is_some_and(|(_, k)| k == heir);
            println!(
                "- the crashed holder was admitted {:.0} s after the first request; its \
                 execution ended {victim_state}; its lease ran out {:.0} s after its admission; \
                 the slot was taken over {:.0} s after that, by {} — {} of the {} runs then in \
                 line, arrived {:.0} s after the first request",
                seconds(started_crash, admitted),
                seconds(admitted, *until),
                seconds(*until, *at),
                heir,
                if heir_was_oldest {
                    "the oldest"
                } else {
                    "**not** the oldest"
                },
                line.len(),
                heir_arrival.map_or(f64::NAN, |a| seconds(started_crash, a)),
            );
        }
        _ => println!(
            "- **the crashed holder's slot was never taken over** (its execution ended \
             {victim_state})"
        ),
    }
    println!(
        "- the other runs: {others_ok}/{} completed, {crash_refused} refused at the trigger, \
         {crash_dead_letters} dead letters; {}; first request → last manifest {:.0} s\n",
        CRASH_RUNS - 1,
        crash_order.describe(),
        span(started_crash, &crash_runs)
    );

    println!("**Targets (issue 23)**\n");
    println!(
        "- {RUNS} runs on one instance in ≤ 1.05× the ideal: {}",
        ratio_at_most(fifty_span / ideal, 1.05)
    );
    println!(
        "- admissions in arrival order (0 out of order): {}: {}; 30 × 30: {}; crash: {}",
        if fifty_order.in_line == 0 && fifty_order.by_times == 0 {
            "met"
        } else if fifty_order.in_line == 0 {
            "met in line, **missed** by times"
        } else {
            "**missed**"
        },
        fifty_order.describe(),
        many_order.describe(),
        crash_order.describe()
    );
    println!(
        "- a queued run costs ≤ 6 more state transitions than a run that never waits: waited \
         vs admitted at once {} (means, {:.1} vs {:.1}; the queue's states {:.1} vs {:.1}, at \
         most {worst_queue_transitions} for a run that waited); against a run without the \
         queue the queue's states add {:.1} — {}",
        at_most(
            transitions(&waiters) - transitions(&at_once),
            6.0,
            "transitions"
        ),
        transitions(&waiters),
        transitions(&at_once),
        queue_transitions(&waiters),
        queue_transitions(&at_once),
        queue_transitions(&waiters),
        at_most(queue_transitions(&waiters), 6.0, "transitions"),
    );
    println!(
        "- a queued run costs ≤ 10 more storage requests than a run that never waits: waited vs \
         admitted at once {} (means, {:.1} vs {:.1}; the queue's share {:.1} vs {:.1}, at most \
         {worst_queue_storage} for a run that waited); against a run without the queue: {:.1} \
         vs {:.1} — {}",
        at_most(
            total_storage(&waiters) - total_storage(&at_once),
            10.0,
            "requests"
        ),
        total_storage(&waiters),
        total_storage(&at_once),
        queue_storage(&waiters),
        queue_storage(&at_once),
        total_storage(&waiters),
        total_storage(&no_queue),
        at_most(
            total_storage(&waiters) - total_storage(&no_queue),
            10.0,
            "requests"
        ),
    );
    let (with, without) = (
        mean_of(&holders_with, |r| r.polls() as f64),
        mean_of(&alone_runs, |r| r.polls() as f64),
    );
    println!(
        "- holders poll as if nobody waited: {:.1} polls per holder with waiters, {:.1} with \
         nobody waiting ({alone_waited} of the {LIMIT} alone waited); {} (criterion: means \
         within one poll, the jitter's spread)",
        with,
        without,
        if (with - without).abs() <= 1.0 {
            "met"
        } else {
            "**missed**"
        }
    );
    println!(
        "- {INSTANCES} instances × {RUNS_PER_INSTANCE} runs: {many_completed}/{} completed, \
         at most {many_max_active} active per instance, {many_429s} AMC 429s, \
         {many_dead_letters} dead letters, {:.2}× the ideal",
        INSTANCES * RUNS_PER_INSTANCE,
        many_span / ideal_many
    );
    println!(
        "- a crashed holder's slot taken over after its lease, in order, nothing in the DLQ: \
         {}\n",
        match &takeover {
            Some(_)
                if crash_order.in_line == 0
                    && crash_order.by_times == 0
                    && crash_dead_letters == 0
                    && crash_refused == 0 =>
                "met".to_owned(),
            Some(_) => format!(
                "**missed** ({}; {crash_dead_letters} dead letters, {crash_refused} refused)",
                crash_order.describe()
            ),
            None => "**missed** (never taken over)".to_owned(),
        }
    );
    println!(
        "While a run waits it makes no transition, no Lambda call and no storage request: it is \
         parked. A holder's polls each read its scope record to keep its lease (`renew`, a \
         write only when the lease would end within 30 min of the next poll), which is most of \
         the queue's share above."
    );

    ensure!(completed == RUNS, "the queue lost runs");
    ensure!(max_active <= u64::from(LIMIT), "over the limit");
    ensure!(dead_letters == 0, "dead letters with the queue");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::{Holder, ScopeQueue, Waiter};

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::from_string(k.to_owned())
    }

    fn record(holders: &[(&str, i64)], waiting: &[(&str, i64)]) -> ScopeQueue {
        ScopeQueue {
            limit: 1,
            holders: holders
                .iter()
                .enumerate()
                .map(|(n, (k, since))| Holder {
                    key: key(k),
                    slot: n as u32,
                    since: at(*since),
                    until: at(*since + 5_400),
                    task_token: None,
                })
                .collect(),
            waiting: waiting
                .iter()
                .map(|(k, arrived)| Waiter {
                    key: key(k),
                    arrived: at(*arrived),
                    task_token: None,
                })
                .collect(),
            ..ScopeQueue::default()
        }
    }

    fn write(by: &str, before: ScopeQueue, after: ScopeQueue) -> ScopeWrite {
        ScopeWrite {
            scope: "amc.default.i".into(),
            by: Some(by.into()),
            before,
            after,
            at: None,
        }
    }

    #[test]
    fn admissions_out_of_arrival_order_are_counted_in_line_and_by_times() {
        let arrivals: HashMap<String, OffsetDateTime> = [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
            .into_iter()
            .map(|(k, s)| (k.to_owned(), at(s)))
            .collect();
        // b (arrived 1) takes the free slot before a (arrived 0) has asked: a race by times,
        // not in line. Then c passes a, which waits in line: out of order both ways. Then a,
        // then d, in order.
        let writes = vec![
            write("b", record(&[], &[]), record(&[("b", 1)], &[])),
            write(
                "a",
                record(&[("b", 1)], &[]),
                record(&[("b", 1)], &[("a", 0)]),
            ),
            write(
                "b",
                record(&[("b", 1)], &[("a", 0)]),
                record(&[("c", 10)], &[("a", 0)]),
            ),
            write(
                "c",
                record(&[("c", 10)], &[("a", 0)]),
                record(&[("a", 20)], &[("d", 3)]),
            ),
            write(
                "a",
                record(&[("a", 20)], &[("d", 3)]),
                record(&[("d", 30)], &[]),
            ),
        ];
        let order = out_of_order(&arrivals, &writes);
        assert_eq!(order.admitted, 4);
        assert_eq!(order.in_line, 1, "c passed a in line");
        assert_eq!(order.by_times, 2, "b and c were admitted before a");
        assert_eq!(
            order.not_yet_in_line, 1,
            "a had not asked when b took the slot"
        );
        assert_eq!(order.largest_gap, 2.0);
        let first = admissions(&writes);
        assert_eq!(
            first[0].by.as_deref(),
            Some("b"),
            "b was admitted when it asked"
        );
        assert_eq!(first[1].key, "c");
        assert_eq!(
            first[1].by.as_deref(),
            Some("b"),
            "c was woken by b's release"
        );
    }
}
