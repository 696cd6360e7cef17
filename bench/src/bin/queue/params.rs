//! The measurements' parameters: AMC's limit, the run time, the warm-up rounds, the request
//! counts and the simulator's speeds.

/// AMC's limit of PENDING + RUNNING executions per instance, and the queue's.
pub const LIMIT: u32 = 10;
/// Simulated seconds each AMC run takes.
pub const RUN_SECONDS: f64 = 600.0;
/// Runs of the workflow before a measurement, so that its history predicts the end: a first
/// round without history (polled by the default plan, so their recorded durations — the
/// middle of the last two polls — are off by up to half a lag), then a round predicted from it
/// (nobody waits: as many as the limit), which outnumbers the first in the history.
pub const WARM_UP_ROUNDS: [usize; 2] = [3, LIMIT as usize];
/// The instance of `examples/amc.json`.
pub const INSTANCE: &str = "amcabc123def";
/// Requests in the one-instance measurement.
pub const RUNS: usize = 50;
/// Instances and requests per instance in the many-instance measurement.
pub const INSTANCES: usize = 30;
pub const RUNS_PER_INSTANCE: usize = 30;
/// Requests in the crash measurement: enough that runs still wait when the crashed holder's
/// lease (`ADMISSION_LEASE` after its admission) runs out.
pub const CRASH_RUNS: usize = 100;
/// Simulated seconds per real second: the one-instance and crash measurements, and the
/// 30-instance one (slower, so that 900 runs' processing on a shared machine adds little
/// simulated time).
pub const SPEED: f64 = 100.0;
pub const SPEED_MANY: f64 = 25.0;
