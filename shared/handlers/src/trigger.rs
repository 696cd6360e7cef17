//! The trigger handler: one request in, at most one vendor run out, and the execution that
//! watches it.
//!
//! Exactly-once rests on the [`Ledger`]: the key is claimed before the vendor is called and the
//! vendor run id recorded right after. A redelivery finds the claim and reuses the recorded run.
//! A claim without a run id means another delivery is submitting (or crashed while doing so):
//! while the claim's lease lasts the delivery is retried later; after it, the vendor is asked
//! whether the run exists ([`Vendor::find_submitted`]) before anything is submitted again. Where
//! the vendor cannot answer that ([`Vendor::can_reconcile`] is false, e.g. CARTO), nothing is
//! resubmitted: the request fails with [`HandlerError::Unreconcilable`] for an operator, because a
//! duplicate run is the one failure runbridge cannot undo.

use std::sync::Arc;

use runbridge_core::{
    BackoffPolicy, Fingerprint, IdempotencyKey, OffsetDateTime, ResolvedRequest, RunHandle,
    RunRequest,
};
use runbridge_vendors::{ReconcileWindow, SubmittedRun, Vendor, VendorError, Vendors};
use time::Duration;
use tracing::Instrument;

use crate::collect::Collector;
use crate::ports::{Claim, Executions, Ledger, LedgerEntry, Queued, StartOutcome, Submitted};
use crate::{Clock, HandlerError};

/// How long a claim without a vendor run id is presumed to belong to a live submitter. Longer
/// than the trigger Lambda's timeout, so a claim older than this is a crashed submitter's.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::minutes(5);

/// Added to the claimant's own deadline (the Lambda's remaining time) to make its lease: after
/// that the claimant is certainly gone, so a later delivery may reconcile.
pub const LEASE_SLACK: Duration = Duration::seconds(30);

/// Vendor calls stop this long before the invocation's deadline ([`Trigger::deadline`]).
pub use runbridge_vendors::http::VENDOR_CALL_MARGIN;

/// What the trigger did: the run it watches, and which part of that this call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    /// The run (key, resolved request, vendor run id), as the execution was started with it.
    pub handle: RunHandle,
    /// True when this call submitted the run; false when it found it already submitted.
    pub submitted_now: bool,
    /// Whether this call started the execution.
    pub execution: StartOutcome,
    /// True when the run waits in the state machine for a concurrency slot ([`crate::admit`]):
    /// nothing is submitted yet, and the handle has no vendor run id.
    pub queued: bool,
}

impl Triggered {
    /// The idempotency key (also the execution name).
    pub fn key(&self) -> &IdempotencyKey {
        &self.handle.key
    }

    /// The vendor's run id.
    pub fn vendor_run_id(&self) -> &str {
        &self.handle.vendor_run_id
    }
}

/// The trigger's dependencies.
pub struct Trigger {
    /// Vendor clients.
    pub vendors: Vendors,
    /// The idempotency ledger.
    pub ledger: Arc<dyn Ledger>,
    /// Where executions start.
    pub executions: Arc<dyn Executions>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The poll wait policy (for the first wait).
    pub policy: BackoffPolicy,
    /// See [`DEFAULT_CLAIM_LEASE`]: the lease of a claim when [`Trigger::deadline`] is unknown.
    pub claim_lease: Duration,
    /// When this invocation will be stopped (a Lambda's deadline, wall-clock time), if known. A
    /// claim's lease is this plus [`LEASE_SLACK`], so a retry that comes after this invocation
    /// certainly ended can reconcile at once instead of waiting a fixed lease; and every vendor
    /// call (retries included) ends by this less [`VENDOR_CALL_MARGIN`]
    /// ([`runbridge_vendors::http::within_deadline`]): a submit cut off in flight is an unknown
    /// outcome (claim kept, reconciled later), one that could not be retried in time keeps the
    /// vendor's refusal.
    pub deadline: Option<OffsetDateTime>,
    /// Announces the final manifest of a run whose execution already exists
    /// ([`StartOutcome::AlreadyStarted`]) when no announcement was recorded
    /// ([`Collector::finish_existing`]): a redelivery then repairs a lost event (the stop
    /// handler's or collect's `PutEvents` failing past their retries). `None`: a redelivery only
    /// finds the execution (a trigger without results-bucket and `PutEvents` access).
    pub announcer: Option<Arc<Collector>>,
}

