//! Counting wrappers around the storage ports the handlers use — the ledger, the concurrency
//! slots, the workflows' durations and the result sink — each call counted as the S3 requests its
//! AWS adapter makes (`runbridge-adapters-aws`), and attributed to the run whose step made it.
//!
//! [`AttributedTasks`] names the run (its key) and the step for everything a step of the state
//! machine does ([`as_step`]); a call made outside a step (the trigger) is attributed by the
//! ledger key it names, to no step (`""`). [`CountingSlots`] also keeps every change of a scope's record ([`ScopeWrite`]), so a
//! benchmark can read who was admitted when, by whose change.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use runbridge_asl::{TaskFailure, TaskInvoker};
use runbridge_core::{
    Clock, DurationHistory, IdempotencyKey, LedgerEntry, OffsetDateTime, ScopeQueue,
};
use runbridge_handlers::ports::{Claim, StoredScope};
use runbridge_handlers::{
    HandlerError, History, Ledger, ObjectChecksum, PartWriter, ResultSink, Slots, StagedObject,
};
use serde_json::Value;

/// S3's multipart part size in collect's uploads (`UploadConfig::default`, 8 MiB).
const PART_SIZE: u64 = 8 * 1024 * 1024;

tokio::task_local! {
    /// The run and the step whose requests are being made.
    static STEP: (String, String);
}

/// Runs `f` with every storage request it makes attributed to `run`'s `step`.
pub async fn as_step<F: Future>(run: &str, step: &str, f: F) -> F::Output {
    STEP.scope((run.to_owned(), step.to_owned()), f).await
}

/// The run and step requests are made for now: the step's, else (outside any step) the run
/// `fallback` names, with no step.
fn current_step(fallback: Option<&str>) -> (String, String) {
    STEP.try_with(Clone::clone).unwrap_or_else(|_| {
        (
            fallback.map(str::to_owned).unwrap_or_default(),
            String::new(),
        )
    })
}

/// S3 requests, by the port that made them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// Ledger reads (GET), including the read a refused claim makes.
    pub ledger_gets: u64,
    /// Ledger writes (PUT), a claim's conditional PUT included.
    pub ledger_puts: u64,
    /// Ledger deletes (DELETE, free on S3).
    pub ledger_deletes: u64,
    /// Scope record reads (GET).
    pub slots_gets: u64,
    /// Scope record writes (conditional PUT; a refused one is billed too).
    pub slots_puts: u64,
    /// Of `slots_puts`, those refused because another change came first (412).
    pub slots_refused: u64,
    /// Duration history reads (GET).
    pub history_gets: u64,
    /// Duration history writes (PUT).
    pub history_puts: u64,
    /// Result sink reads (GET: the manifest and announcement checks).
    pub sink_gets: u64,
    /// Result sink writes (PUT class: manifest, announcement, and for each file
    /// `CreateMultipartUpload`, its `UploadPart`s and `CompleteMultipartUpload`).
    pub sink_puts: u64,
}

impl Requests {
    /// GET requests, every port.
    pub fn gets(&self) -> u64 {
        self.ledger_gets + self.slots_gets + self.history_gets + self.sink_gets
    }

    /// PUT-class requests, every port (deletes are free and not counted).
    pub fn puts(&self) -> u64 {
        self.ledger_puts + self.slots_puts + self.history_puts + self.sink_puts
    }

    /// Requests to the ledger, the slots and the history (the sink left out).
    pub fn state_requests(&self) -> u64 {
        self.ledger_gets
            + self.ledger_puts
            + self.ledger_deletes
            + self.slots_gets
            + self.slots_puts
            + self.history_gets
            + self.history_puts
    }

    /// `self - earlier`, field by field (what happened since `earlier` was taken).
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests {
            ledger_gets: self.ledger_gets - earlier.ledger_gets,
            ledger_puts: self.ledger_puts - earlier.ledger_puts,
            ledger_deletes: self.ledger_deletes - earlier.ledger_deletes,
            slots_gets: self.slots_gets - earlier.slots_gets,
            slots_puts: self.slots_puts - earlier.slots_puts,
            slots_refused: self.slots_refused - earlier.slots_refused,
            history_gets: self.history_gets - earlier.history_gets,
            history_puts: self.history_puts - earlier.history_puts,
            sink_gets: self.sink_gets - earlier.sink_gets,
            sink_puts: self.sink_puts - earlier.sink_puts,
        }
    }

    /// `self + other`, field by field.
    pub fn plus(&self, other: &Requests) -> Requests {
        let mut sum = *self;
        sum.add(other);
        sum
    }

    fn add(&mut self, other: &Requests) {
        self.ledger_gets += other.ledger_gets;
        self.ledger_puts += other.ledger_puts;
        self.ledger_deletes += other.ledger_deletes;
        self.slots_gets += other.slots_gets;
        self.slots_puts += other.slots_puts;
        self.slots_refused += other.slots_refused;
        self.history_gets += other.history_gets;
        self.history_puts += other.history_puts;
        self.sink_gets += other.sink_gets;
        self.sink_puts += other.sink_puts;
    }
}

