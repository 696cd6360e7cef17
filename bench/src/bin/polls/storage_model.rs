//! The storage requests of one run, by step, measured once through the real handlers on the
//! Amperity simulator.

use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context};
use async_trait::async_trait;
use runbridge_adapters_local::{LocalConfig, LocalDeployment, Simulators};
use runbridge_asl::{TaskFailure, TaskInvoker};
use runbridge_bench::cost::Usage;
use runbridge_bench::storage::{
    count_state_requests, Counter, CountingSink, CountingSlots, Requests,
};
use runbridge_core::RunState;
use runbridge_sim::{RunScript, SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use serde_json::Value;

/// The storage requests of one run, by step, measured through the real handlers.
#[derive(Debug, Clone, Copy)]
pub struct StorageModel {
    pub trigger: Requests,
    pub first_poll: Requests,
    pub later_poll: Requests,
    pub collect: Requests,
    /// Polls and transitions of the measured run.
    pub polls: u64,
    pub transitions: u64,
}

impl StorageModel {
    /// What a run with `polls` polls and `transitions` transitions uses: one trigger and one
    /// collect invocation, its polls, and its S3 requests by the measured steps.
    pub fn usage(&self, polls: u64, transitions: u64) -> Usage {
        let later = polls.saturating_sub(1);
        let gets = self.trigger.gets()
            + self.first_poll.gets()
            + later * self.later_poll.gets()
            + self.collect.gets();
        let puts = self.trigger.puts()
            + self.first_poll.puts()
            + later * self.later_poll.puts()
            + self.collect.puts();
        Usage {
            transitions: transitions as f64,
            triggers: 1.0,
            polls: polls as f64,
            collects: 1.0,
            s3_gets: gets as f64,
            s3_puts: puts as f64,
        }
    }

    pub fn describe(&self) -> String {
        let r = |r: &Requests| format!("{} GET + {} PUT", r.gets(), r.puts());
        format!(
            "trigger {} (ledger claim, the submit's read and record), first poll {} (the \
             ledger entry, the workflow's history), every later poll {} (the ledger entry), \
             collect {} (ledger entry, manifest check, the result file as a multipart upload, \
             manifest, announcement, the history's read and write)",
            r(&self.trigger),
            r(&self.first_poll),
            r(&self.later_poll),
            r(&self.collect)
        )
    }
}

/// The tasks, with each invocation's storage requests recorded (one run at a time).
pub struct StepLog {
    pub inner: Arc<dyn TaskInvoker>,
    pub counter: Arc<Counter>,
    pub steps: Arc<Mutex<Vec<(String, Requests)>>>,
}

#[async_trait]
impl TaskInvoker for StepLog {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let step = input["step"].as_str().unwrap_or("?").to_owned();
        let before = self.counter.total();
        let out = self.inner.invoke(resource, input).await;
        let used = self.counter.total().since(&before);
        self.steps.lock().expect("steps lock").push((step, used));
        out
    }
}

/// One Amperity run (300 s) through the local deployment with every storage port counted.
pub async fn measure_storage() -> anyhow::Result<StorageModel> {
    let sim = SimHandle::start(SimConfig {
        speed: 100.0,
        token_ttl_seconds: 365 * 86_400,
        download_url_ttl_seconds: 365 * 86_400,
        default_script: RunScript {
            queue_seconds: 0.0,
            run_seconds: 300.0,
            rows: 100,
            files: 1,
            ..RunScript::default()
        },
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let counter = Arc::new(Counter::default());
    let steps = Arc::new(Mutex::new(Vec::new()));
    let mut config = LocalConfig::on_simulators(
        Simulators::Here {
            sim: &sim,
            profiles: &[],
        },
        &RetryConfig::fast(),
        dir.path().join("out"),
        dir.path().join("_ledger"),
    )?;
    count_state_requests(&mut config, &counter, |inner, c| {
        Arc::new(CountingSlots::new(inner, c))
    });
    let c = counter.clone();
    config.wrap_sink = Some(Box::new(move |inner| {
        Arc::new(CountingSink { inner, counter: c })
    }));
    let (c, s) = (counter.clone(), steps.clone());
    config.wrap_tasks = Some(Box::new(move |inner| {
        Arc::new(StepLog {
            inner,
            counter: c,
            steps: s,
        })
    }));
    let deployment = LocalDeployment::new(config)?;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amperity.json");
    let triggered = deployment
        .trigger
        .handle_bytes(&std::fs::read(path)?, None)
        .await?;
    let (execution, manifest) = deployment
        .wait(triggered.key())
        .await?
        .context("the execution was started")?;
    let manifest = manifest.context("a manifest")?;
    ensure!(
        manifest.state == RunState::Succeeded,
        "the measured run ended {:?}",
        manifest.state
    );
    let steps = steps.lock().expect("steps lock").clone();
    let polls: Vec<Requests> = steps
        .iter()
        .filter(|(s, _)| s == "poll")
        .map(|(_, r)| *r)
        .collect();
    let collects: Vec<Requests> = steps
        .iter()
        .filter(|(s, _)| s == "collect")
        .map(|(_, r)| *r)
        .collect();
    ensure!(
        polls.len() >= 3,
        "the measured run polled {} times",
        polls.len()
    );
    ensure!(collects.len() == 1, "{} collects", collects.len());
    ensure!(
        polls[1..].iter().all(|p| *p == polls[1]),
        "later polls made different storage requests: {polls:?}"
    );
    // What no step made, the trigger made (it ran before the execution's first task).
    let mut by_steps = Requests::default();
    for (_, r) in &steps {
        by_steps = by_steps.plus(r);
    }
    let model = StorageModel {
        trigger: counter.total().since(&by_steps),
        first_poll: polls[0],
        later_poll: polls[1],
        collect: collects[0],
        polls: polls.len() as u64,
        transitions: execution.transitions,
    };
    // The formula the tables use, checked against the run it comes from.
    let total = counter.total();
    let usage = model.usage(model.polls, model.transitions);
    ensure!(
        usage.s3_gets as u64 == total.gets() && usage.s3_puts as u64 == total.puts(),
        "the formula gives {} GET + {} PUT, the run made {} + {}",
        usage.s3_gets,
        usage.s3_puts,
        total.gets(),
        total.puts()
    );
    ensure!(
        execution.transitions == 3 * model.polls + 3,
        "{} transitions for {} polls: not IsQueued + 3 per poll + Collect + RunSucceeded",
        execution.transitions,
        model.polls
    );
    Ok(model)
}