impl Trigger {
    /// Handles a raw request document. `schedule_time` is when the schedule fired or the message
    /// was sent; it anchors relative windows and, without a `request_id`, the key.
    pub async fn handle_bytes(
        &self,
        body: &[u8],
        schedule_time: Option<OffsetDateTime>,
    ) -> Result<Triggered, HandlerError> {
        let request = RunRequest::from_json(body)?;
        self.handle(request, schedule_time).await
    }

    /// Handles a parsed request.
    pub async fn handle(
        &self,
        request: RunRequest,
        schedule_time: Option<OffsetDateTime>,
    ) -> Result<Triggered, HandlerError> {
        request.validate()?;
        // A profile this deployment does not have (or another vendor's) is a bad request like
        // any other: named, never retried, to the DLQ before the ledger is touched.
        self.vendors.check_profile(&request)?;
        let now = self.clock.now();
        let fingerprint = Fingerprint::of(&request);
        let lease_until = match self.deadline {
            Some(d) => d + LEASE_SLACK,
            None => now + self.claim_lease,
        };
        let resolved = request.resolve(schedule_time.unwrap_or(now));
        // The key hashes the resolved request, so "yesterday" on two days is two runs.
        let key = IdempotencyKey::for_request(&resolved, schedule_time);
        let span = crate::steps::run_span(&key, &resolved, None);
        let work = self
            .handle_keyed(key, resolved, now, fingerprint, lease_until)
            .instrument(span.clone());
        let (result, counts) = runbridge_vendors::http::counted(
            runbridge_vendors::http::within_invocation(self.deadline, work),
        )
        .await;
        if let Ok(t) = &result {
            span.record("vendor_run_id", t.vendor_run_id());
        }
        crate::metrics::vendor_call_counts(&counts, self.clock.now());
        result
    }

    async fn handle_keyed(
        &self,
        key: IdempotencyKey,
        resolved: ResolvedRequest,
        now: OffsetDateTime,
        fingerprint: Fingerprint,
        lease_until: OffsetDateTime,
    ) -> Result<Triggered, HandlerError> {
        let vendor = self.vendors.for_request(&resolved)?;
        // A profile with a limit of runs at once is submitted by the state machine once it holds
        // a slot, never here: the claim records it as queued.
        let queued = self.vendors.concurrency_limit(&resolved).map(|_| Queued {
            since: now,
            slot: None,
            submitting_until: None,
            vendor_full: 0,
        });
        let claim = self
            .ledger
            .claim(LedgerEntry {
                key: key.clone(),
                request: resolved,
                fingerprint: Some(fingerprint.clone()),
                claimed_at: now,
                lease_until: Some(lease_until),
                submitted: None,
                collect_failed: None,
                queued,
            })
            .await?;
        if let Claim::Existing(existing) = &claim {
            if let Some(stored) = existing.fingerprint.as_ref().filter(|f| **f != fingerprint) {
                return Err(HandlerError::KeyConflict {
                    key: key.to_string(),
                    stored: stored.to_string(),
                    received: fingerprint.to_string(),
                });
            }
        }
        let (entry, submitted_now) = match claim {
            Claim::New(entry) | Claim::Existing(entry) if crate::admit::is_queued(&entry) => {
                return self.start_queued(entry).await;
            }
            Claim::New(mut entry) => {
                tracing::info!("claimed key; submitting");
                self.submit(vendor.as_ref(), &mut entry).await?;
                (entry, true)
            }
            Claim::Existing(entry) if entry.submitted.is_some() => {
                tracing::info!("key already submitted; reusing the run");
                (entry, false)
            }
            Claim::Existing(mut entry) => {
                let lease_until = entry
                    .lease_until
                    .unwrap_or(entry.claimed_at + self.claim_lease);
                if now < lease_until {
                    return Err(HandlerError::port(
                        "ledger",
                        format!(
                            "key {key} is being submitted by another delivery (lease until \
                             {lease_until}); retry later"
                        ),
                        true,
                    ));
                }
                if !vendor.can_reconcile(&entry.request) {
                    return Err(HandlerError::Unreconcilable(format!(
                        "an earlier delivery of {key} claimed it at {} and may have started a {} run, \
                         which the {} API cannot confirm or deny; check the vendor for it and resend \
                         with a new request_id if there is none",
                        entry.claimed_at,
                        entry.request.vendor(),
                        entry.request.vendor()
                    )));
                }
                tracing::warn!("stale claim without a run id; reconciling with the vendor");
                if adopt_submitted(self.ledger.as_ref(), vendor.as_ref(), &mut entry, now).await? {
                    (entry, false)
                } else {
                    self.submit(vendor.as_ref(), &mut entry).await?;
                    (entry, true)
                }
            }
        };
        let submitted = entry.submitted.clone().expect("entry is submitted here");
        let handle = RunHandle::new(
            key.clone(),
            entry.request.clone(),
            submitted.vendor_run_id.clone(),
            submitted.submitted_at,
        )
        .submitted_as(submitted.vendor_state.as_deref());
        let input = match (&entry.queued, &entry.collect_failed) {
            // A queued run's execution started with its queued input; a redelivery after its
            // admission must find it with that same input.
            (Some(queued), None) => encode_queued(&entry, queued)?,
            _ => execution_input(&handle, &self.policy)?,
        };
        // A collect that failed on our side ended the first execution without a manifest: this
        // delivery starts (or finds) the recovery execution, which polls the succeeded vendor run
        // and collects it. Nothing is submitted again.
        let name = match &entry.collect_failed {
            Some(failure) => {
                tracing::warn!(reason = %failure.reason, count = failure.count, "an earlier collect failed on our side; collecting again");
                recovery_execution_name(&key, failure.count)?
            }
            None => key.execution_name(),
        };
        tracing::Span::current().record("vendor_run_id", submitted.vendor_run_id.as_str());
        let execution = self.executions.start(&name, input).await?;
        tracing::info!(?execution, "watching run");
        if execution == StartOutcome::AlreadyStarted {
            self.announce_existing(&handle).await?;
        }
        if submitted_now {
            crate::metrics::run_submitted(&handle, self.clock.now());
        }
        Ok(Triggered {
            handle,
            submitted_now,
            execution,
            queued: false,
        })
    }

