//! What every handler test starts from: the vendor simulators (the vendor side, with faults
//! injected per call), vendor clients pointed at them, the ports in memory, the simulators'
//! clock, and ledger entries in each state of the lifecycle.

use std::sync::Arc;

use runbridge_adapters_local::{simulator_settings, Simulators};
use runbridge_core::{
    Clock, Fingerprint, IdempotencyKey, LedgerEntry, OffsetDateTime, RecordedRun, ResolvedRequest,
    RunRequest, ScopeQueue, SlotHold, VendorKind, DEFAULT_PROFILE,
};
use runbridge_handlers::admit::{AdmitInput, Admitter};
use runbridge_handlers::finish::Finisher;
use runbridge_handlers::queue::change;
use runbridge_handlers::stopped::Stopper;
use runbridge_handlers::submission::DEFAULT_CLAIM_LEASE;
use runbridge_sim::{Fault, FaultRule, RunScript, SimConfig, SimHandle};
use runbridge_test_support::memory::{
    LogEvents, MemoryCallbacks, MemoryLedger, MemorySink, MemorySlots,
};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{SubmittedRun, Vendor, Vendors};

/// Simulated seconds a run queues, then runs: long enough that no test sees one end, so a
/// cancel always finds it running.
const QUEUE_SECONDS: f64 = 10.0;
const RUN_SECONDS: f64 = 3_600.0;

/// The simulators, vendor clients on them, and the handlers' ports in memory.
pub struct Ctx {
    /// The vendor simulators; their clock is the handlers' clock.
    pub sim: SimHandle,
    /// Vendor clients pointing at them (AMC with its default limit of runs at once).
    pub vendors: Vendors,
    /// The idempotency ledger.
    pub ledger: Arc<MemoryLedger>,
    /// The concurrency slots.
    pub slots: Arc<MemorySlots>,
    /// Where manifests land.
    pub sink: Arc<MemorySink>,
    /// Announced outcomes.
    pub events: Arc<LogEvents>,
    /// The parked tasks, woken by whoever frees a slot.
    pub callbacks: Arc<MemoryCallbacks>,
}

impl Ctx {
    /// Fresh simulators (at real speed: tests move their clock on by hand) and empty ports.
    pub async fn start() -> Self {
        let sim = SimHandle::start(SimConfig {
            default_script: RunScript {
                queue_seconds: QUEUE_SECONDS,
                run_seconds: RUN_SECONDS,
                ..RunScript::default()
            },
            ..SimConfig::default()
        })
        .await
        .expect("simulators start");
        let settings = simulator_settings(Simulators::Here {
            sim: &sim,
            profiles: &[],
        })
        .expect("no profiles to check");
        Self {
            vendors: Vendors::from_settings(&settings, &RetryConfig::fast()),
            sim,
            ledger: Arc::default(),
            slots: Arc::default(),
            sink: Arc::default(),
            events: Arc::default(),
            callbacks: Arc::default(),
        }
    }

    /// The same, with AMC's default profile limited to `limit` runs at once.
    pub fn with_amc_limit(mut self, limit: u32) -> Self {
        self.vendors = self
            .vendors
            .with_limit(VendorKind::Amc, DEFAULT_PROFILE, Some(limit));
        self
    }

