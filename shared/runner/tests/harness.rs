//! A local deployment on the simulators, for handler tests.

use std::sync::Arc;

use runbridge_core::{
    BackoffPolicy, IdempotencyKey, Manifest, OffsetDateTime, ResultLayout, RunHandle, RunRequest,
};
use runbridge_runner::collect::Collector;
use runbridge_runner::local::{
    DirLedger, DirSink, HandlerTasks, LocalExecutions, LogEvents, ScaledWaitClock,
};
use runbridge_runner::poll::Poller;
use runbridge_runner::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_runner::Clock;
use runbridge_sim::{RunScript, Sim, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, Vendors};

/// Simulated seconds per real second in handler tests.
pub const SPEED: f64 = 2_000.0;

pub struct SimTime(pub Arc<Sim>);

impl Clock for SimTime {
    fn now(&self) -> OffsetDateTime {
        self.0.clock.now()
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
}

impl Harness {
    pub async fn start() -> Self {
        let sim = SimHandle::start(SimConfig {
            speed: SPEED,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        for v in runbridge_core::VendorKind::ALL {
            sim.sim.control.set_default_script(
                v,
                RunScript {
                    queue_seconds: 10.0,
                    run_seconds: 300.0,
                    rows: 2_000,
                    ..RunScript::default()
                },
            );
        }
        let mut settings = Settings::new();
        for (k, v) in sim.client_settings() {
            settings.set(k, v);
        }
        let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
        let clock: Arc<dyn Clock> = Arc::new(SimTime(sim.sim.clone()));
        let out = tempfile::tempdir().unwrap();
        let policy = BackoffPolicy::default();
        let events = Arc::new(LogEvents::default());
        let layout = ResultLayout::default();
        let collector = Arc::new(Collector {
            vendors: vendors.clone(),
            sink: Arc::new(DirSink::new(out.path())),
            events: events.clone(),
            layout: layout.clone(),
            clock: clock.clone(),
        });
        let tasks = HandlerTasks {
            poller: Arc::new(Poller {
                vendors: vendors.clone(),
                clock: clock.clone(),
                policy,
            }),
            collector: collector.clone(),
        };
        let executions = Arc::new(
            LocalExecutions::new(
                Arc::new(tasks),
                Arc::new(ScaledWaitClock {
                    speed: SPEED,
                    clock: clock.clone(),
                }),
            )
            .unwrap(),
        );
        let trigger = Trigger {
            vendors,
            ledger: Arc::new(DirLedger::new(out.path().join("_ledger"))),
            executions: executions.clone(),
            clock,
            policy,
            claim_lease: DEFAULT_CLAIM_LEASE,
        };
        Self {
            sim,
            out,
            trigger,
            collector,
            executions,
            events,
            layout,
        }
    }

    fn key(&self, request_id: &str) -> IdempotencyKey {
        IdempotencyKey::from_string(format!("carto-{request_id}"))
    }

    /// The handle the execution for `request_id` was started with.
    pub fn handle(&self, request_id: &str) -> RunHandle {
        let input = self
            .executions
            .input(&self.key(request_id).execution_name())
            .expect("execution started");
        serde_json::from_value(input["handle"].clone()).unwrap()
    }

    /// Waits for the execution of `request_id` and returns its manifest.
    pub async fn run_to_end(&self, request_id: &str) -> Manifest {
        let name = self.key(request_id).execution_name();
        let execution = self
            .executions
            .wait(&name)
            .await
            .expect("execution started");
        let key = self.layout.paths(&self.handle(request_id)).manifest();
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
