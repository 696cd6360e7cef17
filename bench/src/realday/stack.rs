//! The real stack the day runs on: the four vendor simulators on one clock running `speed`
//! times real time, and a [`LocalDeployment`] on them (the real trigger, poll and collect
//! handlers, the deployed state machine in the ASL interpreter), every storage port counted.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use runbridge_adapters_local::{
    simulator_settings, DirHistory, LocalConfig, LocalDeployment, Simulators, HISTORY_DIR,
};
use runbridge_asl::Execution;
use runbridge_core::{IdempotencyKey, Manifest, OffsetDateTime, VendorKind, DEFAULT_PROFILE};
use runbridge_handlers::History;
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::rate::{InProcessBudget, RateBudget, RateBudgetError};
use runbridge_vendors::Vendors;

use crate::realday::requests::{workflow_key, Planned};
use crate::storage::{
    amc_peak_active, count_state_requests, AttributedTasks, Counter, CountingSink, CountingSlots,
    Requests,
};

/// The share of a vendor's per-second limit the day's rate budget spaces requests for. The
/// stack's budget keeps 10 % headroom in real time; on a clock running hundreds of times faster
/// a few milliseconds of scheduling delay bunch requests by whole simulated seconds, so the
/// day's budget keeps more: a quarter of the limit, on the simulators' clock.
pub const BUDGET_SHARE: f64 = 0.25;

/// AMC's limit per instance, as deployed (`amc.max_concurrent`).
pub const AMC_LIMIT: u32 = 10;

/// `runbridge_vendors::rate`'s in-process limiter with its limits counted on the simulators'
/// clock: `per_second` requests per simulated second are `per_second × speed` per real second.
#[derive(Debug, Default)]
pub struct SimClockBudget {
    inner: InProcessBudget,
    speed: f64,
}

#[async_trait]
impl RateBudget for SimClockBudget {
    async fn take(&self, account: &str, per_second: NonZeroU32) -> Result<(), RateBudgetError> {
        let scaled = (f64::from(per_second.get()) * self.speed * BUDGET_SHARE).max(1.0);
        let scaled = NonZeroU32::new(scaled as u32).unwrap_or(NonZeroU32::MIN);
        self.inner.take(account, scaled).await
    }
}

/// One run once its execution ended.
pub struct Ended {
    pub planned: Planned,
    pub key: IdempotencyKey,
    pub execution: Execution,
    pub manifest: Option<Manifest>,
    pub storage: Requests,
    /// Creates at the simulator whose request carried this run's tag.
    pub submits: u64,
}

/// What the day left: the ended runs, the requests the trigger refused.
pub struct Day {
    pub ended: Vec<Ended>,
    pub refused: Vec<(Planned, String)>,
    pub dead_letters: usize,
    pub wall: Duration,
}

/// The simulators and the deployment on them.
pub struct Stack {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub deployment: Arc<LocalDeployment>,
    pub counter: Arc<Counter>,
    pub speed: f64,
}

impl Stack {
    /// The simulators at `speed`, the deployment with AMC's queue at `amc_limit` (`None`: off).
    pub async fn start(speed: f64, amc_limit: Option<u32>) -> anyhow::Result<Self> {
        let sim = SimHandle::start(SimConfig {
            speed,
            // Tokens and download URLs outlive the day: the clients cache tokens in real time.
            token_ttl_seconds: 365 * 86_400,
            download_url_ttl_seconds: 365 * 86_400,
            // Every run has its own script (`Control::script_for`); anything else ends at once.
            default_script: RunScript {
                queue_seconds: 0.0,
                run_seconds: 1.0,
                rows: 10,
                files: 1,
                ..RunScript::default()
            },
        })
        .await?;
        let dir = tempfile::tempdir()?;
        let simulators = Simulators::Here {
            sim: &sim,
            profiles: &[],
        };
        let mut config = LocalConfig::on_simulators(
            simulators,
            &RetryConfig::fast(),
            dir.path().join("out"),
            dir.path().join("_ledger"),
        )?;
        let budget: Arc<dyn RateBudget> = Arc::new(SimClockBudget {
            inner: InProcessBudget::new(),
            speed,
        });
        config.vendors = Vendors::from_settings_with_budget(
            &simulator_settings(simulators)?,
            &RetryConfig::fast(),
            &budget,
        )
        .with_limit(VendorKind::Amc, DEFAULT_PROFILE, amc_limit);
        let counter = Arc::new(Counter::default());
        count_state_requests(&mut config, &counter, |inner, c| {
            Arc::new(CountingSlots::new(inner, c))
        });
        let c = counter.clone();
        config.wrap_sink = Some(Box::new(move |inner| {
            Arc::new(CountingSink { inner, counter: c })
        }));
        config.wrap_tasks = Some(Box::new(|inner| Arc::new(AttributedTasks { inner })));
        let deployment = Arc::new(LocalDeployment::new(config)?);
        Ok(Self {
            sim,
            dir,
            deployment,
            counter,
            speed,
        })
    }

