//! A simulated day at scale (issue 22): thousands of runs on one virtual clock, through the
//! stack's intake, Lambda, Step Functions and the vendors, against AWS's quotas and the vendors'
//! limits. `bin/day/` prints its figures; `tests/day.rs` checks a small seeded day.
//!
//! Real code where it exists: the poll waits are `PollPlan` (through `poll_sim::Schedule`, the
//! arithmetic BENCHMARKS §1 checks against the interpreter) bounded by the poll handler's
//! `history_floor`; the throttle Retrier, and the transitions and history events per step, come
//! from the deployed definition run in the ASL interpreter (`machine.rs`); the trigger's batch
//! concurrency is `runbridge_lambda::trigger::SQS_CONCURRENCY`; prices are `cost.rs`. Modelled:
//! AWS's quotas (`quotas.rs`), Lambda (`lambda.rs`), the vendors' limits and latency, the AMC
//! queue's slots (arrival order, handed on at collect: BENCHMARKS §5's semantics), invocation
//! durations (`cost.rs`'s assumptions) and storage requests per step (BENCHMARKS §1 and §5).
//! `crate::realday` runs a scaled-down day of the same workload on the real stack and sets its
//! figures beside this model's.

pub mod calibrate;
pub mod engine;
pub mod figures;
pub mod lambda;
pub mod machine;
pub mod quotas;
pub mod run;
pub mod workload;

use crate::cost::{
    COLLECT_MEMORY_MB, COLLECT_SECONDS, POLL_MEMORY_MB, POLL_SECONDS, TRIGGER_MEMORY_MB,
    TRIGGER_SECONDS,
};
use crate::day::engine::Engine;
use crate::day::figures::Figures;
use crate::day::lambda::{Function, LambdaLimits};
use crate::day::machine::MachineFacts;
use crate::day::workload::{generate, Intake, RunSpec, Vendor, Workload};

/// How runs are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPolicy {
    /// runbridge's `PollPlan` (from the workflow's history).
    Plan,
    /// A fixed wait, seconds (the anchors).
    Fixed(u64),
}

impl PollPolicy {
    pub fn label(self) -> String {
        match self {
            PollPolicy::Plan => "runbridge (`PollPlan`)".to_owned(),
            PollPolicy::Fixed(s) => format!("fixed {s} s"),
        }
    }
}

/// Where Amperity's per-tenant limit is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A limiter per process (`runbridge_vendors::rate`, today): each environment keeps it alone.
    PerProcess,
    /// One budget per tenant shared by every environment of the stack (being built elsewhere).
    Shared,
}

impl Budget {
    pub fn label(self) -> &'static str {
        match self {
            Budget::PerProcess => "per-process limiter (today)",
            Budget::Shared => "shared budget",
        }
    }
}

/// Everything the day is run with besides the workload.
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    pub intake: Intake,
    pub waits: PollPolicy,
    /// `TriggerMaxConcurrency` (template default 5), SQS batch size (10), messages of a batch at once.
    pub trigger_max_concurrency: u64,
    pub batch_size: usize,
    pub trigger_lanes: usize,
    pub lambda: LambdaLimits,
    /// StartExecution and StateTransition buckets: (capacity, refill per second).
    pub start_execution: (f64, f64),
    pub state_transition: (f64, f64),
    pub scheduler_per_second: u64,
    pub s3_put_per_second: u64,
    pub s3_get_per_second: u64,
    pub max_history_events: u64,
    /// The AMC queue (`amc.max_concurrent`, 10) on or off, AMC's limit per instance.
    pub amc_queue: bool,
    pub amc_limit: u64,
    pub amperity_per_second: u64,
    pub amperity_budget: Budget,
    pub adobe_per_second: Option<u64>,
    pub carto_per_second: Option<u64>,
    pub vendor_latency_ms: u64,
    pub token_lifetime_ms: u64,
    pub trigger_ms: u64,
    pub poll_ms: u64,
    pub collect_ms: u64,
    /// StartExecution: SDK attempts and first backoff.
    pub sdk_attempts: u32,
    pub sdk_base_ms: u64,
    pub visibility_timeout_ms: u64,
    pub max_receives: u32,
    /// Every run's deadline, seconds; `None`: its vendor's default
    /// (`VendorKind::default_deadline_seconds`, what a request that sets none gets).
    pub deadline_seconds: Option<u64>,
}

