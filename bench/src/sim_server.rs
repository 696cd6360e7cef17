//! The simulator as the benchmarks use it: one AMC run script whose single result file has a
//! given size, a signed download URL of the same size for the `curl` baselines, and the client
//! side (vendor clients, a trigger with a local ledger) the benchmarks drive runs with.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use runbridge_adapters_local::{simulator_settings, LocalConfig, LocalDeployment, Simulators};
use runbridge_core::VendorKind;
use runbridge_handlers::ports::{Executions, Ledger, StartOutcome};
use runbridge_handlers::trigger::Trigger;
use runbridge_handlers::HandlerError;
use runbridge_sim::{csvgen, RunScript, Sim, SimConfig};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::Vendors;
use serde::{Deserialize, Serialize};

/// Simulated seconds per real second: a scripted 65 s AMC run ends in 65 ms.
pub const SIM_SPEED: f64 = 1_000.0;
/// The vendor whose results the benchmarks download (AMC serves them on signed URLs).
pub const VENDOR: VendorKind = VendorKind::Amc;

/// The seed of the baseline file (and of the prebuilt file every run then shares).
pub const BASELINE_SEED: u64 = 7;

/// What a `sim-serve` process tells its clients (written as JSON to a file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimInfo {
    /// Where the simulator listens.
    pub base_url: String,
    /// Vendor client settings that point at it.
    pub settings: Vec<(String, String)>,
    /// A signed URL of a CSV file of exactly the size every scripted run produces.
    pub download_url: String,
    /// That size in bytes.
    pub file_bytes: u64,
}

impl SimInfo {
    /// Reads the file a `sim-serve` process wrote.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).context("sim info JSON")
    }

    /// Vendor clients pointing at the simulator.
    pub fn vendors(&self) -> anyhow::Result<Vendors> {
        let settings = simulator_settings(Simulators::Elsewhere(&self.settings))?;
        Ok(Vendors::from_settings(&settings, &RetryConfig::fast()))
    }
}

/// Simulator settings for benchmarks: fast runs, one result file of `rows` rows, and tokens and
/// download URLs that outlive any benchmark even at [`SIM_SPEED`].
pub fn config(rows: u64) -> SimConfig {
    SimConfig {
        speed: SIM_SPEED,
        token_ttl_seconds: 365 * 86_400,
        download_url_ttl_seconds: 365 * 86_400,
        default_script: RunScript {
            queue_seconds: 5.0,
            run_seconds: 60.0,
            rows,
            files: 1,
            ..RunScript::default()
        },
    }
}

/// The rows of a file of (about) `bytes` bytes, and its exact size.
pub fn rows_and_size(bytes: u64) -> (u64, u64) {
    let rows = csvgen::rows_for_bytes(bytes);
    (rows, csvgen::size(rows))
}

/// A signed URL of a file like the scripted runs' results.
pub fn download_url(sim: &Sim, rows: u64) -> String {
    sim.download_url(
        VENDOR,
        "bench-baseline",
        "part-00000.csv",
        rows,
        BASELINE_SEED,
    )
}

/// The example AMC request with its own `request_id`, so every call is a new run.
pub fn amc_request(request_id: &str) -> Vec<u8> {
    let mut request: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/amc.json")).expect("example parses");
    request["request_id"] = request_id.into();
    serde_json::to_vec(&request).expect("JSON serialises")
}

/// Step Functions stand-in that only records the executions started, for benchmarks of the
/// trigger alone (the poll loop is measured elsewhere).
#[derive(Debug, Default)]
pub struct RecordingExecutions {
    inputs: Mutex<HashMap<String, serde_json::Value>>,
}

impl RecordingExecutions {
    /// The input execution `name` was started with.
    pub fn input(&self, name: &str) -> Option<serde_json::Value> {
        self.inputs
            .lock()
            .expect("executions lock")
            .get(name)
            .cloned()
    }

    /// Executions started.
    pub fn len(&self) -> usize {
        self.inputs.lock().expect("executions lock").len()
    }

    /// No execution started yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Executions for RecordingExecutions {
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError> {
        let mut inputs = self.inputs.lock().expect("executions lock");
        Ok(match inputs.insert(name.to_owned(), input) {
            None => StartOutcome::Started,
            Some(_) => StartOutcome::AlreadyStarted,
        })
    }
}

/// The local deployment the benchmarks build: real-time clock, results and ledger under `dir`.
pub fn local_config(vendors: Vendors, dir: &Path) -> LocalConfig {
    LocalConfig::new(vendors, dir.join("out"), dir.join("_ledger"))
}

/// The local deployment the benchmarks drive ([`local_config`]), with executions recorded in
/// `executions` instead of run (the poll loop is measured elsewhere).
pub fn deployment(
    vendors: Vendors,
    dir: &Path,
    executions: Arc<RecordingExecutions>,
) -> anyhow::Result<LocalDeployment> {
    Ok(LocalDeployment::new(LocalConfig {
        executions: Some(executions),
        ..local_config(vendors, dir)
    })?)
}

/// The deployment's trigger with `ledger`, recording executions in `executions`.
pub fn trigger(
    deployment: &LocalDeployment,
    ledger: Arc<dyn Ledger>,
    executions: Arc<RecordingExecutions>,
) -> Trigger {
    deployment.trigger_with(ledger, executions)
}
