//! The handlers' ports in memory, with the semantics of the deployed ones, for unit tests of the
//! handlers: [`MemoryLedger`] (a create-if-absent claim, entries stored as the JSON S3 holds),
//! [`MemorySink`] (nothing visible before it is published; the checksum verified as S3 verifies
//! it), [`MemorySlots`] (scope records changed by a versioned, conditional write), [`MemoryCallbacks`] (parked tasks that take one answer). Events are the local deployment's
//! [`LogEvents`], already kept in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use runbridge_core::{DurationHistory, IdempotencyKey, ScopeQueue};
use runbridge_handlers::ports::{
    Callbacks, Claim, History, LedgerEntry, ObjectChecksum, PartWriter, ResultSink, Slots,
    StagedObject, StoredScope, Wake,
};
use runbridge_handlers::{HandlerError, Ledger};

pub use runbridge_adapters_local::{LocalCallbacks, LogEvents};

/// The idempotency ledger in memory: one stored JSON document per key, claimed only when absent.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryLedger {
    /// Stores `entry` as it is, over anything stored for its key: a fixture for a key some
    /// earlier delivery left in that state.
    pub fn put(&self, entry: &LedgerEntry) {
        self.lock().insert(entry.key.to_string(), encode(entry));
    }

    /// The entry of `key`, read back from what is stored (panics if it is unreadable).
    pub fn entry(&self, key: &IdempotencyKey) -> Option<LedgerEntry> {
        self.lock().get(key.as_str()).map(|bytes| decode(bytes))
    }

    /// How many keys hold an entry.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key holds an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.lock().expect("ledger lock")
    }
}

fn encode(entry: &LedgerEntry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("ledger entries serialise")
}

fn decode(bytes: &[u8]) -> LedgerEntry {
    serde_json::from_slice(bytes).expect("a stored ledger entry reads back")
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        let mut entries = self.lock();
        if let Some(existing) = entries.get(entry.key.as_str()) {
            return Ok(Claim::Existing(decode(existing)));
        }
        entries.insert(entry.key.to_string(), encode(&entry));
        Ok(Claim::New(entry))
    }

    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        self.put(entry);
        Ok(())
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        Ok(self.entry(key))
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError> {
        self.lock().remove(key.as_str());
        Ok(())
    }
}

/// Result objects in memory: visible once published (a multipart upload completed, a file
/// renamed into place), never in part.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl MemorySink {
    /// The visible object `key`.
    pub fn object(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).cloned()
    }

    /// The keys of every visible object, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().expect("sink lock")
    }
}

struct MemoryPart {
    sink: MemorySink,
    key: String,
    body: BytesMut,
}

struct MemoryStaged {
    sink: MemorySink,
    key: String,
    body: Bytes,
}

#[async_trait]
impl PartWriter for MemoryPart {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.body.extend_from_slice(&chunk);
        Ok(())
    }

    async fn finish(
        self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        let body = self.body.freeze();
        // S3 refuses to complete an upload whose full-object checksum is not the caller's.
        if ObjectChecksum::of(&body) != checksum {
            return Err(HandlerError::port(
                "sink",
                format!("BadDigest: the checksum of {} does not match", self.key),
                false,
            ));
        }
        Ok(Box::new(MemoryStaged {
            sink: self.sink,
            key: self.key,
            body,
        }))
    }

    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl StagedObject for MemoryStaged {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        self.sink.lock().insert(self.key, self.body);
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl ResultSink for MemorySink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(MemoryPart {
            sink: self.clone(),
            key: key.to_owned(),
            body: BytesMut::new(),
        }))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        self.lock().insert(key.to_owned(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        Ok(self.object(key))
    }
}

/// Scope records in memory, each with a version a write compares (as S3's ETag).
#[derive(Debug, Default)]
pub struct MemorySlots {
    state: Mutex<BTreeMap<String, (ScopeQueue, u64)>>,
}

impl MemorySlots {
    /// The record of `scope` as stored (empty when none).
    pub fn record(&self, scope: &str) -> ScopeQueue {
        let state = self.state.lock().expect("slots lock");
        state.get(scope).map(|(q, _)| q.clone()).unwrap_or_default()
    }

