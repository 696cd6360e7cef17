//! Ports that fail on purpose, wrapped around the real local ones: what the lifecycle tests and
//! the lifecycle model inject.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use runbridge_core::{IdempotencyKey, RunOutcome};
use runbridge_handlers::ports::{Claim, LedgerEntry, PartWriter, ResultSink};
use runbridge_handlers::{Events, HandlerError, Ledger};

/// A sink refusing to create result files while `refusing` is set, as a misconfigured bucket
/// policy or download guard would: non-retryable, on our side.
pub struct RefusingSink {
    pub inner: Arc<dyn ResultSink>,
    pub refusing: Arc<AtomicBool>,
}

impl RefusingSink {
    fn refuse(key: &str) -> HandlerError {
        HandlerError::port("sink", format!("AccessDenied writing {key}"), false)
    }
}

#[async_trait]
impl ResultSink for RefusingSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        if self.refusing.load(Ordering::SeqCst) {
            return Err(Self::refuse(key));
        }
        self.inner.create(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        // Amperity runs land no files: refuse their manifest the same way.
        if self.refusing.load(Ordering::SeqCst) && key.ends_with(runbridge_core::MANIFEST_NAME) {
            return Err(Self::refuse(key));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        self.inner.get(key).await
    }
}

/// An event publisher whose next `failures` publishes fail (retryably, as a throttled
/// `PutEvents` does); the others reach `inner`.
pub struct FailingEvents {
    pub inner: Arc<dyn Events>,
    pub failures: Arc<AtomicU32>,
}

#[async_trait]
impl Events for FailingEvents {
    async fn publish(&self, outcome: &RunOutcome) -> Result<(), HandlerError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(HandlerError::port(
                "events",
                "PutEvents: ThrottlingException (injected)",
                true,
            ));
        }
        self.inner.publish(outcome).await
    }
}

/// The real ledger, except that recording a vendor run fails as a killed trigger would: the
/// vendor has the run, the ledger keeps the claim without it, nothing is released.
pub struct CrashingRecord {
    pub inner: Arc<dyn Ledger>,
}

#[async_trait]
impl Ledger for CrashingRecord {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        self.inner.claim(entry).await
    }
    async fn update(&self, _: &LedgerEntry) -> Result<(), HandlerError> {
        Err(HandlerError::port(
            "ledger",
            "injected crash after the vendor accepted the run, before the record",
            true,
        ))
    }
    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        self.inner.get(key).await
    }
    async fn release(&self, _: &IdempotencyKey) -> Result<(), HandlerError> {
        panic!("a crashed trigger releases nothing")
    }
}
