//! AMC's concurrency queue: 50 requests for one instance (whose limit is 10 running executions)
//! on the AMC simulator, through the deployed state machine and the real handlers.
//!
//! Measured: the most executions the instance ever had active, AMC's 429 refusals, requests the
//! trigger could not take (dead letters in a deployment), and the time from the first request to
//! the last manifest against the ideal ⌈50/10⌉ × the run time. Baseline, same run: the same 50
//! requests with the queue switched off (`amc.max_concurrent` = 0), as every version before the
//! queue behaved: the trigger submits at once and AMC refuses what is over its limit.
//!
//! The simulator's clock runs `SPEED` times faster than real time; every millisecond of real
//! processing is `SPEED` ms of simulated time, so the overhead above the ideal includes that.
//!
//! Usage: `cargo run --release -p runbridge-bench --bin queue` (prints a Markdown section).

use std::sync::Arc;

use anyhow::Context;
use runbridge_adapters_local::{LocalConfig, LocalDeployment, Simulators};
use runbridge_core::{RunState, VendorKind, DEFAULT_PROFILE};
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;

const RUNS: usize = 50;
const LIMIT: u32 = 10;
/// Simulated seconds each AMC run takes.
const RUN_SECONDS: f64 = 600.0;
/// Simulated seconds per real second.
const SPEED: f64 = 100.0;
const INSTANCE: &str = "amcabc123def";

struct Figures {
    completed: usize,
    refused_by_trigger: usize,
    max_active: u64,
    amc_429s: u64,
    total_seconds: f64,
}

fn request(i: usize) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amc.json");
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("examples/amc.json")).unwrap();
    r["request_id"] = format!("bench-queue-{i:02}").into();
    serde_json::to_vec(&r).unwrap()
}

async fn measure(limit: Option<u32>) -> anyhow::Result<Figures> {
    let sim = SimHandle::start(SimConfig {
        speed: SPEED,
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
    let deployment = Arc::new(LocalDeployment::new(config)?);
    let started = sim.sim.clock.now();
    let triggers: Vec<_> = (0..RUNS)
        .map(|i| {
            let d = deployment.clone();
            tokio::spawn(async move { d.trigger.handle_bytes(&request(i), None).await })
        })
        .collect();
    let mut keys = Vec::new();
    let mut refused_by_trigger = 0;
    for t in triggers {
        match t.await? {
            Ok(t) => keys.push(t.key().clone()),
            Err(_) => refused_by_trigger += 1,
        }
    }
    let mut completed = 0;
    let mut last = started;
    for key in &keys {
        if let Some((_, Some(manifest))) = deployment.wait(key).await? {
            if manifest.state == RunState::Succeeded {
                completed += 1;
            }
            last = last.max(manifest.finished_at);
        }
    }
    let control = &sim.sim.control;
    Ok(Figures {
        completed,
        refused_by_trigger,
        max_active: control.max_observed(&format!("amc.active.{INSTANCE}")),
        amc_429s: control.requests("amc.create.over_limit"),
        total_seconds: (last - started).as_seconds_f64(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let queued = measure(Some(LIMIT)).await.context("with the queue")?;
    let direct = measure(None).await.context("without the queue")?;
    let ideal = (RUNS as f64 / f64::from(LIMIT)).ceil() * RUN_SECONDS;
    println!("## 5. AMC's concurrency limit as a queue\n");
    println!(
        "{RUNS} AMC requests for one instance at once; AMC allows {LIMIT} PENDING + RUNNING \
         executions per instance (the simulator refuses the next with 429). Each run takes \
         {RUN_SECONDS:.0} simulated seconds; the simulator runs {SPEED:.0}× real time. Ideal: \
         ⌈{RUNS}/{LIMIT}⌉ × {RUN_SECONDS:.0} s = {ideal:.0} s. `cargo run --release -p \
         runbridge-bench --bin queue`.\n"
    );
    println!("| | completed | refused at the trigger (DLQ after retries) | max active at AMC | AMC 429s | first request → last manifest | ÷ ideal |");
    println!("|---|---|---|---|---|---|---|");
    for (name, f) in [
        ("queue (`max_concurrent` 10, the default)", &queued),
        ("baseline: no queue (`max_concurrent` 0)", &direct),
    ] {
        // A run that never ran has no end: the ratio only means something when all completed.
        let vs_ideal = if f.completed == RUNS {
            format!("{:.2}", f.total_seconds / ideal)
        } else {
            format!("n/a ({} never ran)", RUNS - f.completed)
        };
        println!(
            "| {name} | {}/{RUNS} | {} | {} | {} | {:.0} s | {vs_ideal} |",
            f.completed, f.refused_by_trigger, f.max_active, f.amc_429s, f.total_seconds,
        );
    }
    println!(
        "\nWith the queue, each wave starts when a poll sees a run of the previous one end: a run \
         whose slot is wanted is polled at least every 60 s, and a waiting run tries every 10–60 s."
    );
    anyhow::ensure!(queued.completed == RUNS, "the queue lost runs");
    anyhow::ensure!(queued.max_active <= u64::from(LIMIT), "over the limit");
    Ok(())
}