    /// Every slot held, expired or not: `(scope, slot, holder)`.
    pub fn all(&self) -> Vec<(String, u32, IdempotencyKey)> {
        let state = self.state.lock().expect("slots lock");
        state
            .iter()
            .flat_map(|(scope, (q, _))| {
                q.holders
                    .iter()
                    .map(|h| (scope.clone(), h.slot, h.key.clone()))
            })
            .collect()
    }
}

#[async_trait]
impl Slots for MemorySlots {
    async fn read(&self, scope: &str) -> Result<StoredScope, HandlerError> {
        let state = self.state.lock().expect("slots lock");
        Ok(match state.get(scope) {
            Some((queue, version)) => StoredScope {
                queue: queue.clone(),
                version: Some(version.to_string()),
            },
            None => StoredScope::default(),
        })
    }

    async fn write(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, HandlerError> {
        let mut state = self.state.lock().expect("slots lock");
        let current = state.get(scope).map(|(_, v)| v.to_string());
        if current.as_deref() != version {
            return Ok(false);
        }
        let next = state.get(scope).map_or(1, |(_, v)| v + 1);
        state.insert(scope.to_owned(), (queue.clone(), next));
        Ok(true)
    }
}

/// Parked tasks in memory, answering as Step Functions does: a token whose task waits takes one
/// answer ([`Wake::Delivered`]); any other token — never parked, already answered — is
/// [`Wake::Gone`].
#[derive(Debug, Default)]
pub struct MemoryCallbacks {
    state: Mutex<CallbackState>,
}

/// What a parked task was answered: its output, or the `(error, cause)` it failed with.
pub type Answer = Result<serde_json::Value, (String, String)>;

#[derive(Debug, Default)]
struct CallbackState {
    waiting: BTreeSet<String>,
    answers: Vec<(String, Answer)>,
}

impl MemoryCallbacks {
    /// A task now waits on `token`.
    pub fn park(&self, token: &str) {
        let mut state = self.state.lock().expect("callbacks lock");
        state.waiting.insert(token.to_owned());
    }

    /// The task waiting on `token` ends without an answer (its execution stopped).
    pub fn abandon(&self, token: &str) {
        let mut state = self.state.lock().expect("callbacks lock");
        state.waiting.remove(token);
    }

    /// Every answer delivered, in order: `(token, output or (error, cause))`.
    pub fn answers(&self) -> Vec<(String, Answer)> {
        self.state.lock().expect("callbacks lock").answers.clone()
    }

    /// The tokens woken with a success, in order.
    pub fn woken(&self) -> Vec<String> {
        self.answers()
            .into_iter()
            .filter(|(_, a)| a.is_ok())
            .map(|(t, _)| t)
            .collect()
    }

    fn answer(&self, token: &str, answer: Answer) -> Wake {
        let mut state = self.state.lock().expect("callbacks lock");
        if !state.waiting.remove(token) {
            return Wake::Gone;
        }
        state.answers.push((token.to_owned(), answer));
        Wake::Delivered
    }
}

#[async_trait]
impl Callbacks for MemoryCallbacks {
    async fn send_task_success(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, HandlerError> {
        Ok(self.answer(task_token, Ok(output)))
    }

    async fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, HandlerError> {
        Ok(self.answer(task_token, Err((error.to_owned(), cause.to_owned()))))
    }
}

/// Workflow durations in memory.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    state: Mutex<BTreeMap<String, DurationHistory>>,
}

#[async_trait]
impl History for MemoryHistory {
    async fn read(&self, workflow: &str) -> Result<DurationHistory, HandlerError> {
        let state = self.state.lock().expect("history lock");
        Ok(state.get(workflow).cloned().unwrap_or_default())
    }

    async fn write(&self, workflow: &str, history: &DurationHistory) -> Result<(), HandlerError> {
        let mut state = self.state.lock().expect("history lock");
        state.insert(workflow.to_owned(), history.clone());
        Ok(())
    }
}
