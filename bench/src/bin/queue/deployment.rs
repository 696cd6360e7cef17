//! One counted local deployment on its own AMC simulator (the crashing holder included), and
//! the runs it yields once their executions end.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{
    DirHistory, LocalConfig, LocalDeployment, Simulators, StatusChanges, HISTORY_DIR,
};
use runbridge_asl::{Execution, TaskFailure, TaskInvoker};
use runbridge_bench::storage::{
    amc_peak_active, count_state_requests, task_run, AttributedTasks, Counter, CountingSlots,
    Requests, ScopeWrite,
};
use runbridge_core::{
    Clock, HandleRef, IdempotencyKey, LedgerEntry, Manifest, OffsetDateTime, Prediction,
    RunRequest, RunState, VendorKind, DEFAULT_PROFILE,
};
use runbridge_handlers::{History, Ledger};
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use serde_json::Value;

use crate::params::{RUN_SECONDS, WARM_UP_ROUNDS};

/// The states of the poll loop and the ending every run passes, with or without the queue.
pub const LOOP_STATES: [&str; 6] = [
    "IsQueued",
    "WaitBeforePoll",
    "Poll",
    "IsRunFinished",
    "Collect",
    "RunSucceeded",
];

pub fn request(instance: &str, id: &str) -> Vec<u8> {
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
/// Loses the status-change events of the crashed run's execution (the rest are delivered).
pub struct LostStopEvents {
    pub inner: Arc<dyn StatusChanges>,
    pub victim: Arc<Mutex<Option<String>>>,
}

#[async_trait]
impl StatusChanges for LostStopEvents {
    async fn deliver(&self, event: Value) {
        let victim = self.victim.lock().expect("victim lock").clone();
        let of_victim = victim.is_some_and(|key| event.to_string().contains(&key));
        if !of_victim {
            self.inner.deliver(event).await;
        }
    }
}

pub struct CrashingTasks {
    pub inner: Arc<dyn TaskInvoker>,
    pub victim: Arc<Mutex<Option<String>>>,
    pub crashed: Mutex<bool>,
    pub clock: Arc<dyn Clock>,
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
pub struct Bench {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub deployment: Arc<LocalDeployment>,
    pub counter: Arc<Counter>,
    pub slots: Arc<OnceLock<Arc<CountingSlots>>>,
    pub victim: Arc<Mutex<Option<String>>>,
}

/// One run, once its execution ended.
pub struct Run {
    pub key: String,
    pub execution: Execution,
    pub manifest: Option<Manifest>,
    pub entry: LedgerEntry,
    pub storage: Requests,
    /// The queue's share of `storage`: the enqueue and admit steps, and the slot requests of
    /// the poll and collect steps (lease renewals, the release).
    pub queue_storage: Requests,
    /// That share by step: enqueue, admit, polls (slot requests), collect (slot requests).
    pub queue_steps: [Requests; 4],
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.manifest
            .as_ref()
            .is_some_and(|m| m.state == RunState::Succeeded)
    }

    pub fn polls(&self) -> usize {
        self.execution
            .states_entered()
            .iter()
            .filter(|s| **s == "Poll")
            .count()
    }

    /// Transitions beyond the poll loop and its ending: the queue's states and their retries.
    pub fn queue_transitions(&self) -> u64 {
        let loop_states = self
            .execution
            .states_entered()
            .iter()
            .filter(|s| LOOP_STATES.contains(s))
            .count() as u64;
        self.execution.transitions - loop_states
    }

    pub fn arrived(&self) -> OffsetDateTime {
        self.entry
            .queue()
            .map_or(self.entry.claimed_at, |q| q.since)
    }
}

impl Bench {
    pub async fn start(limit: Option<u32>, speed: f64, crash: bool) -> anyhow::Result<Self> {
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
        let (s, clock) = (slots.clone(), config.clock.clone());
        count_state_requests(&mut config, &counter, move |inner, c| {
            let counting = Arc::new(CountingSlots::new(inner, c).with_clock(clock));
            let _ = s.set(counting.clone());
            counting
        });
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
        if crash {
            // The crash takes the stop event with it: the stop handler would give the slot back
            // at once, and what is measured here is the lease, the last line of defence.
            let v = victim.clone();
            config.wrap_status_changes = Some(Box::new(move |inner| {
                Arc::new(LostStopEvents { inner, victim: v })
            }));
        }
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

    pub fn now(&self) -> OffsetDateTime {
        self.sim.sim.clock.now()
    }

    /// Triggers `requests` (instance, request id) at once: the keys taken, and how many the
    /// trigger refused.
    pub async fn trigger(&self, requests: &[(String, String)]) -> (Vec<IdempotencyKey>, usize) {
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
    pub async fn settle(&self, keys: &[IdempotencyKey]) -> anyhow::Result<Vec<Run>> {
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
    pub async fn warm_up(&self, instances: &[String]) -> anyhow::Result<()> {
        for (round, count) in WARM_UP_ROUNDS.iter().enumerate() {
            let (runs, _) = self
                .wave(&format!("warm{round}"), instances, *count)
                .await?;
            ensure!(runs.iter().all(Run::succeeded), "a warm-up run failed");
        }
        Ok(())
    }

    /// The prediction the workflow of `instance` has now.
    pub async fn prediction(&self, instance: &str) -> anyhow::Result<Option<Prediction>> {
        let request = RunRequest::from_json(&request(instance, "any"))?.resolve(self.now());
        let history = DirHistory::new(self.dir.path().join("_ledger").join(HISTORY_DIR));
        Ok(history.read(&request.workflow_key()).await?.predict())
    }

    /// Triggers `count` runs per instance at once and waits for them all.
    pub async fn wave(
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

    pub fn writes(&self) -> Vec<ScopeWrite> {
        self.slots.get().map(|s| s.writes()).unwrap_or_default()
    }

    pub fn max_active(&self, instances: &[String]) -> u64 {
        amc_peak_active(&self.sim.sim, instances)
    }

    pub fn amc_429s(&self) -> u64 {
        self.sim.sim.control.requests("amc.create.over_limit")
    }
}
