//! The seeded day: how many runs, which vendor and account each belongs to, when its request
//! arrives, how long the vendor takes, and what its workflow's history predicts.

use runbridge_core::{DurationHistory, Prediction, VendorKind, HISTORY_RUNS};

use crate::poll_sim::Mix;
use crate::seeded::Seeded;

/// The four vendors, in the issue's mix order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Amc,
    Amperity,
    Adobe,
    Carto,
}

impl Vendor {
    pub const ALL: [Vendor; 4] = [Vendor::Amc, Vendor::Amperity, Vendor::Adobe, Vendor::Carto];

    /// runbridge's name for it.
    pub fn kind(self) -> VendorKind {
        match self {
            Vendor::Amc => VendorKind::Amc,
            Vendor::Amperity => VendorKind::Amperity,
            Vendor::Adobe => VendorKind::Adobe,
            Vendor::Carto => VendorKind::Carto,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Amc => "AMC",
            Vendor::Amperity => "Amperity",
            Vendor::Adobe => "Adobe",
            Vendor::Carto => "CARTO",
        }
    }
}

/// How the night's burst reaches the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Requests sent to the queue spread evenly over 02:00–03:00.
    Spread,
    /// Every request of the hour sent to the queue at 02:00:00.
    SqsBurst,
    /// EventBridge Scheduler schedules firing at 02:00:00, delivering to the queue.
    SchedulerCron,
}

impl Intake {
    pub const ALL: [Intake; 3] = [Intake::Spread, Intake::SqsBurst, Intake::SchedulerCron];

    pub fn label(self) -> &'static str {
        match self {
            Intake::Spread => "spread over 02:00–03:00",
            Intake::SqsBurst => "SQS, all at 02:00",
            Intake::SchedulerCron => "Scheduler cron at 02:00:00",
        }
    }
}

/// How AMC runs spread over instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    Even,
    /// The busiest 10 % of instances carry 30 % of the runs.
    Top10Carry30,
}

/// The workload's shape.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub runs: usize,
    pub seed: u64,
    pub intake: Intake,
    pub skew: Skew,
    /// Percent of runs per vendor: AMC, Amperity, Adobe, CARTO.
    pub mix: [u32; 4],
    pub amc_instances: usize,
    pub amperity_tenants: usize,
    /// Adobe orgs and CARTO accounts.
    pub other_accounts: usize,
    /// Shortest and longest run, seconds (log-uniform between).
    pub shortest: u64,
    pub longest: u64,
    /// Share of runs in the 02:00–03:00 hour; the rest spread over the day.
    pub night_share: f64,
}

impl Workload {
    /// The issue's day.
    pub fn issue(runs: usize, intake: Intake, seed: u64) -> Self {
        Self {
            runs,
            seed,
            intake,
            skew: Skew::Top10Carry30,
            mix: [50, 30, 10, 10],
            amc_instances: 500,
            amperity_tenants: 50,
            other_accounts: 20,
            shortest: 300,
            longest: 21_600,
            night_share: 0.6,
        }
    }
}

/// One run of the day.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub vendor: Vendor,
    /// Instance, tenant or account index within the vendor.
    pub account: usize,
    /// When the request is sent (ms of the day); for the cron shape, the schedule's time.
    pub sent_ms: u64,
    /// Seconds the vendor takes from submission.
    pub duration: u64,
    /// What the workflow's previous runs predict.
    pub prediction: Option<Prediction>,
    /// Those previous runs' durations (`prediction` is theirs; the real day stores them).
    pub history: DurationHistory,
}

/// 02:00 in ms of the day.
pub const NIGHT_MS: u64 = 2 * 3_600_000;
const DAY_MS: u64 = 24 * 3_600_000;

fn pick_account(rng: &mut Seeded, count: usize, skew: Skew) -> usize {
    match skew {
        Skew::Top10Carry30 if count >= 10 => {
            let top = count / 10;
            if rng.unit() < 0.3 {
                (rng.unit() * top as f64) as usize
            } else {
                top + (rng.unit() * (count - top) as f64) as usize
            }
        }
        _ => (rng.unit() * count as f64) as usize,
    }
}

/// The day's runs, in no particular order.
pub fn generate(w: &Workload) -> Vec<RunSpec> {
    let mut rng = Seeded::of(&[0xDA7, w.seed]);
    let total: u32 = w.mix.iter().sum();
    let night = (w.runs as f64 * w.night_share).round() as usize;
    (0..w.runs)
        .map(|i| {
            let mut pick = rng.unit() * total as f64;
            let mut vendor = Vendor::Carto;
            for (v, share) in Vendor::ALL.iter().zip(w.mix) {
                if pick < share as f64 {
                    vendor = *v;
                    break;
                }
                pick -= share as f64;
            }
            let account = match vendor {
                Vendor::Amc => pick_account(&mut rng, w.amc_instances, w.skew),
                Vendor::Amperity => pick_account(&mut rng, w.amperity_tenants, w.skew),
                _ => pick_account(&mut rng, w.other_accounts, Skew::Even),
            };
            let sent_ms = if i < night {
                match w.intake {
                    Intake::Spread => NIGHT_MS + (rng.unit() * 3_600_000.0) as u64,
                    Intake::SqsBurst | Intake::SchedulerCron => NIGHT_MS,
                }
            } else {
                // The rest of the day, outside the night hour.
                let at = (rng.unit() * (DAY_MS - 3_600_000) as f64) as u64;
                if at >= NIGHT_MS {
                    at + 3_600_000
                } else {
                    at
                }
            };
            // The workflow's median, log-uniform; its history and this run within ±30 % of it.
            let (lo, hi) = ((w.shortest as f64).ln(), (w.longest as f64).ln());
            let median = rng.between(lo, hi).exp().round() as u64;
            let mut history = DurationHistory::default();
            for _ in 0..HISTORY_RUNS {
                history.record(Mix::Wide.draw(median, &mut rng).0);
            }
            let duration = Mix::Wide.draw(median, &mut rng).0.max(1);
            RunSpec {
                vendor,
                account,
                sent_ms,
                duration,
                prediction: history.predict(),
                history,
            }
        })
        .collect()
}
