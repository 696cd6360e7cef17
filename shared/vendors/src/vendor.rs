//! The one trait every vendor module implements, and the entry a vendor module hands the
//! registry so it can be built from settings.
//!
//! This module depends on nothing vendor-specific: vendor modules import it, and the registry
//! imports the vendor modules, so no module imports the registry back.

use std::sync::Arc;

use crate::result_file::ResultFile;
use async_trait::async_trait;
use runbridge_core::{IdempotencyKey, OffsetDateTime, ResolvedRequest, RunStatus, VendorKind};

use crate::http::RetryConfig;
use crate::rate::RateBudget;
use crate::result_stream::ResultStream;
use crate::settings::Settings;
use crate::VendorError;

/// Builds one vendor's client from settings, its requests taken from the given rate budget
/// where the vendor limits them; fails when a required setting is missing.
pub type BuildVendor =
    fn(&Settings, &RetryConfig, &Arc<dyn RateBudget>) -> Result<Arc<dyn Vendor>, VendorError>;

/// How to build one vendor's client from settings. Each vendor module exposes one as `ENTRY`;
/// [`crate::registry::VENDORS`] lists them.
#[derive(Clone, Copy)]
pub struct VendorEntry {
    /// The vendor.
    pub kind: VendorKind,
    /// Builds the client; fails when a required setting is missing.
    pub build: BuildVendor,
    /// Runs at once an account of this vendor allows when its settings say nothing
    /// (`<vendor>.max_concurrent`); `None`: no limit is known, runs are submitted at once.
    pub max_concurrent: Option<u32>,
    /// The settings (`<vendor>.<key>`) the client reads, beyond those every vendor's does
    /// ([`crate::registry::COMMON_SETTINGS`]). A client built by the registry can read no
    /// other: a read of an undeclared key fails the (debug) build of the client, so this list,
    /// which `docs/SETTINGS.md` is checked against, cannot fall behind the reading code.
    pub settings: &'static [&'static str],
}

/// A submitted run, as the vendor identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedRun {
    /// The vendor's run id (AMC workflowExecutionId, Amperity run id, Adobe run id, CARTO job id).
    pub vendor_run_id: String,
    /// The vendor's state at submission, when it says.
    pub vendor_state: Option<String>,
}

/// Which run to act on: the request carries the per-run context (instance, tenant, connection).
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    /// The request the run was submitted for.
    pub request: &'a ResolvedRequest,
    /// The vendor's run id.
    pub vendor_run_id: &'a str,
}

/// Whether a finished run's results can be fetched.
#[derive(Debug, Clone)]
pub enum ResultsAvailability {
    /// Download these, in order.
    Ready(Vec<ResultFile>),
    /// The run succeeded but its output is not published yet: wait, this is not a failure.
    NotYet {
        /// The vendor's hint, in seconds.
        retry_after_seconds: Option<u64>,
        /// The vendor's words.
        reason: String,
    },
    /// This kind of run produces no file (Amperity, Adobe, CARTO without an export query).
    NoFiles,
}

/// What a cancel achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The vendor accepted the cancel (the run may take a moment to stop).
    Requested,
    /// The run had already ended.
    AlreadyFinal,
    /// The vendor API has no way to cancel this kind of run.
    Unsupported,
}

/// A vendor API able to start, watch, collect and cancel workflow runs.
///
/// Implementations are cheap to share (`Arc<dyn Vendor>`) and hold their own HTTP client, token
/// cache and retry configuration.
#[async_trait]
pub trait Vendor: Send + Sync {
    /// Which vendor this is.
    fn kind(&self) -> VendorKind;