    /// The handlers' clock: the simulators'.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.sim.sim.clone()
    }

    /// Now, on that clock.
    pub fn now(&self) -> OffsetDateTime {
        self.sim.sim.clock.now()
    }

    /// Moves that clock on.
    pub fn advance(&self, seconds: f64) {
        self.sim.sim.clock.advance(seconds);
    }

    /// The client of `vendor`'s default profile.
    pub fn vendor(&self, vendor: VendorKind) -> Arc<dyn Vendor> {
        self.vendors
            .get(vendor)
            .expect("every vendor is configured")
    }

    /// Runs the simulator of `vendor` created.
    pub fn runs_created(&self, vendor: VendorKind) -> u64 {
        self.sim.sim.control.runs_created(vendor)
    }

    /// Requests the simulators counted as `operation` (`amc.list`, `amc.cancel`, …).
    pub fn calls(&self, operation: &str) -> u64 {
        self.sim.sim.control.requests(operation)
    }

    /// The next `times` submits to `vendor` meet `fault`.
    pub fn fault_submits(&self, vendor: VendorKind, fault: Fault, times: u32) {
        self.sim.sim.faults.inject(FaultRule::new(
            vendor,
            Some("POST"),
            submit_path(vendor),
            fault,
            times,
        ));
    }

    /// Submits `entry`'s request straight to the vendor: a run that a submit whose answer was
    /// lost made.
    pub async fn submit_behind_the_ledger(&self, entry: &LedgerEntry) -> SubmittedRun {
        self.vendor(entry.request.vendor())
            .submit(&entry.request, &entry.key)
            .await
            .expect("the vendor accepts the run")
    }

    /// The finish protocol on these ports.
    pub fn finisher(&self) -> Arc<Finisher> {
        Arc::new(Finisher {
            sink: self.sink.clone(),
            events: self.events.clone(),
            layout: Default::default(),
            clock: self.clock(),
            slots: self.slots.clone(),
            callbacks: self.callbacks.clone(),
        })
    }

    /// The admit handler on these ports, with no known invocation deadline.
    pub fn admitter(&self) -> Admitter {
        Admitter {
            vendors: self.vendors.clone(),
            ledger: self.ledger.clone(),
            slots: self.slots.clone(),
            callbacks: self.callbacks.clone(),
            clock: self.clock(),
            policy: Default::default(),
            deadline: None,
        }
    }

    /// The stop handler on these ports.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            vendors: self.vendors.clone(),
            ledger: self.ledger.clone(),
            finisher: self.finisher(),
        }
    }

    /// `vendor`'s example request with `request_id`, claimed now by a delivery that submits at
    /// once (lease: the default), and stored.
    pub fn claimed(&self, vendor: VendorKind, request_id: &str) -> LedgerEntry {
        let (key, request, fingerprint) = self.request(vendor, request_id, |_| {});
        let now = self.now();
        let entry = LedgerEntry::claimed(key, request, fingerprint, now, now + DEFAULT_CLAIM_LEASE);
        self.ledger.put(&entry);
        entry
    }

    /// `vendor`'s example request with `request_id` (changed by `edit`), queued now for a slot,
    /// and stored.
    pub fn queued(
        &self,
        vendor: VendorKind,
        request_id: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> LedgerEntry {
        let (key, request, fingerprint) = self.request(vendor, request_id, edit);
        let entry = LedgerEntry::queued(key, request, fingerprint, self.now());
        self.ledger.put(&entry);
        entry
    }

    /// `entry` holding a slot of its scope, taken now for an hour (and stored).
    pub async fn take_slot(&self, entry: &mut LedgerEntry) -> SlotHold {
        let hold = self.occupy(entry, None).await.expect("a free slot");
        entry.take_slot(hold.clone()).unwrap();
        self.ledger.put(entry);
        hold
    }

    /// `entry`'s run asks for a slot of its scope now, parked on `token` if any: the slot it
    /// holds afterwards, if any (the entry is not changed).
    pub async fn occupy(&self, entry: &LedgerEntry, token: Option<&str>) -> Option<SlotHold> {
        let limit = self
            .vendors
            .concurrency_limit(&entry.request)
            .expect("a limited profile");
        let now = self.now();
        let arrived = entry.queue().map_or(now, |q| q.since);
        if let Some(token) = token {
            self.callbacks.park(token);
        }
        change(self.slots.as_ref(), &limit.scope, |q| {
            q.ask(
                &entry.key,
                arrived,
                token.map(str::to_owned),
                limit.limit,
                now,
                now + time::Duration::hours(1),
            );
            q.hold_of(&limit.scope, &entry.key)
        })
        .await
        .unwrap()
    }

    /// The scope record of `entry`'s profile.
    pub fn scope(&self, entry: &LedgerEntry) -> ScopeQueue {
        let limit = self
            .vendors
            .concurrency_limit(&entry.request)
            .expect("a limited profile");
        self.slots.record(&limit.scope)
    }

    /// A queued `entry` (holding a slot) whose admission started a submit now, in flight for
    /// `seconds` (stored).
    pub fn admitting(&self, entry: &mut LedgerEntry, seconds: i64) {
        let now = self.now();
        entry
            .start_submit(now, now + time::Duration::seconds(seconds))
            .unwrap();
        self.ledger.put(entry);
    }

    /// `entry` (claimed or admitting) with `run` recorded (stored).
    pub fn recorded(&self, entry: &mut LedgerEntry, run: &SubmittedRun) {
        entry
            .record_submit(RecordedRun {
                vendor_run_id: run.vendor_run_id.clone(),
                submitted_at: self.now(),
                vendor_state: run.vendor_state.clone(),
            })
            .unwrap();
        self.ledger.put(entry);
    }

    /// The stored entry of `key`.
    pub fn stored(&self, key: &IdempotencyKey) -> Option<LedgerEntry> {
        self.ledger.entry(key)
    }

    /// `vendor`'s example request (`examples/<vendor>.json`) with `request_id`, changed by
    /// `edit`, resolved now: its key, the resolved request and its fingerprint.
    pub fn request(
        &self,
        vendor: VendorKind,
        request_id: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (IdempotencyKey, ResolvedRequest, Fingerprint) {
        let path = format!(
            "{}/../../examples/{vendor}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        value["request_id"] = request_id.into();
        edit(&mut value);
        let request = RunRequest::from_value(value).expect("a valid request");
        request.validate().expect("a valid request");
        let resolved = request.resolve(self.now());
        (
            IdempotencyKey::for_request(&resolved, None),
            resolved,
            Fingerprint::of(&request),
        )
    }
}

/// The admit step's input for a queued `entry`, after `waits` attempts.
pub fn admit_input(entry: &LedgerEntry, waits: u32) -> AdmitInput {
    AdmitInput {
        handle: entry
            .handle()
            .expect("a waiting run has a handle")
            .reference(),
        waits,
    }
}

/// Path fragment of `vendor`'s submit (a POST; token endpoints have other paths).
fn submit_path(vendor: VendorKind) -> &'static str {
    match vendor {
        VendorKind::Amc => "/workflowExecutions",
        VendorKind::Amperity => "/workflow/runs",
        VendorKind::Adobe => "/flowservice/runs",
        VendorKind::Carto => "/job",
    }
}

/// The enqueue task's payload for the waiting `entry`, parked on `token`.
pub fn enqueue_input(entry: &LedgerEntry, token: &str) -> runbridge_handlers::admit::EnqueueInput {
    runbridge_handlers::admit::EnqueueInput {
        handle: entry
            .handle()
            .expect("a waiting run has a handle")
            .reference(),
        task_token: token.to_owned(),
    }
}