    pub fn now(&self) -> OffsetDateTime {
        self.sim.sim.clock.now()
    }

    /// Gives every run its script (its duration × `duration_factor`) and its workflow its
    /// history (uncounted: before the day).
    pub async fn prepare(&self, planned: &[Planned], duration_factor: f64) -> anyhow::Result<()> {
        let history = DirHistory::new(self.dir.path().join("_ledger").join(HISTORY_DIR));
        let now = self.now();
        for p in planned {
            self.sim.sim.control.script_for(
                p.kind,
                p.tag.clone(),
                RunScript {
                    queue_seconds: 0.0,
                    run_seconds: p.spec.duration as f64 * duration_factor,
                    rows: 10,
                    files: 1,
                    ..RunScript::default()
                },
            );
            if !p.spec.history.durations.is_empty() {
                history
                    .write(&workflow_key(&p.body, now), &p.spec.history)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends every request at its time (`sent_ms` from the first, on the simulators' clock)
    /// and waits for every execution to end.
    pub async fn run(&self, planned: Vec<Planned>) -> anyhow::Result<Day> {
        let started = std::time::Instant::now();
        let first = planned.iter().map(|p| p.spec.sent_ms).min().unwrap_or(0);
        let sends: Vec<_> = planned
            .into_iter()
            .map(|p| {
                let deployment = self.deployment.clone();
                let after =
                    Duration::from_secs_f64((p.spec.sent_ms - first) as f64 / 1_000.0 / self.speed);
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let triggered = deployment.trigger.handle_bytes(&p.body, None).await;
                    (p, triggered.map(|t| t.key().clone()))
                })
            })
            .collect();
        let mut started_runs = Vec::new();
        let mut refused = Vec::new();
        for send in sends {
            match send.await.context("a trigger task")? {
                (p, Ok(key)) => started_runs.push((p, key)),
                (p, Err(e)) => refused.push((p, e.to_string())),
            }
        }
        let mut ended = Vec::new();
        for (planned, key) in started_runs {
            let (execution, manifest) = self
                .deployment
                .wait(&key)
                .await?
                .with_context(|| format!("{key} has no execution"))?;
            ended.push(Ended {
                storage: self.counter.of(key.as_str()),
                submits: self.sim.sim.control.submits_of(&planned.tag),
                planned,
                key,
                execution,
                manifest,
            });
        }
        Ok(Day {
            ended,
            refused,
            dead_letters: self.deployment.dead_letters.sent().len(),
            wall: started.elapsed(),
        })
    }

    /// The most AMC executions any of `instances` had PENDING or RUNNING at once.
    pub fn amc_peak(&self, instances: &[String]) -> u64 {
        amc_peak_active(&self.sim.sim, instances)
    }

    /// 429s the simulators answered, per vendor (Adobe's and CARTO's simulators have no limit
    /// to refuse with).
    pub fn refusals(&self, vendor: VendorKind) -> Option<u64> {
        let control = &self.sim.sim.control;
        match vendor {
            VendorKind::Amc => Some(control.requests("amc.create.over_limit")),
            VendorKind::Amperity => Some(control.requests("amperity.rate_limited")),
            _ => None,
        }
    }
}