/// Requests per run (by key; `""` for requests no run can be named for) and step.
#[derive(Debug, Default)]
pub struct Counter {
    runs: Mutex<BTreeMap<(String, String), Requests>>,
}

impl Counter {
    fn count(&self, fallback: Option<&str>, f: impl FnOnce(&mut Requests)) {
        let at = current_step(fallback);
        f(self
            .runs
            .lock()
            .expect("counter lock")
            .entry(at)
            .or_default());
    }

    /// The requests made for `run`, every step.
    pub fn of(&self, run: &str) -> Requests {
        let mut total = Requests::default();
        for ((r, _), requests) in self.runs.lock().expect("counter lock").iter() {
            if r == run {
                total.add(requests);
            }
        }
        total
    }

    /// The requests made for `run` in its steps named `step` (`""`: outside any step).
    pub fn of_step(&self, run: &str, step: &str) -> Requests {
        self.runs
            .lock()
            .expect("counter lock")
            .get(&(run.to_owned(), step.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Every request counted.
    pub fn total(&self) -> Requests {
        let mut total = Requests::default();
        for r in self.runs.lock().expect("counter lock").values() {
            total.add(r);
        }
        total
    }
}

/// The ledger, counted.
pub struct CountingLedger {
    /// The ledger counted.
    pub inner: Arc<dyn Ledger>,
    /// Where the counts go.
    pub counter: Arc<Counter>,
}

#[async_trait]
impl Ledger for CountingLedger {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        let key = entry.key.as_str().to_owned();
        let claim = self.inner.claim(entry).await;
        // `PUT If-None-Match: *`; a refused one reads the existing entry.
        let existing = matches!(claim, Ok(Claim::Existing(_)));
        self.counter.count(Some(&key), |r| {
            r.ledger_puts += 1;
            r.ledger_gets += u64::from(existing);
        });
        claim
    }

    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        self.counter
            .count(Some(entry.key.as_str()), |r| r.ledger_puts += 1);
        self.inner.update(entry).await
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        self.counter
            .count(Some(key.as_str()), |r| r.ledger_gets += 1);
        self.inner.get(key).await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError> {
        self.counter
            .count(Some(key.as_str()), |r| r.ledger_deletes += 1);
        self.inner.release(key).await
    }
}

/// One stored change of a scope's record.
#[derive(Debug, Clone)]
pub struct ScopeWrite {
    /// The scope.
    pub scope: String,
    /// The run whose step made the change (`None`: outside any step).
    pub by: Option<String>,
    /// The record before the change.
    pub before: ScopeQueue,
    /// The record the change stored.
    pub after: ScopeQueue,
    /// When it was stored (by the clock given to [`CountingSlots::with_clock`]).
    pub at: Option<OffsetDateTime>,
}

/// The concurrency slots, counted, with every stored change kept.
pub struct CountingSlots {
    /// The slots counted.
    pub inner: Arc<dyn Slots>,
    /// Where the counts go.
    pub counter: Arc<Counter>,
    /// The last record stored per scope (every write goes through here, one at a time).
    stored: tokio::sync::Mutex<HashMap<String, ScopeQueue>>,
    writes: Mutex<Vec<ScopeWrite>>,
    clock: Option<Arc<dyn Clock>>,
}

impl CountingSlots {
    /// `inner`, counted into `counter`.
    pub fn new(inner: Arc<dyn Slots>, counter: Arc<Counter>) -> Self {
        Self {
            inner,
            counter,
            stored: tokio::sync::Mutex::new(HashMap::new()),
            writes: Mutex::new(Vec::new()),
            clock: None,
        }
    }

    /// Stamps every stored change with `clock`'s time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Every stored change so far, in the order stored.
    pub fn writes(&self) -> Vec<ScopeWrite> {
        self.writes.lock().expect("writes lock").clone()
    }
}

#[async_trait]
impl Slots for CountingSlots {
    async fn read(&self, scope: &str) -> Result<StoredScope, HandlerError> {
        self.counter.count(None, |r| r.slots_gets += 1);
        self.inner.read(scope).await
    }

    async fn write(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, HandlerError> {
        self.counter.count(None, |r| r.slots_puts += 1);
        let mut stored = self.stored.lock().await;
        let written = self.inner.write(scope, queue, version).await?;
        if !written {
            self.counter.count(None, |r| r.slots_refused += 1);
        }
        if written {
            let before = stored
                .insert(scope.to_owned(), queue.clone())
                .unwrap_or_default();
            self.writes.lock().expect("writes lock").push(ScopeWrite {
                scope: scope.to_owned(),
                by: STEP.try_with(|(run, _)| run.clone()).ok(),
                before,
                after: queue.clone(),
                at: self.clock.as_ref().map(|c| c.now()),
            });
        }
        Ok(written)
    }
}

/// The workflows' durations, counted.
pub struct CountingHistory {
    /// The history counted.
    pub inner: Arc<dyn History>,
    /// Where the counts go.
    pub counter: Arc<Counter>,
}

#[async_trait]
impl History for CountingHistory {
    async fn read(&self, workflow: &str) -> Result<DurationHistory, HandlerError> {
        self.counter.count(None, |r| r.history_gets += 1);
        self.inner.read(workflow).await
    }

    async fn write(&self, workflow: &str, history: &DurationHistory) -> Result<(), HandlerError> {
        self.counter.count(None, |r| r.history_puts += 1);
        self.inner.write(workflow, history).await
    }
}

/// The result sink, counted as the S3 sink would request: a small object is one PUT, a
/// streamed file one `CreateMultipartUpload`, an `UploadPart` per 8 MiB and one
/// `CompleteMultipartUpload` (an empty file: one PUT when published).
pub struct CountingSink {
    /// The sink counted.
    pub inner: Arc<dyn ResultSink>,
    /// Where the counts go.
    pub counter: Arc<Counter>,
}

#[async_trait]
impl ResultSink for CountingSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(CountingWriter {
            inner: self.inner.create(key).await?,
            counter: self.counter.clone(),
            size: 0,
        }))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        self.counter.count(None, |r| r.sink_puts += 1);
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        self.counter.count(None, |r| r.sink_gets += 1);
        self.inner.get(key).await
    }
}

