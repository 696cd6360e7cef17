//! The ports the handlers need, each with an AWS implementation (`runbridge-adapters-aws`) and a
//! local one (`runbridge-adapters-local`):
//!
//! | port | AWS | local |
//! | --- | --- | --- |
//! | [`ResultSink`] | S3 multipart uploads | a directory |
//! | [`Ledger`] | S3 conditional writes | one file per key |
//! | [`Executions`] | Step Functions | the ASL interpreter |
//! | [`Events`] | EventBridge | a log |
//! | [`Secrets`] | Secrets Manager | the environment, or fixed settings |
//! | [`DeadLetters`] | SQS | a list in memory |
//! | [`Slots`] | S3 conditional writes | one file per slot |
//! | [`Clock`] | the system clock | the simulators' clock |

use async_trait::async_trait;
use bytes::Bytes;
pub use runbridge_core::{Attribution, Clock, SystemClock};
use runbridge_core::{
    ConcurrencyLimit, Fingerprint, IdempotencyKey, OffsetDateTime, ResolvedRequest, RunHandle,
    RunOutcome, SlotHold,
};
use runbridge_vendors::Vendors;
use serde::{Deserialize, Serialize};

use crate::HandlerError;

/// Streams one object into a sink. Nothing is visible under its key until the [`StagedObject`]
/// that [`PartWriter::finish`] returns is published; [`PartWriter::abort`] leaves nothing behind.
///
/// The bytes go straight to their final key (S3: one multipart upload, completed by
/// [`StagedObject::publish`]), so publishing moves no data: collect keeps every file of a run
/// staged until all of them downloaded and verified, then publishes them and writes the manifest.
#[async_trait]
pub trait PartWriter: Send {
    /// Appends bytes. Implementations keep memory bounded (S3: multipart parts).
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError>;
    /// Stores everything written, still invisible. `checksum` is the whole object's checksum as
    /// the caller computed it over the bytes it wrote; a sink whose store can check it hands it
    /// over (S3 verifies the full-object CRC64NVME when the upload completes).
    async fn finish(
        self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError>;
    /// Discards everything written.
    async fn abort(self: Box<Self>);
}

/// An object whose bytes are all stored but not yet visible.
#[async_trait]
pub trait StagedObject: Send {
    /// Makes it visible under its key (S3 `CompleteMultipartUpload`, local rename).
    async fn publish(self: Box<Self>) -> Result<(), HandlerError>;
    /// Discards it.
    async fn abort(self: Box<Self>);
}

/// A whole object's checksum, computed by whoever streamed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectChecksum {
    /// CRC-64/NVME of the bytes: S3's default full-object checksum.
    pub crc64nvme: u64,
}

impl ObjectChecksum {
    /// The checksum as S3 writes it (`x-amz-checksum-crc64nvme`): base64 of the 8 big-endian bytes.
    pub fn crc64nvme_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.crc64nvme.to_be_bytes())
    }

    /// The checksum of `bytes` (small objects: manifests, markers).
    pub fn of(bytes: &[u8]) -> Self {
        let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
        crc.update(bytes);
        Self {
            crc64nvme: crc.finalize(),
        }
    }
}

/// Where result files and manifests land (S3, a local directory).
#[async_trait]
pub trait ResultSink: Send + Sync {
    /// Starts writing the object `key`.
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError>;
    /// Writes a small object in one request, visible at once.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError>;
    /// Reads a small object, `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError>;
}

/// What the ledger knows about a key: a small state machine.
///
/// ```text
/// claimed (fingerprint, lease_until) ──submit accepted──▶ submitted (vendor run id)
///        │                                                    │
///        └─definite refusal──▶ released (entry deleted)       └─▶ finished: the manifest
/// ```
///
/// *released* removes the entry, so the next delivery (a corrected resend) claims the key afresh
/// at once; the refusal's reason travels in the error (and the DLQ message), not in the ledger.
/// *finished* is the run's `manifest.json`, which the ledger does not duplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The key.
    pub key: IdempotencyKey,
    /// The request as resolved when the key was claimed.
    pub request: ResolvedRequest,
    /// The request as sent, hashed ([`Fingerprint::of`]): another body under this key is a
    /// `KeyConflict`. Absent in entries written before fingerprints existed (then not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// When the claim was made (the trigger's clock): the lower bound for reconciliation.
    #[serde(with = "time::serde::rfc3339")]
    pub claimed_at: OffsetDateTime,
    /// Until when the claimant may still be submitting: its own deadline (the Lambda's remaining
    /// time) plus slack. Absent in old entries: then `claimed_at` + the trigger's default lease.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub lease_until: Option<OffsetDateTime>,
    /// Set once the vendor accepted the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<Submitted>,
    /// Set when collecting the (succeeded) vendor run failed on runbridge's side: the next
    /// delivery of the request starts a recovery execution that collects it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_failed: Option<CollectFailure>,
    /// Set when the request's profile limits runs at once: the trigger did not submit, the
    /// execution waits for a slot and submits then ([`crate::admit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
}

/// A request waiting for (or holding) a concurrency slot, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// When it joined the queue (the trigger's claim).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The slot it holds, once admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotHold>,
    /// Set while a submit may be in flight: until then the admitting invocation may still be
    /// creating the vendor run, after it a retry asks the vendor before submitting again.
    /// Cleared when the vendor definitely refused (nothing was created).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub submitting_until: Option<OffsetDateTime>,
    /// Times the vendor refused a submit for its own concurrency limit while runbridge's count
    /// had a free slot (runs started outside runbridge share the account).
    #[serde(default, skip_serializing_if = "crate::ports::is_zero")]
    pub vendor_full: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LedgerEntry {
    /// The run this entry records, as the trigger started its execution (before any poll): `None`
    /// while no vendor run id is recorded.
    pub fn handle(&self) -> Option<RunHandle> {
        let submitted = self.submitted.as_ref()?;
        Some(
            RunHandle::new(
                self.key.clone(),
                self.request.clone(),
                submitted.vendor_run_id.clone(),
                submitted.submitted_at,
            )
            .submitted_as(submitted.vendor_state.as_deref()),
        )
    }
}

