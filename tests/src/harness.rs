//! A local deployment on the simulators, for handler tests.
// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use runbridge_adapters_local::{
    DirLedger, DirSink, HandlerTasks, LocalExecutions, LogEvents, ScaledWaitClock,
};
use runbridge_asl::TaskInvoker;
use runbridge_core::{
    BackoffPolicy, IdempotencyKey, Manifest, OffsetDateTime, ResultLayout, RunHandle, RunRequest,
    VendorKind,
};
use runbridge_handlers::collect::Collector;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_handlers::{Clock, Executions, Ledger, ResultSink};
use runbridge_sim::{RunScript, Sim, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, Vendors};

/// Simulated seconds per real second in handler tests.
pub const SPEED: f64 = 2_000.0;

/// CSV data rows per result file of a run with the harness's default script.
pub const DEFAULT_ROWS: u64 = 2_000;

pub struct SimTime(pub Arc<Sim>);

impl Clock for SimTime {
    fn now(&self) -> OffsetDateTime {
        self.0.clock.now()
    }
}

/// Wraps the collector's result sink, to inject failures between collect's steps.
pub type SinkWrapper = Box<dyn FnOnce(Arc<dyn ResultSink>) -> Arc<dyn ResultSink> + Send>;

/// Wraps the Lambda handlers the state machine invokes, to inject Lambda-level failures.
pub type TasksWrapper = Box<dyn FnOnce(Arc<dyn TaskInvoker>) -> Arc<dyn TaskInvoker> + Send>;

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
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            sim: SimConfig::default(),
            retry: RetryConfig::fast(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            wrap_sink: None,
            wrap_tasks: None,
        }
    }
}

pub struct Harness {
    pub sim: SimHandle,
    pub out: tempfile::TempDir,
    pub trigger: Trigger,
    pub collector: Arc<Collector>,
    pub executions: Arc<LocalExecutions>,
    pub events: Arc<LogEvents>,
    pub layout: ResultLayout,
    pub ledger: Arc<DirLedger>,
}

impl Harness {
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
        let mut settings = Settings::new();
        for (k, v) in sim.client_settings() {
            settings.set(k, v);
        }
        let vendors = Vendors::from_settings(&settings, &options.retry);
        let clock: Arc<dyn Clock> = Arc::new(SimTime(sim.sim.clone()));
        let out = tempfile::tempdir().unwrap();
        let policy = BackoffPolicy::default();
        let events = Arc::new(LogEvents::default());
        let layout = ResultLayout::default();
        let mut sink: Arc<dyn ResultSink> = Arc::new(DirSink::new(out.path()));
        if let Some(wrap) = options.wrap_sink {
            sink = wrap(sink);
        }
        let collector = Arc::new(Collector {
            vendors: vendors.clone(),
            sink,
            events: events.clone(),
            layout: layout.clone(),
            clock: clock.clone(),
        });
        let mut tasks: Arc<dyn TaskInvoker> = Arc::new(HandlerTasks {
            poller: Arc::new(Poller {
                vendors: vendors.clone(),
                clock: clock.clone(),
                policy,
            }),
            collector: collector.clone(),
        });
        if let Some(wrap) = options.wrap_tasks {
            tasks = wrap(tasks);
        }
        let executions = Arc::new(
            LocalExecutions::new(
                tasks,
                Arc::new(ScaledWaitClock {
                    speed: SPEED,
                    clock: clock.clone(),
                }),
            )
            .unwrap(),
        );
        let ledger = Arc::new(DirLedger::new(out.path().join("_ledger")));
        let trigger = Trigger {
            vendors,
            ledger: ledger.clone(),
            executions: executions.clone(),
            clock,
            policy,
            claim_lease: options.claim_lease,
        };
        Self {
            sim,
            out,
            trigger,
            collector,
            executions,
            events,
            layout,
            ledger,
        }
    }

    /// A trigger like [`Harness::trigger`] with other ledger and executions ports (wrappers that
    /// inject failures around the real ones).
    pub fn trigger_with(
        &self,
        ledger: Arc<dyn Ledger>,
        executions: Arc<dyn Executions>,
    ) -> Trigger {
        Trigger {
            vendors: self.trigger.vendors.clone(),
            ledger,
            executions,
            clock: self.trigger.clock.clone(),
            policy: self.trigger.policy,
            claim_lease: self.trigger.claim_lease,
        }
    }

    /// The idempotency key of a request with `request_id`.
    pub fn key_for(vendor: VendorKind, request_id: &str) -> IdempotencyKey {
        IdempotencyKey::from_string(format!("{vendor}-{request_id}"))
    }

    /// The handle the execution for a CARTO `request_id` was started with.
    pub fn handle(&self, request_id: &str) -> RunHandle {
        self.handle_for(VendorKind::Carto, request_id)
    }

    /// The handle the execution for `vendor`'s `request_id` was started with.
    pub fn handle_for(&self, vendor: VendorKind, request_id: &str) -> RunHandle {
        let input = self
            .executions
            .input(&Self::key_for(vendor, request_id).execution_name())
            .expect("execution started");
        serde_json::from_value(input["handle"].clone()).unwrap()
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
            .paths(&self.handle_for(vendor, request_id))
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
