//! The runbridge run model, shared by every other crate.
//!
//! This crate owns the wire format of a run request ([`RunRequest`]) and its validation, the
//! common state set every vendor state maps into ([`RunState`]), the adaptive wait policy ([`BackoffPolicy`]), the idempotency key
//! ([`IdempotencyKey`]), a key's lifecycle in the ledger ([`LedgerEntry`], see `lifecycle.rs`), the handle passed between Step Functions states ([`RunHandle`]), where
//! results land ([`ResultLayout`]), the [`Manifest`] written last and the [`RunOutcome`] that
//! summarises it. It does no I/O.
#![deny(missing_docs)]

mod backoff;
mod clock;
pub mod emf;
mod error;
pub mod format;
mod handle;
mod key;
mod layout;
mod lifecycle;
mod manifest;
mod outcome;
mod prediction;
pub mod redact;
pub mod request;
mod reserved;
mod scope_queue;
mod slot;
mod state;
mod window;

pub use backoff::BackoffPolicy;
pub use clock::{Clock, SystemClock};
pub use error::ValidationError;
pub use format::{
    FormatVersion, NewerFormat, HISTORY_FORMAT, LEDGER_FORMAT, PAYLOAD_FORMAT, SCOPE_FORMAT,
};
pub use handle::{
    cut_text, HandleRef, RequestMismatch, RunHandle, StateChange, EXECUTION_PAYLOAD_BUDGET,
    MAX_REASON_BYTES, MAX_VENDOR_STATE_CHARS, TIMELINE_HEAD, TIMELINE_TAIL,
};
pub use key::{Fingerprint, IdempotencyKey, KeyError, MAX_KEY_CHARS};
pub use layout::{ResultLayout, ResultPaths, ANNOUNCED_NAME, COLLECT_FAILED_NAME};
pub use lifecycle::{
    CollectFailure, IllegalTransition, KeyState, LedgerEntry, QueuePlace, RecordedRun,
    LEGACY_CLAIM_LEASE,
};
pub use manifest::{Manifest, ManifestFile, MANIFEST_NAME};
pub use outcome::{RunOutcome, RUN_COMPLETED, RUN_FAILED};
pub use prediction::{
    DurationHistory, PollPlan, Prediction, HISTORY_RUNS, MIN_HISTORY_RUNS, OVERRUN_MAX_WAIT_SECONDS,
};
pub use request::{
    check_profile_name, PollPolicy, ResolvedRequest, RunRequest, VendorKind, VendorSpec,
    COMMON_FIELDS, DEFAULT_PROFILE, MAX_ATTEMPT, MAX_PROFILE_CHARS,
};
pub use reserved::{reserved_segment, KEY_SEGMENTS, LEDGER_DIR, PRIVATE_DIRS, STAGING_DIR};
pub use scope_queue::{Admitted, Holder, ScopeQueue, Waiter, ADMISSION_LEASE};
pub use slot::{scope_segment, ConcurrencyLimit, SlotHold};
pub use state::{Attribution, RunState, RunStatus};
pub use window::{format_utc, parse_utc, RelativeWindow, UtcRange};

/// Re-exported so that dependents name one `OffsetDateTime`.
pub use time::OffsetDateTime;