struct CountingWriter {
    inner: Box<dyn PartWriter>,
    counter: Arc<Counter>,
    size: u64,
}

#[async_trait]
impl PartWriter for CountingWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.size += chunk.len() as u64;
        self.inner.write(chunk).await
    }

    async fn finish(
        self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        if self.size > 0 {
            let parts = self.size.div_ceil(PART_SIZE);
            self.counter.count(None, |r| r.sink_puts += 1 + parts);
        }
        Ok(Box::new(CountingStaged {
            inner: self.inner.finish(checksum).await?,
            counter: self.counter,
        }))
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

struct CountingStaged {
    inner: Box<dyn StagedObject>,
    counter: Arc<Counter>,
}

#[async_trait]
impl StagedObject for CountingStaged {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        self.counter.count(None, |r| r.sink_puts += 1);
        self.inner.publish().await
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

/// The state machine's tasks, each run with its storage requests attributed to the run its
/// input names (`handle.key`) and its step (`step`).
pub struct AttributedTasks {
    /// The tasks.
    pub inner: Arc<dyn TaskInvoker>,
}

/// The run a task's input names.
pub fn task_run(input: &Value) -> String {
    input["handle"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[async_trait]
impl TaskInvoker for AttributedTasks {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let run = task_run(&input);
        let step = input["step"].as_str().unwrap_or_default().to_owned();
        as_step(&run, &step, self.inner.invoke(resource, input)).await
    }
}

/// Counts every ledger, duration-history and scope-record request of the local deployment
/// `config` builds into `counter` (each as the S3 request its AWS adapter makes); the scope
/// records go through the [`CountingSlots`] that `slots` makes around the deployment's own.
pub fn count_state_requests(
    config: &mut runbridge_adapters_local::LocalConfig,
    counter: &Arc<Counter>,
    slots: impl FnOnce(Arc<dyn Slots>, Arc<Counter>) -> Arc<CountingSlots> + Send + 'static,
) {
    let c = counter.clone();
    config.wrap_ledger = Some(Box::new(move |inner| {
        Arc::new(CountingLedger { inner, counter: c })
    }));
    let c = counter.clone();
    config.wrap_history = Some(Box::new(move |inner| {
        Arc::new(CountingHistory { inner, counter: c })
    }));
    let c = counter.clone();
    config.wrap_slots = Some(Box::new(move |inner| slots(inner, c)));
}

/// The most AMC executions any of `instances` had PENDING or RUNNING at once on `sim`.
pub fn amc_peak_active(sim: &runbridge_sim::Sim, instances: &[String]) -> u64 {
    instances
        .iter()
        .map(|i| sim.control.max_observed(&format!("amc.active.{i}")))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_attributed_to_the_named_run_else_the_ledger_key() {
        let counter = Counter::default();
        counter.count(Some("k1"), |r| r.ledger_gets += 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(as_step("k2", "poll", async {
            counter.count(Some("k1"), |r| r.slots_puts += 1);
            counter.count(None, |r| r.history_gets += 1);
        }));
        counter.count(None, |r| r.sink_puts += 1);
        assert_eq!(counter.of("k1").ledger_gets, 1);
        assert_eq!(counter.of("k1").slots_puts, 0);
        assert_eq!(counter.of("k2").slots_puts, 1);
        assert_eq!(counter.of("k2").history_gets, 1);
        assert_eq!(counter.of_step("k2", "poll").history_gets, 1);
        assert_eq!(counter.of_step("k1", "").ledger_gets, 1);
        assert_eq!(counter.of("").sink_puts, 1);
        let total = counter.total();
        assert_eq!((total.gets(), total.puts()), (2, 2));
        assert_eq!(total.state_requests(), 3);
        assert_eq!(total.since(&counter.of("k2")).history_gets, 0);
    }
}