/// A collect that failed on runbridge's side (the vendor run succeeded), as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectFailure {
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How many collects of this key failed so far: the recovery execution's number.
    pub count: u32,
    /// Whose fault it was, as the error said (a vendor's 403 on the download: the customer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// A vendor run recorded against a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The vendor's run id.
    pub vendor_run_id: String,
    /// When the vendor accepted it.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// The vendor's own state in its answer (Amperity `scheduled`), when it said: the first
    /// timeline entry. Kept in the ledger so a redelivery starts the execution with the same input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_state: Option<String>,
}

/// The result of claiming a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This caller owns the key and must submit.
    New(LedgerEntry),
    /// Someone claimed it before; the entry says how far they got.
    Existing(LedgerEntry),
}

/// The idempotency ledger: at most one claim per key, ever.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Atomically claims `entry.key` (create-if-absent), or returns the existing entry.
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError>;
    /// Records the vendor run against a claimed key (overwrites the entry: also used to record a
    /// [`CollectFailure`]; only the claim's owner, and after submission only collect, writes).
    async fn record_submitted(&self, entry: &LedgerEntry) -> Result<(), HandlerError>;
    /// Reads a key's entry, `None` when absent.
    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError>;
    /// Releases a claim whose submit was definitely refused (no vendor run exists): the entry
    /// goes, so the next delivery claims the key afresh. Only the claim's owner calls this, and
    /// only while no run id is recorded.
    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError>;
}

/// A lease on a concurrency slot, as [`Slots::acquire`] granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotLease {
    /// The slot.
    pub hold: SlotHold,
    /// Until when (renewed by every poll of the run).
    pub until: OffsetDateTime,
}

/// What renewing a slot's lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// The holder still holds the slot (false: its lease ran out and another run took it).
    pub held: bool,
    /// Runs are waiting for a slot of this scope (an [`Slots::acquire`] found none within
    /// [`WANTED_FRESH`]): the holder should poll eagerly, so its slot is given back soon after
    /// its vendor run ends.
    pub wanted: bool,
}

/// How long a failed [`Slots::acquire`] marks its scope as wanted: twice the longest wait
/// between a queued run's attempts, so a queue that still waits keeps the mark fresh.
pub const WANTED_FRESH: time::Duration = time::Duration::seconds(120);

/// Concurrency slots shared by every function of a deployment: at most `limit` holders per
/// scope at once. A holder is a run key; a slot whose lease ran out is free again, so a holder
/// that crashed (or whose execution ended without giving it back) cannot keep it.
#[async_trait]
pub trait Slots: Send + Sync {
    /// Takes a free slot of `limit.scope` for `holder` until `until`, or renews the one `holder`
    /// already holds. `None` when all `limit.limit` slots are held by unexpired leases; the
    /// scope is then marked wanted at `now` (see [`Renewal::wanted`]).
    async fn acquire(
        &self,
        limit: &ConcurrencyLimit,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<SlotLease>, HandlerError>;
    /// Extends `holder`'s lease of `hold` to `until`, and says whether runs wait for the scope.
    async fn renew(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Renewal, HandlerError>;
    /// Gives `hold` back if `holder` still holds it; nothing otherwise (idempotent).
    async fn release(&self, hold: &SlotHold, holder: &IdempotencyKey) -> Result<(), HandlerError>;
    /// Who holds the slots of `scope` now (an operator's view): `(slot, holder, lease end)`.
    async fn holders(
        &self,
        scope: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, HandlerError>;
}

/// Whether an execution was started by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution.
    Started,
    /// An execution with this name and input already existed (a redelivery).
    AlreadyStarted,
}

/// Starts the state machine that watches a run.
#[async_trait]
pub trait Executions: Send + Sync {
    /// Starts execution `name` with `input`. Same name and same input is not an error.
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError>;
}

/// Where run outcomes are announced (EventBridge `Run Completed` / `Run Failed`, a log).
#[async_trait]
pub trait Events: Send + Sync {
    /// Announces one run's outcome; its detail-type is [`RunOutcome::detail_type`].
    async fn publish(&self, outcome: &RunOutcome) -> Result<(), HandlerError>;
}

/// Vendor settings and credentials, yielding the vendor clients built from them. The AWS side
/// reads them from Secrets Manager (cached, so warm functions keep their OAuth tokens); the local
/// side from the environment or the simulators.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The vendor clients for the current settings.
    async fn vendors(&self) -> Result<Vendors, HandlerError>;
}

/// Fixed vendor clients (the sandbox, tests).
#[async_trait]
impl Secrets for Vendors {
    async fn vendors(&self) -> Result<Vendors, HandlerError> {
        Ok(self.clone())
    }
}

/// Why a request is dead-lettered: what an operator (or a redrive tool) reads beside the body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeadLetterReason {
    /// The whole error message.
    pub error: String,
    /// The offending field.
    pub field: Option<String>,
    /// The rule it broke.
    pub rule: Option<String>,
    /// The original SQS message id.
    pub source_message_id: Option<String>,
}

/// Where requests that can never succeed go at once, with their reason (an SQS dead-letter
/// queue), instead of failing again and again until a redrive policy moves them without one.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps `body` unchanged with `reason`. Returns the dead letter's id.
    async fn send(&self, body: &str, reason: &DeadLetterReason) -> Result<String, HandlerError>;
}