impl Params {
    /// The stack as deployed with the template's defaults, in a large region.
    pub fn deployed(seed: u64, intake: Intake, waits: PollPolicy) -> Self {
        Self {
            seed,
            intake,
            waits,
            trigger_max_concurrency: 5,
            batch_size: 10,
            trigger_lanes: runbridge_lambda::trigger::SQS_CONCURRENCY,
            lambda: LambdaLimits {
                account_concurrency: 1_000,
                scaling_per_10s: 1_000,
                poll_reserved: None,
                collect_reserved: None,
                idle_reclaim_ms: 10 * 60_000,
                cold_start_ms: 300,
            },
            start_execution: (1_300.0, 300.0),
            state_transition: (5_000.0, 5_000.0),
            scheduler_per_second: 1_000,
            s3_put_per_second: 3_500,
            s3_get_per_second: 5_500,
            max_history_events: runbridge_asl::DEFAULT_MAX_HISTORY_EVENTS as u64,
            amc_queue: true,
            amc_limit: 10,
            amperity_per_second: 10,
            amperity_budget: Budget::PerProcess,
            adobe_per_second: None,
            carto_per_second: None,
            vendor_latency_ms: 150,
            token_lifetime_ms: 3_600_000,
            trigger_ms: (TRIGGER_SECONDS * 1_000.0) as u64,
            poll_ms: (POLL_SECONDS * 1_000.0) as u64,
            collect_ms: (COLLECT_SECONDS * 1_000.0) as u64,
            sdk_attempts: 3,
            sdk_base_ms: 100,
            visibility_timeout_ms: 360_000,
            max_receives: 5,
            deadline_seconds: None,
        }
    }

    /// The same stack with no latency anywhere (calibration against the interpreter's figures).
    pub fn instant(mut self) -> Self {
        self.vendor_latency_ms = 0;
        self.trigger_ms = 0;
        self.poll_ms = 0;
        self.collect_ms = 0;
        self.lambda.cold_start_ms = 0;
        self
    }

    /// The spacing of `runbridge_vendors::rate` (10 % headroom over the limit).
    pub fn amperity_spacing_ms(&self) -> u64 {
        (1_100.0 / self.amperity_per_second as f64).ceil() as u64
    }

    pub fn vendor_limit(&self, vendor: Vendor) -> Option<u64> {
        match vendor {
            Vendor::Amperity => Some(self.amperity_per_second),
            Vendor::Adobe => self.adobe_per_second,
            Vendor::Carto => self.carto_per_second,
            Vendor::Amc => None,
        }
    }

    pub fn memory_gb(&self, f: Function) -> f64 {
        match f {
            Function::Trigger => TRIGGER_MEMORY_MB / 1_024.0,
            Function::Poll => POLL_MEMORY_MB / 1_024.0,
            Function::Collect => COLLECT_MEMORY_MB / 1_024.0,
        }
    }
}

/// Simulates a day of these runs.
pub fn simulate(params: &Params, facts: &MachineFacts, specs: Vec<RunSpec>) -> Figures {
    let started = std::time::Instant::now();
    let engine = Engine::new(params, facts, specs).run();
    Figures::of(engine, facts, started.elapsed())
}

/// Simulates the day of `workload`.
pub fn simulate_workload(params: &Params, facts: &MachineFacts, workload: &Workload) -> Figures {
    simulate(params, facts, generate(workload))
}