    /// Starts a run. A submit is not idempotent at any vendor, so it is never retried after the
    /// request may have reached the vendor: such failures are [`VendorError::OutcomeUnknown`].
    async fn submit(
        &self,
        request: &ResolvedRequest,
        key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError>;

    /// Reads a run's state.
    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError>;

    /// Lists a succeeded run's result files.
    async fn results(&self, run: RunRef<'_>) -> Result<ResultsAvailability, VendorError>;

    /// Asks the vendor to stop a run.
    async fn cancel(&self, run: RunRef<'_>) -> Result<CancelOutcome, VendorError>;

    /// Opens a result file for streaming, under the vendor's download policy. An answer that is
    /// not the file is an error here; the stream says what the bytes must add up to.
    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError>;

    /// The part of the account a concurrency limit counts in, when it is finer than the account
    /// (AMC counts running executions per instance: the instance id). `None`: the whole account.
    fn concurrency_scope(&self, _request: &ResolvedRequest) -> Option<String> {
        None
    }

    /// Whether a run's results can lag its success (AMC: "unavailable for download" while it
    /// publishes), so that poll must ask [`Vendor::results`] before declaring the run done. When
    /// false, success means the results are ready and poll does not read them: collect does,
    /// once (CARTO's export checks the job itself; Amperity and Adobe have no files).
    fn results_may_lag_success(&self) -> bool {
        true
    }

    /// Whether [`Vendor::find_submitted`] can tell, for this request, that no run exists. When
    /// false, `Ok(None)` from it means "cannot tell", and the trigger will not resubmit a request
    /// whose earlier submission may have reached the vendor.
    fn can_reconcile(&self, _request: &ResolvedRequest) -> bool {
        false
    }

    /// Looks for the run this request started inside `window` (used when a submit's outcome is
    /// unknown). The answer must prove identity, not similarity:
    /// - `Ok(Some(run))`: exactly one run matches every field the vendor echoes back;
    /// - `Ok(None)`: the whole window was read and no run matches (only then may the caller
    ///   submit again);
    /// - [`VendorError::Ambiguous`]: more than one run matches; the caller must not guess;
    /// - a retryable error (e.g. [`VendorError::Unavailable`] when the page budget ran out):
    ///   unknown, keep the claim and ask again later; never read as "not found".
    ///
    /// Vendors whose API cannot tell return `Ok(None)` with [`Vendor::can_reconcile`] false and
    /// document that gap in their module.
    async fn find_submitted(
        &self,
        _request: &ResolvedRequest,
        _key: &IdempotencyKey,
        _window: ReconcileWindow,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        Ok(None)
    }
}

/// Tolerated difference between runbridge's clock and a vendor's when bounding a reconciliation
/// search: a run created this long before the claim (by the vendor's clock) is still looked at.
/// Small on purpose: a wide margin (it was 2 minutes) lets a run of the same workflow that
/// something else started just before the claim (a schedule, an earlier backfill day) into the
/// search.
pub const RECONCILE_CLOCK_SKEW: time::Duration = time::Duration::seconds(10);

/// The creation-time window in which a lost submit's run must lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileWindow {
    /// Earliest creation time searched (inclusive).
    pub from: OffsetDateTime,
    /// Latest creation time searched (exclusive), where known: vendors with an upper filter
    /// (Amperity `created_to`) send it, and every vendor ignores runs created after it.
    pub to: Option<OffsetDateTime>,
}

impl ReconcileWindow {
    /// The window for a submit claimed at `claimed_at`, searched at `now`: from the claim less
    /// [`RECONCILE_CLOCK_SKEW`] to `now` plus the same skew.
    pub fn after_claim(claimed_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self {
            from: claimed_at - RECONCILE_CLOCK_SKEW,
            to: Some(now.max(claimed_at) + RECONCILE_CLOCK_SKEW),
        }
    }

    /// Whether a run created at `created` lies in the window.
    pub fn contains(&self, created: OffsetDateTime) -> bool {
        created >= self.from && self.to.is_none_or(|to| created < to)
    }
}

/// A window from `since` with no upper bound.
impl From<OffsetDateTime> for ReconcileWindow {
    fn from(since: OffsetDateTime) -> Self {
        Self {
            from: since,
            to: None,
        }
    }
}
