//! A local deployment: the handlers the Lambdas run, wired to local ports, watched by the state
//! machine definition Step Functions runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use async_trait::async_trait;
use runbridge_adapters_local::{LocalConfig, LocalDeployment, LogEvents, SimProfile, Simulators};
use runbridge_asl::{ExecutionStatus, TaskFailure, TaskInvoker};
use runbridge_core::{RunOutcome, RunState, VendorKind};
use runbridge_handlers::poll::PollOutput;
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, Vendors};

/// Something that wants to hear about runs as they progress.
pub trait Observer: Send + Sync {
    /// A run was submitted.
    /// `vendor_run_id` is `None` while the run waits for a concurrency slot.
    fn submitted(&self, key: &str, vendor: &str, vendor_run_id: Option<&str>);
    /// A poll answered.
    fn polled(&self, key: &str, output: &PollOutput);
    /// The run's execution ended.
    fn finished(&self, summary: &RunSummary);
}

/// An observer that says nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn submitted(&self, _: &str, _: &str, _: Option<&str>) {}
    fn polled(&self, _: &str, _: &PollOutput) {}
    fn finished(&self, _: &RunSummary) {}
}

/// What one run did, for the summary table: its [`RunOutcome`] plus what only the sandbox knows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// How the run ended.
    #[serde(flatten)]
    pub outcome: RunOutcome,
    /// Wall-clock seconds from trigger to manifest.
    pub seconds: f64,
    /// Where the manifest is.
    pub manifest: PathBuf,
}

impl std::ops::Deref for RunSummary {
    type Target = RunOutcome;
    fn deref(&self) -> &RunOutcome {
        &self.outcome
    }
}

/// Forwards task invocations to the handlers and tells the observer about polls.
struct ObservedTasks {
    inner: Arc<dyn TaskInvoker>,
    observer: Arc<dyn Observer>,
}

#[async_trait]
impl TaskInvoker for ObservedTasks {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        let out = self.inner.invoke(resource, input).await?;
        if let Ok(poll) = serde_json::from_value::<PollOutput>(out.clone()) {
            self.observer.polled(poll.handle.key.as_str(), &poll);
        }
        Ok(out)
    }
}

/// A local deployment of runbridge.
pub struct Sandbox {
    /// The embedded simulators, when running against them.
    pub sim: Option<SimHandle>,
    deployment: LocalDeployment,
    /// Published events.
    pub events: Arc<LogEvents>,
    observer: Arc<dyn Observer>,
    _ledger_dir: Option<tempfile::TempDir>,
}

/// The named profiles a simulated sandbox has: two AMC accounts, NA and EU, with different
/// refresh tokens, and a second Amperity tenant (`examples/amc-na.json`, `examples/amc-eu.json`,
/// `examples/amperity-b.json`). The NA account is the simulators' first account, whose
/// credentials are also AMC's `default` profile, so `examples/amc.json` (no profile) still runs
/// in the sandbox; the others are the second accounts.
pub const DEMO_PROFILES: [SimProfile; 3] = [
    SimProfile {
        name: "amc-na",
        vendor: VendorKind::Amc,
        resource: "amcabc123def",
        account: runbridge_sim::auth::ACCOUNTS[0],
    },
    SimProfile {
        name: "amc-eu",
        vendor: VendorKind::Amc,
        resource: "amceu0123456",
        account: runbridge_sim::auth::ACCOUNTS[1],
    },
    SimProfile {
        name: "amperity-b",
        vendor: VendorKind::Amperity,
        resource: "beta",
        account: runbridge_sim::auth::ACCOUNTS[1],
    },
];

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Results directory (same layout as the S3 bucket).
    pub out: PathBuf,
    /// Simulated seconds per real second (simulated runs only).
    pub speed: f64,
}