    /// Starts (or finds) the execution of a queued run: it waits for a slot and submits then.
    async fn start_queued(&self, entry: LedgerEntry) -> Result<Triggered, HandlerError> {
        let queued = entry.queued.clone().expect("a queued entry");
        let input = encode_queued(&entry, &queued)?;
        let execution = self
            .executions
            .start(&entry.key.execution_name(), input)
            .await?;
        tracing::info!(?execution, "queued for a concurrency slot");
        Ok(Triggered {
            handle: crate::admit::queued_handle(&entry, &queued),
            submitted_now: false,
            execution,
            queued: true,
        })
    }

    /// A redelivery found the execution already started (running, or ended: succeeded, failed,
    /// stopped): if the key's final manifest exists and no announcement was recorded, announce
    /// it now. A failure is retryable (`PutEvents`, S3), so the delivery comes again.
    async fn announce_existing(&self, handle: &RunHandle) -> Result<(), HandlerError> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        let paths = announcer.layout.paths(handle);
        if let Some((outcome, true)) = announcer.finish_existing(&paths).await? {
            tracing::warn!(manifest_key = %outcome.manifest_key, event_id = %outcome.event_id, "the run's manifest had no recorded announcement; announced it");
        }
        Ok(())
    }

    async fn submit(
        &self,
        vendor: &dyn Vendor,
        entry: &mut LedgerEntry,
    ) -> Result<(), HandlerError> {
        match vendor.submit(&entry.request, &entry.key).await {
            Ok(run) => record_run(self.ledger.as_ref(), entry, run, self.clock.now()).await,
            Err(VendorError::OutcomeUnknown {
                vendor: kind,
                message,
            }) if !vendor.can_reconcile(&entry.request) => {
                Err(HandlerError::Unreconcilable(format!(
                "the {kind} submit of {} may have started a run ({message}), and the {kind} API \
                 cannot confirm or deny it; check the vendor for it and resend with a new \
                 request_id if there is none",
                entry.key
            )))
            }
            Err(VendorError::OutcomeUnknown {
                vendor: kind,
                message,
            }) => {
                tracing::warn!(%message, "submit outcome unknown; asking the vendor");
                // From the claim (less a small clock skew) to now: never a run started before
                // this request was claimed (`runbridge_vendors::RECONCILE_CLOCK_SKEW`).
                let window = ReconcileWindow::after_claim(entry.claimed_at, self.clock.now());
                match vendor
                    .find_submitted(&entry.request, &entry.key, window)
                    .await
                {
                    Ok(Some(found)) => {
                        let at = entry.claimed_at;
                        record_run(self.ledger.as_ref(), entry, reconciled(found), at).await
                    }
                    // More than one run matches: an operator decides (non-retryable, DLQ).
                    Err(e @ VendorError::Ambiguous { .. }) => Err(e.into()),
                    // Keep the claim: the next delivery after the lease reconciles again.
                    Ok(None) | Err(_) => Err(VendorError::OutcomeUnknown {
                        vendor: kind,
                        message,
                    }
                    .into()),
                }
            }
            Err(e) if is_definite_refusal(&e) => {
                // The vendor certainly created nothing: free the key now, so the corrected resend
                // (or SQS's next delivery) claims it afresh instead of waiting out a lease and then
                // reconciling or replaying the stored, refused request.
                tracing::info!(error = %e, "submit definitely refused; releasing the claim");
                if let Err(release) = self.ledger.release(&entry.key).await {
                    tracing::warn!(error = %release, "could not release the claim; it expires with its lease");
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Records the vendor run in the key's entry, unless another delivery recorded one first
/// (two reconcilers of the same stale claim): then this delivery takes the stored entry
/// whole instead of overwriting it. Overwriting would erase what was written since — the
/// other delivery's execution may already have failed its collect and recorded
/// `collect_failed`, and a blind write would take it back, so every later delivery found
/// that failed execution instead of starting the recovery.
pub(crate) async fn record_run(
    ledger: &dyn Ledger,
    entry: &mut LedgerEntry,
    run: SubmittedRun,
    at: OffsetDateTime,
) -> Result<(), HandlerError> {
    if let Some(stored) = ledger.get(&entry.key).await? {
        if stored.submitted.is_some() && stored.fingerprint == entry.fingerprint {
            tracing::info!(vendor_run_id = ?stored.submitted.as_ref().map(|s| &s.vendor_run_id), "another delivery recorded the run first; using its entry");
            *entry = stored;
            return Ok(());
        }
    }
    entry.submitted = Some(Submitted {
        vendor_run_id: run.vendor_run_id,
        submitted_at: at,
        vendor_state: run.vendor_state,
    });
    ledger.record_submitted(entry).await
}

/// Asks the vendor for the run an unsettled submit of `entry` may have created (listed from its
/// claim to `now`) and records the one it finds ([`reconciled`], [`record_run`]); whether there
/// was one. The trigger (a stale claim), the admit (an in-flight record) and the stop handler (a
/// stop during an admission) all settle an unknown submit this way.
pub(crate) async fn adopt_submitted(
    ledger: &dyn Ledger,
    vendor: &dyn Vendor,
    entry: &mut LedgerEntry,
    now: OffsetDateTime,
) -> Result<bool, HandlerError> {
    let window = ReconcileWindow::after_claim(entry.claimed_at, now);
    let Some(found) = vendor
        .find_submitted(&entry.request, &entry.key, window)
        .await?
    else {
        return Ok(false);
    };
    let at = entry.claimed_at;
    record_run(ledger, entry, reconciled(found), at).await?;
    Ok(true)
}

/// Whether a failed submit certainly started no vendor run: the vendor answered with a refusal
/// (4xx incl. 401/403/404/429, or 503 — which the HTTP layer retries and reports as
/// `Throttled`/`Unavailable`), the connection was refused or TLS failed before a byte was sent
/// (`Unavailable` without a status: an unsafe request is only reported so when it was not sent),
/// or runbridge's configuration stopped the call. An `OutcomeUnknown` or an unreadable answer to
/// the create (`Protocol`) may hide a created run, so those keep the claim.
pub fn is_definite_refusal(e: &VendorError) -> bool {
    // A list of the definite ones, so a future variant keeps the claim until classified.
    matches!(
        e,
        VendorError::Rejected { .. }
            | VendorError::Unauthorized { .. }
            | VendorError::Forbidden { .. }
            | VendorError::NotFound { .. }
            | VendorError::Throttled { .. }
            | VendorError::Unavailable { .. }
            | VendorError::Config { .. }
            | VendorError::DownloadRefused { .. }
    )
}

/// The most recovery executions a key gets (one per collect that failed on our side).
pub const MAX_COLLECT_RECOVERIES: u32 = 99;

/// The name of the `n`-th recovery execution of `key`: `<key>=<n>`. `=` never occurs in a key,
/// so no key's own execution can take the name; the longest key (77 characters: `amperity_999-` and a 64-character request id) plus `=99`
/// stays within Step Functions' 80.
pub fn recovery_execution_name(key: &IdempotencyKey, n: u32) -> Result<String, HandlerError> {
    if n > MAX_COLLECT_RECOVERIES {
        return Err(HandlerError::CollectFailed(format!(
            "{key}: {n} collects failed on our side; not starting another recovery"
        )));
    }
    Ok(format!("{}={n}", key.execution_name()))
}

/// A run found by reconciliation: its listed state is not what the vendor answered at
/// submission, so it does not open the timeline (the first poll does). It is recorded as
/// submitted at its claim's time (the submit followed the claim at once), not at the time it was
/// found: two deliveries reconciling the same key at once then write the same entry and start
/// the execution with the same input, instead of the second one's `ExecutionAlreadyExists` with
/// another input (non-retryable) dead-lettering it and every redelivery after it.
pub(crate) fn reconciled(found: SubmittedRun) -> SubmittedRun {
    SubmittedRun {
        vendor_state: None,
        ..found
    }
}

/// The state machine's input for a queued run ([`crate::admit::queued_input`]), within budget.
fn encode_queued(entry: &LedgerEntry, queued: &Queued) -> Result<serde_json::Value, HandlerError> {
    crate::steps::within_budget(
        "the execution input",
        serde_json::to_value(crate::admit::queued_input(entry, queued))
            .expect("admit outputs serialise"),
    )
}

/// The state machine's input for a new run: a reference to the handle (the request stays in the
/// ledger entry, where poll and collect read it) and the first wait. Within
/// [`runbridge_core::EXECUTION_PAYLOAD_BUDGET`] whatever the request's size; a failure here comes
/// after the run id was recorded, so a redelivery finds the run (and a DLQ message names it).
pub fn execution_input(
    handle: &RunHandle,
    policy: &BackoffPolicy,
) -> Result<serde_json::Value, HandlerError> {
    let policy = handle.request.backoff(*policy);
    let wait = policy.next_wait(0, None, handle.remaining_seconds(handle.submitted_at));
    crate::steps::within_budget(
        "the execution input",
        serde_json::json!({ "handle": handle.reference(), "wait_seconds": wait }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::{OffsetDateTime, MAX_ATTEMPT};

    #[test]
    fn the_longest_key_and_its_last_recovery_fit_an_execution_name() {
        let request = RunRequest::from_value(serde_json::json!({
            "vendor": "amperity", "request_id": "i".repeat(64), "attempt": MAX_ATTEMPT,
            "tenant": "acme", "config_id": "cg-files01"
        }))
        .unwrap()
        .resolve(OffsetDateTime::UNIX_EPOCH);
        let key = IdempotencyKey::for_request(&request, None);
        let name = recovery_execution_name(&key, MAX_COLLECT_RECOVERIES).unwrap();
        assert!(name.len() <= 80, "{name} is {} characters", name.len());
        assert!(recovery_execution_name(&key, MAX_COLLECT_RECOVERIES + 1).is_err());
    }
}

#[cfg(test)]
mod poll_policy_tests {
    use super::*;

    #[test]
    fn the_first_wait_is_the_requests_own_when_it_has_a_poll_policy() {
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"p-1","connection":"c","query":"SELECT 1","poll":{"first_seconds":7,"factor":0.1,"max_seconds":30}}"#,
        )
        .unwrap()
        .resolve(OffsetDateTime::now_utc());
        let key = IdempotencyKey::for_request(&request, None);
        let handle = RunHandle::new(key, request, "job".into(), OffsetDateTime::now_utc());
        let input = execution_input(&handle, &BackoffPolicy::default()).unwrap();
        assert_eq!(input["wait_seconds"], 7);
        assert!(input["handle"].get("request").is_none(), "{input}");
    }

    #[test]
    fn an_execution_input_over_the_payload_budget_is_refused_not_started() {
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"b-1","connection":"c","query":"SELECT 1"}"#,
        )
        .unwrap()
        .resolve(OffsetDateTime::now_utc());
        let key = IdempotencyKey::for_request(&request, None);
        let at = OffsetDateTime::now_utc();
        let run_id = "j".repeat(runbridge_core::EXECUTION_PAYLOAD_BUDGET);
        let handle = RunHandle::new(key, request, run_id, at);
        let err = execution_input(&handle, &BackoffPolicy::default()).unwrap_err();
        assert!(err.to_string().contains("payload budget"), "{err}");
    }
}
