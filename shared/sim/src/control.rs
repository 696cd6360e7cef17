//! How simulated runs behave (scripts) and what happened (counters).
//!
//! Every run a simulator creates takes the next [`RunScript`] queued for its vendor, or the
//! default one: how long it queues and runs, how it ends, how many CSV rows and files it yields.
//! Vendor modules turn a script's [`RunPhase`] into their own state names.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use runbridge_core::VendorKind;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How a run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Finishes successfully.
    Succeed,
    /// Fails with this message; `customer` says whether the vendor blames the configuration.
    Fail {
        /// Vendor message.
        message: String,
        /// True for a configuration (customer) error, false for a platform error.
        customer: bool,
    },
    /// Refused by the vendor after submission (AMC REJECTED).
    Reject {
        /// Vendor message.
        message: String,
    },
    /// Never finishes (for deadline tests).
    NeverFinish,
}

/// The behaviour of one simulated run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RunScript {
    /// How it ends.
    pub outcome: Outcome,
    /// Simulated seconds spent queued before running.
    pub queue_seconds: f64,
    /// Simulated seconds spent running.
    pub run_seconds: f64,
    /// CSV data rows per result file (vendors with files).
    pub rows: u64,
    /// Result files.
    pub files: u32,
    /// Simulated seconds after success during which results are "unavailable for download".
    pub publish_seconds: f64,
}

impl Default for RunScript {
    fn default() -> Self {
        Self {
            outcome: Outcome::Succeed,
            queue_seconds: 5.0,
            run_seconds: 60.0,
            rows: 1_000,
            files: 1,
            publish_seconds: 0.0,
        }
    }
}

/// Where a run is at a given time, vendor-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPhase {
    /// Accepted, waiting.
    Queued,
    /// Running.
    Running,
    /// Succeeded; results not yet downloadable.
    Publishing,
    /// Ended with the script's outcome.
    Ended(Outcome),
    /// Cancelled by the client; `stopping` while the vendor winds it down.
    Cancelled {
        /// Still stopping.
        stopping: bool,
    },
}

/// One run created by a simulator.
#[derive(Debug, Clone)]
pub struct ScriptedRun {
    /// When the vendor accepted it (simulated time).
    pub created_at: OffsetDateTime,
    /// Its script.
    pub script: RunScript,
    /// When a client cancelled it.
    pub cancelled_at: Option<OffsetDateTime>,
}

/// Simulated seconds a cancelled run spends stopping.
const STOPPING_SECONDS: f64 = 5.0;

impl ScriptedRun {
    /// A run created at `now` following `script`.
    pub fn new(created_at: OffsetDateTime, script: RunScript) -> Self {
        Self {
            created_at,
            script,
            cancelled_at: None,
        }
    }

    /// The phase at `now`.
    pub fn phase(&self, now: OffsetDateTime) -> RunPhase {
        let age = (now - self.created_at).as_seconds_f64();
        let s = &self.script;
        let finish = s.queue_seconds + s.run_seconds;
        if let Some(at) = self.cancelled_at {
            let cancel_age = (at - self.created_at).as_seconds_f64();
            // A cancel after the run ended changes nothing.
            if s.outcome == Outcome::NeverFinish || cancel_age < finish {
                return RunPhase::Cancelled {
                    stopping: (now - at).as_seconds_f64() < STOPPING_SECONDS,
                };
            }
        }
        if age < s.queue_seconds {
            RunPhase::Queued
        } else if age < finish || s.outcome == Outcome::NeverFinish {
            RunPhase::Running
        } else if s.outcome == Outcome::Succeed && age < finish + s.publish_seconds {
            RunPhase::Publishing
        } else {
            RunPhase::Ended(s.outcome.clone())
        }
    }

    /// When the run ended or will end (None for never).
    pub fn ends_at(&self) -> Option<OffsetDateTime> {
        (self.script.outcome != Outcome::NeverFinish).then(|| {
            self.created_at
                + Duration::seconds_f64(self.script.queue_seconds + self.script.run_seconds)
        })
    }
}

/// Who started a run that runbridge did not start (see [`Control::add_foreign_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignStarter {
    /// The vendor's scheduler (Amperity: principal name `Automated workflow`).
    Scheduler,
    /// A person in the vendor's UI.
    User,
    /// The same API key runbridge uses (another process, another tool sharing the key).
    SameApiKey,
}

/// A run of a configuration that something other than the client under test started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRun {
    /// The tenant (Amperity) it belongs to.
    pub tenant: String,
    /// The configuration (Amperity `config_id`) it runs.
    pub config_id: String,
    /// When it was created (simulator clock).
    pub created_at: OffsetDateTime,
    /// Who started it.
    pub starter: ForeignStarter,
}