impl Sandbox {
    /// A sandbox on freshly started simulators, with the demo's run scripts.
    pub async fn simulated(options: &SandboxOptions, observer: Arc<dyn Observer>) -> Result<Self> {
        let sim = SimHandle::start(SimConfig {
            speed: options.speed,
            ..SimConfig::default()
        })
        .await
        .context("starting the vendor simulators")?;
        demo_scripts(&sim);
        // Simulated runs die with the simulator, so their ledger must too: a ledger kept in the
        // results directory would point the next demo at runs that no longer exist.
        let ledger_dir = tempfile::tempdir().context("creating the sandbox ledger")?;
        // The named profiles of the demo: each holds one simulator account's credentials, and
        // that account alone may use its instance or tenant, so a run under another account's
        // profile would fail.
        let config = LocalConfig::on_simulators(
            Simulators::Here {
                sim: &sim,
                profiles: &DEMO_PROFILES,
            },
            &RetryConfig::default(),
            &options.out,
            ledger_dir.path(),
        )
        .context("a demo profile")?;
        let mut sandbox = Self::build(options, config, observer)?;
        sandbox.sim = Some(sim);
        sandbox._ledger_dir = Some(ledger_dir);
        Ok(sandbox)
    }

    /// A sandbox talking to the real vendor APIs with settings from `RUNBRIDGE_*` variables and
    /// the profiles file `RUNBRIDGE_PROFILES` names.
    pub fn real(options: &SandboxOptions, observer: Arc<dyn Observer>) -> Result<Self> {
        let settings = Settings::local().map_err(anyhow::Error::msg)?;
        let config = LocalConfig::new(
            Vendors::from_settings(&settings, &RetryConfig::default()),
            &options.out,
            options.out.join("_ledger"),
        );
        Self::build(options, config, observer)
    }

