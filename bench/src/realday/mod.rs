//! A scaled-down day on the real stack (issue 22), beside the model (`crate::day`) run on the
//! same workload: every run of a seeded workload (`day::workload::generate`) goes through a real
//! [`runbridge_adapters_local::LocalDeployment`] — the real trigger, poll and collect handlers,
//! the deployed state machine in the ASL interpreter, the four vendor simulators over HTTP with
//! their limits (AMC's 10 executions per instance, Amperity's 10 requests per second per
//! tenant) — each run with its workload's duration (a `RunScript` the simulator finds by the
//! run's tag), its arrival, and its workflow's history stored before the day so its polls
//! follow the prediction as in the model.
//!
//! This is scaled real time, not a virtual clock: the simulators' clock and the Wait states run
//! `speed` times real time, so every millisecond the handlers take is `speed` ms of simulated
//! time. Figures that depend on timing (polls near a run's end, AMC slot hand-overs) carry that
//! noise; counts that must be zero do not depend on it.
//!
//! Here: `requests.rs` builds the requests and maps the workload onto the simulators' catalogs;
//! `stack.rs` starts the simulators and the counted deployment and runs the day; `figures.rs`
//! reads the figures from what the stack left; `compare.rs` sets them beside the model's.

pub mod compare;
pub mod figures;
pub mod requests;
pub mod stack;

use crate::day::figures::Figures;
use crate::day::machine::MachineFacts;
use crate::day::workload::{generate, Intake, Workload};
use crate::day::{simulate, Budget, Params, PollPolicy};
use crate::realday::figures::RealFigures;
use crate::realday::requests::{plan, specs};
use crate::realday::stack::{Stack, AMC_LIMIT};

/// A real day's size and clock.
#[derive(Debug, Clone, Copy)]
pub struct RealDay {
    pub workload: Workload,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// AMC's queue (`amc.max_concurrent`); `None` switches it off.
    pub amc_limit: Option<u32>,
    /// Each run's duration at the simulator ÷ its workload's (1: as the model has it; another
    /// value is the tests' negative control).
    pub duration_factor: f64,
}

impl RealDay {
    /// The issue's mix and durations, `runs` runs sent at once (the SQS burst at 02:00), the
    /// accounts scaled down with the runs: an AMC instance per 20 runs, an Amperity tenant per
    /// 20, two Adobe orgs and CARTO accounts.
    pub fn burst(runs: usize, seed: u64, speed: f64) -> Self {
        let mut workload = Workload::issue(runs, Intake::SqsBurst, seed);
        workload.night_share = 1.0;
        workload.amc_instances = runs.div_ceil(20).max(1);
        workload.amperity_tenants = runs.div_ceil(20).max(1);
        workload.other_accounts = 2;
        Self {
            workload,
            speed,
            amc_limit: Some(AMC_LIMIT),
            duration_factor: 1.0,
        }
    }

    /// The model's parameters for this day: the deployed stack, runbridge's poll plan, one
    /// Amperity budget per tenant (the real day runs in one process: one limiter per tenant).
    pub fn model_params(&self) -> Params {
        let mut params =
            Params::deployed(self.workload.seed, self.workload.intake, PollPolicy::Plan);
        params.amperity_budget = Budget::Shared;
        params.amc_queue = self.amc_limit.is_some();
        params.amc_limit = u64::from(self.amc_limit.unwrap_or(AMC_LIMIT));
        params
    }
}

/// The real day and the model's day of the same runs.
pub struct Compared {
    pub day: RealDay,
    pub real: RealFigures,
    pub model: Figures,
}

/// Runs `day` on the real stack, then the model on the same runs.
pub async fn run(day: RealDay, facts: &MachineFacts) -> anyhow::Result<Compared> {
    let stack = Stack::start(day.speed, day.amc_limit).await?;
    let planned = plan(&generate(&day.workload), stack.now());
    let model_specs = specs(&planned);
    stack.prepare(&planned, day.duration_factor).await?;
    let ended = stack.run(planned).await?;
    let real = RealFigures::of(&ended, &stack);
    let model = simulate(&day.model_params(), facts, model_specs);
    Ok(Compared { day, real, model })
}