/// Scripts for the next runs and counters of what clients did.
#[derive(Debug, Default)]
pub struct Control {
    default_script: Mutex<HashMap<VendorKind, RunScript>>,
    queued: Mutex<HashMap<VendorKind, VecDeque<RunScript>>>,
    runs_created: Mutex<HashMap<VendorKind, u64>>,
    requests: Mutex<BTreeMap<String, u64>>,
    maxima: Mutex<BTreeMap<String, u64>>,
    foreign: Mutex<HashMap<VendorKind, Vec<ForeignRun>>>,
    page_cap: Mutex<HashMap<VendorKind, usize>>,
    owners: Mutex<HashMap<(VendorKind, String), String>>,
    keyed: Mutex<HashMap<VendorKind, Vec<(String, RunScript)>>>,
    keyed_submits: Mutex<HashMap<String, u64>>,
}

impl Control {
    /// Gives `resource` of `vendor` (an AMC instance id, an Amperity tenant) to `account` (one of
    /// [`crate::auth::ACCOUNTS`]): only that account's tokens may use it from now on.
    pub fn assign(&self, vendor: VendorKind, resource: &str, account: &str) {
        self.owners
            .lock()
            .expect("control lock")
            .insert((vendor, resource.to_owned()), account.to_owned());
    }

    /// The account that owns `resource` of `vendor` (the default account unless assigned).
    pub fn owner(&self, vendor: VendorKind, resource: &str) -> String {
        self.owners
            .lock()
            .expect("control lock")
            .get(&(vendor, resource.to_owned()))
            .cloned()
            .unwrap_or_else(|| crate::accounts::DEFAULT_ACCOUNT.to_owned())
    }

    /// Adds a run that runbridge did not start (a schedule, a person, another process); it is
    /// not counted in [`Control::runs_created`]. Simulators that support it (Amperity) take it
    /// in on their next request.
    pub fn add_foreign_run(&self, vendor: VendorKind, run: ForeignRun) {
        self.foreign
            .lock()
            .expect("control lock")
            .entry(vendor)
            .or_default()
            .push(run);
    }

    /// Takes the foreign runs added for `vendor` since the last call.
    pub fn take_foreign_runs(&self, vendor: VendorKind) -> Vec<ForeignRun> {
        self.foreign
            .lock()
            .expect("control lock")
            .remove(&vendor)
            .unwrap_or_default()
    }

    /// Makes `vendor`'s list route answer at most `cap` items per page, whatever `limit` asks
    /// (servers may page smaller than asked; clients must follow the token, not count items).
    pub fn set_list_page_cap(&self, vendor: VendorKind, cap: usize) {
        self.page_cap
            .lock()
            .expect("control lock")
            .insert(vendor, cap.max(1));
    }

    /// The page cap set for `vendor`, if any.
    pub fn list_page_cap(&self, vendor: VendorKind) -> Option<usize> {
        self.page_cap
            .lock()
            .expect("control lock")
            .get(&vendor)
            .copied()
    }

    /// Queues a script for the next run of `vendor`.
    pub fn push_script(&self, vendor: VendorKind, script: RunScript) {
        self.queued
            .lock()
            .expect("control lock")
            .entry(vendor)
            .or_default()
            .push_back(script);
    }

    /// Sets the script used when none is queued.
    pub fn set_default_script(&self, vendor: VendorKind, script: RunScript) {
        self.default_script
            .lock()
            .expect("control lock")
            .insert(vendor, script);
    }

    /// Takes the script for a run being created now and counts the run.
    pub fn next_run(&self, vendor: VendorKind) -> RunScript {
        *self
            .runs_created
            .lock()
            .expect("control lock")
            .entry(vendor)
            .or_default() += 1;
        if let Some(s) = self
            .queued
            .lock()
            .expect("control lock")
            .get_mut(&vendor)
            .and_then(VecDeque::pop_front)
        {
            return s;
        }
        self.default_script
            .lock()
            .expect("control lock")
            .get(&vendor)
            .cloned()
            .unwrap_or_default()
    }

    /// Gives every run of `vendor` whose create request body contains `needle` this script
    /// (before any queued one), and counts those creates ([`Control::submits_of`]): a benchmark
    /// submitting many runs at once gives each its own duration whatever order they arrive in.
    pub fn script_for(&self, vendor: VendorKind, needle: impl Into<String>, script: RunScript) {
        self.keyed
            .lock()
            .expect("control lock")
            .entry(vendor)
            .or_default()
            .push((needle.into(), script));
    }

