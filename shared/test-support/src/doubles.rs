//! Ports that fail on purpose, wrapped around real ones: the one copy of each failure the test
//! suites inject. [`LedgerDouble`] forwards to a real ledger except at the operations it is told
//! to break (a crash, a stale read, an operation that must not happen); [`RefusingSink`] refuses
//! result files while a switch is on; [`FailingEvents`] fails the next `n` publishes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use runbridge_core::{IdempotencyKey, RunOutcome};
use runbridge_handlers::ports::{Claim, LedgerEntry, PartWriter, ResultSink};
use runbridge_handlers::{Events, HandlerError, Ledger};

/// One of the ledger port's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerOp {
    /// [`Ledger::claim`].
    Claim,
    /// [`Ledger::update`].
    Update,
    /// [`Ledger::get`].
    Get,
    /// [`Ledger::release`].
    Release,
}

/// What a [`LedgerDouble`] does at an operation instead of forwarding it.
#[derive(Debug, Clone)]
pub enum LedgerFault {
    /// Fails retryably with this message and changes nothing: what the caller sees when it
    /// crashes at that point (or the store fails) and its work is retried.
    Crash(&'static str),
    /// Like [`LedgerFault::Crash`], the first time per key only; later calls are forwarded.
    CrashOncePerKey(&'static str),
    /// Panics with this message: the test's claim that the operation never happens.
    Unreachable(&'static str),
    /// `claim` answers with this entry as [`Claim::Existing`] without writing: a delivery that
    /// read the key before another one changed it.
    StaleClaim(Box<LedgerEntry>),
}

/// A ledger that forwards to a real one except at the operations given a [`LedgerFault`].
pub struct LedgerDouble {
    inner: Option<Arc<dyn Ledger>>,
    faults: Vec<(LedgerOp, LedgerFault)>,
    crashed: Mutex<HashSet<(LedgerOp, String)>>,
}

impl LedgerDouble {
    /// Forwards every operation to `inner` until told otherwise ([`LedgerDouble::at`]).
    pub fn around(inner: Arc<dyn Ledger>) -> Self {
        Self {
            inner: Some(inner),
            faults: Vec::new(),
            crashed: Mutex::default(),
        }
    }

    /// A ledger no operation may reach: each panics with `why`.
    pub fn untouched(why: &'static str) -> Self {
        Self {
            inner: None,
            faults: Vec::new(),
            crashed: Mutex::default(),
        }
        .at(LedgerOp::Claim, LedgerFault::Unreachable(why))
        .at(LedgerOp::Update, LedgerFault::Unreachable(why))
        .at(LedgerOp::Get, LedgerFault::Unreachable(why))
        .at(LedgerOp::Release, LedgerFault::Unreachable(why))
    }

    /// The real ledger, except that recording fails as a trigger killed after the vendor
    /// accepted its run would: the vendor has the run, the ledger keeps the claim without it,
    /// and nothing is released.
    pub fn crashing_record(inner: Arc<dyn Ledger>) -> Self {
        Self::around(inner)
            .at(
                LedgerOp::Update,
                LedgerFault::Crash(
                    "injected crash after the vendor accepted the run, before the record",
                ),
            )
            .at(
                LedgerOp::Release,
                LedgerFault::Unreachable("a crashed trigger releases nothing"),
            )
    }

    /// The same double, doing `fault` at `op` (instead of what was set for it before).
    pub fn at(mut self, op: LedgerOp, fault: LedgerFault) -> Self {
        self.faults.retain(|(o, _)| *o != op);
        self.faults.push((op, fault));
        self
    }

    /// `Err` to answer instead of forwarding `op` on `key`, `Ok(Some(entry))` for a stale claim,
    /// `Ok(None)` to forward.
    fn fault(&self, op: LedgerOp, key: &str) -> Result<Option<LedgerEntry>, HandlerError> {
        let crash = |message: &str| HandlerError::port("ledger", message, true);
        match self.faults.iter().find(|(o, _)| *o == op).map(|(_, f)| f) {
            None => Ok(None),
            Some(LedgerFault::Crash(message)) => Err(crash(message)),
            Some(LedgerFault::CrashOncePerKey(message)) => {
                let first = self
                    .crashed
                    .lock()
                    .expect("crashed lock")
                    .insert((op, key.to_owned()));
                if first {
                    Err(crash(message))
                } else {
                    Ok(None)
                }
            }
            Some(LedgerFault::Unreachable(why)) => panic!("ledger {op:?} of {key}: {why}"),
            Some(LedgerFault::StaleClaim(entry)) => Ok(Some((**entry).clone())),
        }
    }

    fn inner(&self) -> &dyn Ledger {
        self.inner
            .as_deref()
            .expect("a ledger double without a ledger behind it forwards nothing")
    }
}

#[async_trait]
impl Ledger for LedgerDouble {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        match self.fault(LedgerOp::Claim, entry.key.as_str())? {
            Some(stale) => Ok(Claim::Existing(stale)),
            None => self.inner().claim(entry).await,
        }
    }

    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        self.fault(LedgerOp::Update, entry.key.as_str())?;
        self.inner().update(entry).await
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        self.fault(LedgerOp::Get, key.as_str())?;
        self.inner().get(key).await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError> {
        self.fault(LedgerOp::Release, key.as_str())?;
        self.inner().release(key).await
    }
}

/// A sink refusing to create result files while `refusing` is set, as a misconfigured bucket
/// policy or download guard would: non-retryable, on our side.
pub struct RefusingSink {
    /// The real sink.
    pub inner: Arc<dyn ResultSink>,
    /// Whether it refuses now.
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
    /// The real publisher.
    pub inner: Arc<dyn Events>,
    /// Publishes still to fail.
    pub failures: Arc<AtomicU32>,
}

impl FailingEvents {
    /// Fails the next `n` publishes to `inner`.
    pub fn new(inner: Arc<dyn Events>, n: u32) -> Self {
        Self {
            inner,
            failures: Arc::new(AtomicU32::new(n)),
        }
    }
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