    /// The deployment `config` describes, with the observer told about every poll.
    fn build(
        options: &SandboxOptions,
        config: LocalConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Self> {
        let observer_for_tasks = observer.clone();
        let deployment = LocalDeployment::new(LocalConfig {
            wrap_tasks: Some(Box::new(move |inner| {
                Arc::new(ObservedTasks {
                    inner,
                    observer: observer_for_tasks,
                })
            })),
            ..config
        })
        .with_context(|| format!("setting up the sandbox in {}", options.out.display()))?;
        Ok(Self {
            sim: None,
            events: deployment.events.clone(),
            deployment,
            observer,
            _ledger_dir: None,
        })
    }

    /// Triggers one request and waits for its execution to end.
    pub async fn run(&self, request: &[u8]) -> Result<RunSummary> {
        self.run_until(request, std::future::pending()).await
    }

    /// Like [`Sandbox::run`], but when `stop` resolves first (Ctrl-C in `runbridge run`) the
    /// execution is stopped as `runbridge cancel` stops a deployed one, with its own cause: its
    /// status change reaches the stop handler, which cancels the vendor run and writes the
    /// CANCELLED manifest this returns.
    pub async fn run_until(
        &self,
        request: &[u8],
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<RunSummary> {
        let started_at = Instant::now();
        let vendor = runbridge_core::RunRequest::from_json(request)?.vendor();
        let announced_before = self.events.published().len();
        let triggered = match self.deployment.trigger.handle_bytes(request, None).await {
            Ok(triggered) => triggered,
            Err(error) => {
                // A submit the vendor refused for good ended FAILED at the trigger, with its
                // manifest and event: the run's summary, as any other failed run's.
                let Some(outcome) = self.events.published()[announced_before..]
                    .iter()
                    .find(|e| e.vendor == vendor && e.vendor_run_id.is_empty())
                    .cloned()
                else {
                    return Err(error.into());
                };
                tracing::debug!(%error, "the trigger ended the request");
                let summary = RunSummary {
                    seconds: started_at.elapsed().as_secs_f64(),
                    manifest: self.path_of(&outcome.manifest_key),
                    outcome,
                };
                self.observer.finished(&summary);
                return Ok(summary);
            }
        };
        self.observer.submitted(
            triggered.key().as_str(),
            vendor.as_str(),
            triggered.vendor_run_id(),
        );
        let waiting = self.deployment.wait(triggered.key());
        tokio::pin!(waiting);
        let waited = tokio::select! {
            waited = &mut waiting => waited,
            () = stop => {
                if self.deployment.interrupt(triggered.key())? {
                    tracing::warn!(key = %triggered.key(), "stopping the execution; cancelling the vendor run");
                }
                waiting.await
            }
        };
        let (execution, manifest) = waited?.context("execution vanished")?;
        let handle = self
            .deployment
            .handle(triggered.key())
            .await
            .context("execution input vanished")?;
        let manifest_key = self.deployment.layout.paths(&handle).manifest();
        let summary = match manifest {
            Some(m) => RunSummary {
                outcome: RunOutcome::of(&m, manifest_key.clone()),
                seconds: started_at.elapsed().as_secs_f64(),
                manifest: self.path_of(&manifest_key),
            },
            None => RunSummary {
                outcome: RunOutcome {
                    event_id: RunOutcome::event_id_of(
                        triggered.key().as_str(),
                        triggered.handle.request.attempt(),
                    ),
                    key: triggered.key().to_string(),
                    attempt: triggered.handle.request.attempt(),
                    vendor,
                    profile: triggered.handle.request.profile().to_owned(),
                    vendor_run_id: triggered.vendor_run_id().unwrap_or_default().to_owned(),
                    state: RunState::Failed,
                    reason: Some(format!(
                        "execution {:?} without a manifest: {} {}",
                        execution.status,
                        execution.error.clone().unwrap_or_default(),
                        execution.cause.clone().unwrap_or_default()
                    )),
                    attribution: None,
                    manifest_key,
                    files: 0,
                    bytes: 0,
                    rows: 0,
                    polls: 0,
                },
                seconds: started_at.elapsed().as_secs_f64(),
                manifest: PathBuf::new(),
            },
        };
        // A stop or timeout may come after collect wrote a SUCCEEDED manifest (the stop handler
        // then leaves it); a failed execution with one is a bug.
        if execution.status == ExecutionStatus::Failed && summary.state == RunState::Succeeded {
            anyhow::bail!(
                "execution ended {:?} although the manifest says SUCCEEDED",
                execution.status
            );
        }
        self.observer.finished(&summary);
        Ok(summary)
    }

    /// Removes earlier results of `request` from the results directory, so a repeated sandbox
    /// run of the same request (same idempotency key) lands afresh instead of finding the old
    /// manifest.
    pub fn forget_previous(&self, request: &[u8]) -> Result<()> {
        let request = runbridge_core::RunRequest::from_json(request)?;
        if request.request_id.is_none() {
            return Ok(());
        }
        // With a request_id the key does not depend on the window, so any anchor will do.
        let key = runbridge_core::IdempotencyKey::for_request(
            &request.resolve(runbridge_core::OffsetDateTime::now_utc()),
            None,
        );
        remove_run_dirs(&self.out_dir(), &format!("run={key}"))
    }

    fn path_of(&self, key: &str) -> PathBuf {
        Path::new(&self.out_dir()).join(key)
    }

    fn out_dir(&self) -> PathBuf {
        self.deployment.sink.root().to_path_buf()
    }
}

fn remove_run_dirs(dir: &Path, name: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == name) {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        } else {
            remove_run_dirs(&path, name)?;
        }
    }
    Ok(())
}

/// Run scripts that make the demo show each vendor's shape: AMC publishes two CSV parts after a
/// short "unavailable for download" spell, CARTO exports one, Amperity and Adobe produce none.
fn demo_scripts(sim: &SimHandle) {
    use runbridge_core::VendorKind::*;
    let control = &sim.sim.control;
    control.set_default_script(
        Amc,
        RunScript {
            queue_seconds: 20.0,
            run_seconds: 600.0,
            rows: 20_000,
            files: 2,
            publish_seconds: 30.0,
            ..RunScript::default()
        },
    );
    control.set_default_script(
        Amperity,
        RunScript {
            queue_seconds: 10.0,
            run_seconds: 300.0,
            ..RunScript::default()
        },
    );
    control.set_default_script(
        Adobe,
        RunScript {
            queue_seconds: 15.0,
            run_seconds: 420.0,
            ..RunScript::default()
        },
    );
    control.set_default_script(
        Carto,
        RunScript {
            queue_seconds: 5.0,
            run_seconds: 180.0,
            rows: 5_000,
            ..RunScript::default()
        },
    );
}