    /// Takes the script for a run created now from a request with `body`: the first
    /// [`Control::script_for`] whose needle the body contains, else [`Control::next_run`].
    pub fn next_run_for(&self, vendor: VendorKind, body: &[u8]) -> RunScript {
        let text = String::from_utf8_lossy(body);
        let found = self
            .keyed
            .lock()
            .expect("control lock")
            .get(&vendor)
            .and_then(|scripts| scripts.iter().find(|(n, _)| text.contains(n.as_str())))
            .cloned();
        let Some((needle, script)) = found else {
            return self.next_run(vendor);
        };
        *self
            .runs_created
            .lock()
            .expect("control lock")
            .entry(vendor)
            .or_default() += 1;
        *self
            .keyed_submits
            .lock()
            .expect("control lock")
            .entry(needle)
            .or_default() += 1;
        script
    }

    /// Runs created from requests containing `needle` (given with [`Control::script_for`]).
    pub fn submits_of(&self, needle: &str) -> u64 {
        self.keyed_submits
            .lock()
            .expect("control lock")
            .get(needle)
            .copied()
            .unwrap_or(0)
    }

    /// Runs created for `vendor` so far: the number duplicate-submission tests assert on.
    pub fn runs_created(&self, vendor: VendorKind) -> u64 {
        self.runs_created
            .lock()
            .expect("control lock")
            .get(&vendor)
            .copied()
            .unwrap_or(0)
    }

    /// Counts one request to `operation` (e.g. `amc.status`).
    pub fn count(&self, operation: &str) {
        *self
            .requests
            .lock()
            .expect("control lock")
            .entry(operation.to_owned())
            .or_default() += 1;
    }

    /// Requests to `operation` so far.
    pub fn requests(&self, operation: &str) -> u64 {
        self.requests
            .lock()
            .expect("control lock")
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Records `value` of gauge `name` (e.g. `amc.active.<instance>`), keeping the highest seen.
    pub fn observe(&self, name: &str, value: u64) {
        let mut maxima = self.maxima.lock().expect("control lock");
        let max = maxima.entry(name.to_owned()).or_default();
        *max = (*max).max(value);
    }

    /// The highest value of gauge `name` seen so far (0 if never observed).
    pub fn max_observed(&self, name: &str) -> u64 {
        self.maxima
            .lock()
            .expect("control lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// All request counters.
    pub fn all_requests(&self) -> BTreeMap<String, u64> {
        self.requests.lock().expect("control lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_script_goes_to_the_request_naming_it_and_counts_its_creates() {
        let control = Control::default();
        let long = RunScript {
            run_seconds: 900.0,
            ..RunScript::default()
        };
        control.script_for(VendorKind::Amc, "'run-b'", long);
        let plain = control.next_run_for(VendorKind::Amc, b"{\"sqlQuery\":\"x = 'run-a'\"}");
        assert_eq!(plain.run_seconds, RunScript::default().run_seconds);
        let keyed = control.next_run_for(VendorKind::Amc, b"{\"sqlQuery\":\"x = 'run-b'\"}");
        assert_eq!(keyed.run_seconds, 900.0);
        // Another vendor's request naming it does not take it.
        let other = control.next_run_for(VendorKind::Carto, b"'run-b'");
        assert_eq!(other.run_seconds, RunScript::default().run_seconds);
        control.next_run_for(VendorKind::Amc, b"again 'run-b'");
        assert_eq!(control.submits_of("'run-b'"), 2);
        assert_eq!(control.submits_of("'run-a'"), 0);
        assert_eq!(control.runs_created(VendorKind::Amc), 3);
    }

    #[test]
    fn phases_follow_the_clock() {
        let t0 = OffsetDateTime::now_utc();
        let script = RunScript {
            queue_seconds: 10.0,
            run_seconds: 20.0,
            publish_seconds: 5.0,
            ..RunScript::default()
        };
        let run = ScriptedRun::new(t0, script);
        assert_eq!(run.phase(t0), RunPhase::Queued);
        assert_eq!(run.phase(t0 + Duration::seconds(15)), RunPhase::Running);
        assert_eq!(run.phase(t0 + Duration::seconds(32)), RunPhase::Publishing);
        assert_eq!(
            run.phase(t0 + Duration::seconds(40)),
            RunPhase::Ended(Outcome::Succeed)
        );
        let mut cancelled = run.clone();
        cancelled.cancelled_at = Some(t0 + Duration::seconds(12));
        assert_eq!(
            cancelled.phase(t0 + Duration::seconds(13)),
            RunPhase::Cancelled { stopping: true }
        );
        assert_eq!(
            cancelled.phase(t0 + Duration::seconds(40)),
            RunPhase::Cancelled { stopping: false }
        );
    }
}
