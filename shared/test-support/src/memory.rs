//! The handlers' ports in memory, with the semantics of the deployed ones, for unit tests of the
//! handlers: [`MemoryLedger`] (a create-if-absent claim, entries stored as the JSON S3 holds),
//! [`MemorySink`] (nothing visible before it is published; the checksum verified as S3 verifies
//! it), [`MemorySlots`] (leases that run out, the wanted mark). Events are the local deployment's
//! [`LogEvents`], already kept in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use runbridge_core::{ConcurrencyLimit, IdempotencyKey, OffsetDateTime, SlotHold, SlotRecord};
use runbridge_handlers::ports::{
    Claim, LedgerEntry, ObjectChecksum, PartWriter, Renewal, ResultSink, SlotLease, Slots,
    StagedObject, WANTED_FRESH,
};
use runbridge_handlers::{HandlerError, Ledger};

pub use runbridge_adapters_local::LogEvents;

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

/// Concurrency slots in memory: at most `limit` unexpired leases per scope.
#[derive(Debug, Default)]
pub struct MemorySlots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// `(scope, slot)` → its holder and lease end.
    held: BTreeMap<(String, u32), SlotRecord>,
    /// Scope → when an acquire last found every slot held.
    wanted: BTreeMap<String, OffsetDateTime>,
}

impl MemorySlots {
    /// The holder of slot `n` of `scope`, expired or not.
    pub fn holder(&self, scope: &str, n: u32) -> Option<IdempotencyKey> {
        let state = self.state.lock().expect("slots lock");
        state
            .held
            .get(&(scope.to_owned(), n))
            .map(|r| r.holder.clone())
    }

    /// Every slot held, expired or not: `(scope, slot, holder)`.
    pub fn all(&self) -> Vec<(String, u32, IdempotencyKey)> {
        let state = self.state.lock().expect("slots lock");
        state
            .held
            .iter()
            .map(|((scope, n), r)| (scope.clone(), *n, r.holder.clone()))
            .collect()
    }
}

#[async_trait]
impl Slots for MemorySlots {
    async fn acquire(
        &self,
        limit: &ConcurrencyLimit,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<SlotLease>, HandlerError> {
        let mut state = self.state.lock().expect("slots lock");
        for n in 0..limit.limit {
            let slot = (limit.scope.clone(), n);
            let free = state
                .held
                .get(&slot)
                .is_none_or(|held| held.holder == *holder || held.until <= now);
            if free {
                let record = SlotRecord {
                    holder: holder.clone(),
                    until,
                };
                state.held.insert(slot, record);
                return Ok(Some(SlotLease {
                    hold: SlotHold {
                        scope: limit.scope.clone(),
                        slot: n,
                    },
                    until,
                }));
            }
        }
        state.wanted.insert(limit.scope.clone(), now);
        Ok(None)
    }

    async fn renew(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Renewal, HandlerError> {
        let mut state = self.state.lock().expect("slots lock");
        let slot = (hold.scope.clone(), hold.slot);
        let held = match state.held.get(&slot) {
            Some(record) if record.holder != *holder => false,
            _ => {
                let record = SlotRecord {
                    holder: holder.clone(),
                    until,
                };
                state.held.insert(slot, record);
                true
            }
        };
        let wanted = state
            .wanted
            .get(&hold.scope)
            .is_some_and(|at| now - *at <= WANTED_FRESH);
        Ok(Renewal { held, wanted })
    }

    async fn release(&self, hold: &SlotHold, holder: &IdempotencyKey) -> Result<(), HandlerError> {
        let mut state = self.state.lock().expect("slots lock");
        let slot = (hold.scope.clone(), hold.slot);
        if state.held.get(&slot).is_some_and(|r| r.holder == *holder) {
            state.held.remove(&slot);
        }
        Ok(())
    }

    async fn holders(
        &self,
        scope: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, HandlerError> {
        let state = self.state.lock().expect("slots lock");
        Ok(state
            .held
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|((_, n), r)| (*n, r.holder.clone(), r.until))
            .collect())
    }
}
