//! A [`LocalDeployment`] on freshly started simulators, for the system tests.

pub use runbridge_adapters_local::{CallbacksWrapper, EventsWrapper, SinkWrapper, TasksWrapper};
use runbridge_adapters_local::{LocalConfig, LocalDeployment, SimProfile, Simulators};
use runbridge_core::{
    IdempotencyKey, Manifest, RunHandle, RunRequest, VendorKind, DEFAULT_PROFILE,
};
use runbridge_handlers::trigger::DEFAULT_CLAIM_LEASE;
use runbridge_sim::{Fault, FaultRule, RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;

/// Simulated seconds per real second in handler tests.
pub const SPEED: f64 = 2_000.0;

/// CSV data rows per result file of a run with the harness's default script.
pub const DEFAULT_ROWS: u64 = 2_000;

/// What a test may change about the deployment.
pub struct HarnessOptions {
    /// Simulator settings; `speed` is always [`SPEED`].
    pub sim: SimConfig,
    /// The vendor clients' retries and timeouts.
    pub retry: RetryConfig,
    /// The trigger's claim lease (on the simulator clock).
    pub claim_lease: time::Duration,
    /// Wraps the directory sink the collector writes to.
    pub wrap_sink: Option<SinkWrapper>,
    /// Wraps the poll and collect handlers as the state machine invokes them.
    pub wrap_tasks: Option<TasksWrapper>,
    /// Wraps the collector's event publisher.
    pub wrap_events: Option<EventsWrapper>,
    /// Wraps how the handlers wake runs parked for a concurrency slot.
    pub wrap_callbacks: Option<CallbacksWrapper>,
    /// Replaces the state machine's execution `TimeoutSeconds` (simulated seconds).
    pub execution_timeout_seconds: Option<u64>,
    /// AMC runs at once per instance (both AMC profiles). `None` (the default here): no limit,
    /// so the trigger submits at once — the path the fault matrix and most tests exercise.
    /// The deployed default is 10 (`tests/tests/queue.rs` runs with it).
    pub amc_max_concurrent: Option<u32>,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            sim: SimConfig::default(),
            retry: RetryConfig::fast(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            wrap_sink: None,
            wrap_tasks: None,
            wrap_events: None,
            wrap_callbacks: None,
            execution_timeout_seconds: None,
            amc_max_concurrent: None,
        }
    }
}

/// Simulators, a results directory and the local deployment on them. The deployment's parts
/// (`trigger`, `collector`, `executions`, `events`, `layout`, `ledger`) are reached through it.
pub struct Harness {
    /// The vendor simulators.
    pub sim: SimHandle,
    /// The results directory (and `_ledger/`).
    pub out: tempfile::TempDir,
    /// The deployment.
    pub deployment: LocalDeployment,
}

impl std::ops::Deref for Harness {
    type Target = LocalDeployment;
    fn deref(&self) -> &LocalDeployment {
        &self.deployment
    }
}

/// The path of `vendor`'s submit (create) call at its simulator, a POST (token endpoints have
/// other paths): where tests put faults on the submit.
pub fn submit_path(vendor: VendorKind) -> &'static str {
    match vendor {
        VendorKind::Amc => "/workflowExecutions",
        VendorKind::Amperity => "/workflow/runs",
        VendorKind::Adobe => "/flowservice/runs",
        VendorKind::Carto => "/job",
    }
}

impl Harness {
    /// The next `times` submits to `vendor` meet `fault`.
    pub fn fault_submits(&self, vendor: VendorKind, fault: Fault, times: u32) {
        self.sim.sim.faults.inject(FaultRule::new(
            vendor,
            Some("POST"),
            submit_path(vendor),
            fault,
            times,
        ));
    }

    pub async fn start() -> Self {
        Self::start_with(HarnessOptions::default()).await
    }

