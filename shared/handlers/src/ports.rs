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
//! | [`Slots`] | S3 conditional writes | one file per scope |
//! | [`History`] | S3 objects | one file per workflow |
//! | [`Callbacks`] | `SendTaskSuccess` / `SendTaskFailure` | the interpreter's task tokens |
//! | [`Clock`] | the system clock | the simulators' clock |

use async_trait::async_trait;
use bytes::Bytes;
pub use runbridge_core::{Attribution, Clock, SystemClock};
pub use runbridge_core::{CollectFailure, KeyState, LedgerEntry, QueuePlace, RecordedRun};
use runbridge_core::{DurationHistory, IdempotencyKey, RunOutcome, ScopeQueue};
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

/// The result of claiming a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This caller owns the key and must submit.
    New(LedgerEntry),
    /// Someone claimed it before; the entry says how far they got.
    Existing(LedgerEntry),
}

/// The idempotency ledger: at most one claim per key, ever. It stores each key's
/// [`LedgerEntry`]; the lifecycle's transitions are methods of the entry
/// (`runbridge_core::LedgerEntry`), applied by the handlers and stored with [`Ledger::update`].
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Atomically claims `entry.key` (create-if-absent), or returns the existing entry.
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError>;
    /// Stores a claimed key's entry after a transition (overwrites it: only the key's owner at
    /// that stage writes — the claimant or admission until a run is recorded, then collect).
    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError>;
    /// Reads a key's entry, `None` when absent.
    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError>;
    /// Releases a claim whose submit was definitely refused (no vendor run exists): the entry
    /// goes, so the next delivery claims the key afresh. Only the claim's owner calls this, and
    /// only while no run id is recorded.
    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError>;
}

/// A scope's record as read, with the version a conditional write compares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredScope {
    /// The record (empty when none is stored).
    pub queue: ScopeQueue,
    /// What the store compares on write (S3: the ETag); `None` when no record is stored.
    pub version: Option<String>,
}

/// The concurrency slots and waiting lines, one [`ScopeQueue`] record per scope, shared by every
/// function of a deployment. Changes are read-modify-write with one conditional write each, so
/// two functions changing a scope at once cannot both win (see `crate::queue::change`); the
/// rules of a change live in [`ScopeQueue`].
#[async_trait]
pub trait Slots: Send + Sync {
    /// Reads `scope`'s record.
    async fn read(&self, scope: &str) -> Result<StoredScope, HandlerError>;
    /// Stores `queue` as `scope`'s record if it is still at `version` (`None`: still absent).
    /// `Ok(false)` when another writer changed it first: read again and redo the change.
    async fn write(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, HandlerError>;
}

/// How long each workflow's runs took ([`DurationHistory`], one record per workflow key): what
/// the poll plan predicts a run's end from. A lost update (two runs of one workflow ending in the
/// same instant) loses one sample of twenty, which the prediction does not feel, so a record is
/// a plain read and write.
#[async_trait]
pub trait History: Send + Sync {
    /// The durations recorded for `workflow` (empty when none).
    async fn read(&self, workflow: &str) -> Result<DurationHistory, HandlerError>;
    /// Stores `history` as `workflow`'s.
    async fn write(&self, workflow: &str, history: &DurationHistory) -> Result<(), HandlerError>;
}

/// Whether an execution was started by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution.
    Started,
    /// An execution with this name and input already existed (a redelivery).
    AlreadyStarted,
}

/// What waking a parked execution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The task waiting on the token took the news; its execution moves on.
    Delivered,
    /// The token's task no longer waits (Step Functions: `TaskDoesNotExist`, `TaskTimedOut`,
    /// `InvalidToken`): it was answered already, timed out, or its execution ended.
    Gone,
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

/// Wakes executions parked on a task token (a `.waitForTaskToken` task): whoever frees a
/// concurrency slot answers the waiter it goes to. Apart from [`Executions`] because the functions
/// that wake (poll, collect) cannot name the state machine that invokes them.
#[async_trait]
pub trait Callbacks: Send + Sync {
    /// `SendTaskSuccess`: the task parked on `task_token` succeeds with `output` as its result.
    async fn send_task_success(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, HandlerError>;

    /// `SendTaskFailure`: the task parked on `task_token` fails with `error` and `cause`
    /// (subject to its Retry and Catch).
    async fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, HandlerError>;
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
    /// Who caused the failure, as the error says: `customer` (fix the request), `platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// Where requests that can never succeed go at once, with their reason (an SQS dead-letter
/// queue), instead of failing again and again until a redrive policy moves them without one.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps `body` unchanged with `reason`. Returns the dead letter's id.
    async fn send(&self, body: &str, reason: &DeadLetterReason) -> Result<String, HandlerError>;
}
