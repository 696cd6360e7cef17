//! One simulated run: its workload, its poll schedule (the real `PollPlan`), and what it did.

use crate::day::workload::RunSpec;
use crate::day::PollPolicy;
use crate::poll_sim::{Schedule, Waits};
use runbridge_core::BackoffPolicy;

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A Lambda task's throttle retries ran out.
    LambdaThrottle,
    /// The execution's history reached its quota.
    History,
    /// Still running at the vendor when its deadline passed: the poll cancelled it (the
    /// request's deadline, the vendor's default here), as the stack does.
    Deadline,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not ended when the day's events ran out.
    Pending,
    Succeeded,
    Failed(Cause),
    /// Its request went to the dead-letter queue.
    DeadLettered,
}

/// One run and what it did.
pub struct Run {
    pub spec: RunSpec,
    pub schedule: Schedule,
    pub outcome: Outcome,
    /// SQS receives of its request that failed.
    pub receives: u32,
    /// Vendor submissions (more than one is a duplicate vendor run).
    pub submits: u32,
    pub submitted_ms: Option<u64>,
    pub vendor_end_ms: u64,
    pub started_ms: Option<u64>,
    pub queued_ms: Option<u64>,
    pub detected_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub polls: u64,
    /// Throttled Lambda attempts its Retrier retried.
    pub retries: u64,
    /// The ages of its last two polls (collect records their middle as the duration).
    pub poll_ages: (u64, u64),
    pub s3_gets: u64,
    pub s3_puts: u64,
    pub gb_seconds: f64,
    /// Lambda invocations (a trigger batch's shared among its messages).
    pub triggers: f64,
    pub poll_calls: f64,
    pub collects: f64,
    pub manifest: bool,
    pub cancelled: bool,
    pub holds_slot: bool,
}

impl Run {
    pub fn new(spec: RunSpec, policy: PollPolicy, seed: u64) -> Self {
        let waits = match policy {
            PollPolicy::Plan => Waits::Planned(spec.prediction),
            PollPolicy::Fixed(s) => Waits::Backoff(BackoffPolicy::fixed(s)),
        };
        Self {
            spec,
            schedule: Schedule::new(waits, seed),
            outcome: Outcome::Pending,
            receives: 0,
            submits: 0,
            submitted_ms: None,
            vendor_end_ms: 0,
            started_ms: None,
            queued_ms: None,
            detected_ms: None,
            finished_ms: None,
            polls: 0,
            retries: 0,
            poll_ages: (0, 0),
            s3_gets: 0,
            s3_puts: 0,
            gb_seconds: 0.0,
            triggers: 0.0,
            poll_calls: 0.0,
            collects: 0.0,
            manifest: false,
            cancelled: false,
            holds_slot: false,
        }
    }

    /// The duration its collect records: the middle of its last two polls.
    pub fn recorded_seconds(&self) -> u64 {
        (self.poll_ages.0 + self.poll_ages.1) / 2
    }
}
