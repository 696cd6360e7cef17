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
//!
//! Here: the measurements and the section they print; `params.rs` holds the limits, sizes and
//! speeds; `deployment.rs` the counted local deployment and its runs; `analysis.rs` reads
//! admissions, handovers and order from the scope records' changes; `report.rs` the figures.

mod analysis;
mod deployment;
mod params;
mod report;

use std::collections::HashMap;

use anyhow::{ensure, Context};
use runbridge_bench::{at_most, ratio_at_most, Table};
use runbridge_core::ADMISSION_LEASE;

use crate::analysis::{
    admissions, arrivals, describe_admission_cost, describe_handovers, handovers, out_of_order,
    Admission,
};
use crate::deployment::{Bench, Run};
use crate::params::{
    CRASH_RUNS, INSTANCE, INSTANCES, LIMIT, RUNS, RUNS_PER_INSTANCE, RUN_SECONDS, SPEED,
    SPEED_MANY, WARM_UP_ROUNDS,
};
use crate::report::{class_row, describe_prediction, mean_of, seconds, span};

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
         call of its functions fails with an error nothing retries and its execution's stop \
         event is lost (it ends without giving the slot back: no release by that poll, none by \
         the failure record, none by the stop handler). Its slot \
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
         parked. A holder's handle carries its lease's end (`slot_until`), so its polls read its \
         scope record only when the lease would end within 30 min of the next poll (never, for \
         runs shorter than the admission lease); the final poll gives the slot back and collect \
         does not again. The rest of the queue's share is joining the line (with the refused \
         writes of runs that arrived at once), taking up the slot and the release."
    );

    ensure!(completed == RUNS, "the queue lost runs");
    ensure!(max_active <= u64::from(LIMIT), "over the limit");
    ensure!(dead_letters == 0, "dead letters with the queue");
    Ok(())
}