    pub async fn start_with(options: HarnessOptions) -> Self {
        let sim = SimHandle::start(SimConfig {
            speed: SPEED,
            ..options.sim
        })
        .await
        .unwrap();
        for v in runbridge_core::VendorKind::ALL {
            sim.sim.control.set_default_script(
                v,
                RunScript {
                    queue_seconds: 10.0,
                    run_seconds: 300.0,
                    rows: DEFAULT_ROWS,
                    ..RunScript::default()
                },
            );
        }
        let out = tempfile::tempdir().unwrap();
        let mut config = LocalConfig::on_simulators(
            Simulators::Here {
                sim: &sim,
                profiles: &[AMC_EU_PROFILE],
            },
            &options.retry,
            out.path(),
            out.path().join("_ledger"),
        )
        .expect("a valid profile");
        config.vendors = config
            .vendors
            .with_limit(VendorKind::Amc, DEFAULT_PROFILE, options.amc_max_concurrent)
            .with_limit(VendorKind::Amc, AMC_EU, options.amc_max_concurrent);
        let deployment = LocalDeployment::new(LocalConfig {
            claim_lease: options.claim_lease,
            wrap_sink: options.wrap_sink,
            wrap_tasks: options.wrap_tasks,
            wrap_events: options.wrap_events,
            wrap_callbacks: options.wrap_callbacks,
            execution_timeout_seconds: options.execution_timeout_seconds,
            ..config
        })
        .unwrap();
        Self {
            sim,
            out,
            deployment,
        }
    }

    /// The idempotency key of a request with `request_id`.
    pub fn key_for(vendor: VendorKind, request_id: &str) -> IdempotencyKey {
        IdempotencyKey::from_string(format!("{vendor}-{request_id}"))
    }

    /// The handle the execution for a CARTO `request_id` was started with.
    pub async fn handle(&self, request_id: &str) -> RunHandle {
        self.handle_for(VendorKind::Carto, request_id).await
    }

    /// The handle the execution for `vendor`'s `request_id` was started with (its reference,
    /// with the request from the ledger).
    pub async fn handle_for(&self, vendor: VendorKind, request_id: &str) -> RunHandle {
        self.deployment
            .handle(&Self::key_for(vendor, request_id))
            .await
            .expect("execution started, its request in the ledger")
    }

    /// Waits for the execution of a CARTO `request_id` and returns its manifest.
    pub async fn run_to_end(&self, request_id: &str) -> Manifest {
        self.run_to_end_for(VendorKind::Carto, request_id).await
    }

    /// Waits for the execution of `vendor`'s `request_id` and returns its manifest.
    pub async fn run_to_end_for(&self, vendor: VendorKind, request_id: &str) -> Manifest {
        let name = Self::key_for(vendor, request_id).execution_name();
        let execution = self
            .executions
            .wait(&name)
            .await
            .expect("execution started");
        let key = self
            .layout
            .paths(&self.handle_for(vendor, request_id).await)
            .manifest();
        let bytes = std::fs::read(self.out.path().join(&key)).unwrap_or_else(|e| {
            panic!(
                "no manifest at {key} ({e}); execution {:?} {:?} {:?}",
                execution.status, execution.error, execution.cause
            )
        });
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Temporary or staging files left behind.
    pub fn partial_files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let s = path.to_string_lossy().into_owned();
                    if s.contains(".partial") || s.contains("_staging/") {
                        out.push(s);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.out.path(), &mut out);
        out
    }
}

/// The named AMC profile of the simulator's second account (see [`Harness::start_with`]).
pub const AMC_EU: &str = "amc-eu";
/// The AMC instance that belongs to the second account.
pub const AMC_EU_INSTANCE: &str = "amceu01";

/// A second vendor account, as an agency has: the EU AMC instance belongs to the simulator's
/// second account and is reached through the named profile [`AMC_EU`].
const AMC_EU_PROFILE: SimProfile = SimProfile {
    name: AMC_EU,
    vendor: VendorKind::Amc,
    resource: AMC_EU_INSTANCE,
    account: runbridge_sim::auth::ACCOUNTS[1],
};

/// The example request of `vendor` (`examples/{vendor}.json`) with `request_id`.
pub fn example_request(vendor: VendorKind, request_id: &str) -> Vec<u8> {
    let path = format!("{}/../examples/{vendor}.json", env!("CARGO_MANIFEST_DIR"));
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap();
    r["request_id"] = request_id.into();
    RunRequest::from_value(r.clone()).expect("valid example request");
    serde_json::to_vec(&r).unwrap()
}

/// A CARTO request body, with an export query when `export` is set.
pub fn carto_request(request_id: &str, export: bool) -> Vec<u8> {
    let mut r = serde_json::json!({
        "vendor": "carto",
        "request_id": request_id,
        "connection": "carto_dw",
        "query": "CALL `p.d.proc`(@a)",
        "query_parameters": {"a": 1}
    });
    if export {
        r["export_query"] = "SELECT * FROM `p.d.out`".into();
    }
    RunRequest::from_value(r.clone()).expect("valid test request");
    serde_json::to_vec(&r).unwrap()
}
