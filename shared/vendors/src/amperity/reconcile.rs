//! Finding the run a start created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! The rules every vendor follows (the window from the claim, every echoed field, exactly one
//! match, read to the end within a budget) are on [`Vendor::find_submitted`]; what they guarantee
//! is in `docs/RELIABILITY.md`. This module is Amperity's side of them.
//!
//! The list answer shows each run's `id`, `name`, `type`, `state`, `created_at`, `principal_id`
//! and `principal_name`, but not the configuration id, window or run mode it was started with.
//! A listed run is *this request's* run only when all of these hold:
//!
//! | field | must be |
//! |---|---|
//! | `created_at` | inside the window: at or after the claim less [`crate::RECONCILE_CLOCK_SKEW`] (`created_from`, UTC with milliseconds as the API documents, rounded down) and before the search time plus the skew (`created_to`, exclusive, rounded up) — filtered by the server and checked again here |
//! | `name` | the workflow name of the request's configuration (`amperity.workflow_names`, or learned from an earlier answer in this process) |
//! | `type` | `courier.group/run` for a courier group (`cg-`); the types of orchestration groups and campaigns are not documented, so they are not compared |
//! | `principal_id` | the API key's principal (`amperity.principal_id`, or learned from an earlier start's answer in this process); when neither is known, any principal except the scheduler's |
//! | `principal_name` | never `Automated workflow` (the scheduler's runs) |
//!
//! Exactly one match is the run. None after the last page is "not found". Two or more are
//! [`VendorError::Ambiguous`] with the candidates' ids: two starts of the same workflow by the
//! same principal inside the window (say, backfills of two days whose answers were both lost)
//! cannot be told apart, and adopting the wrong one would watch a stranger's run.
//!
//! Without a known workflow name nothing can be matched: [`Vendor::can_reconcile`] is false for
//! that request, so a start whose answer was lost is `Unreconcilable` (to the dead-letter queue
//! for an operator), as at CARTO, rather than started again. Setting `amperity.workflow_names`
//! closes that gap.
//!
//! Pages are read until `next_token` is absent, whatever page size the server chose (it may
//! answer fewer than the [`LIST_PAGE_SIZE`] asked), at most [`MAX_RECONCILE_PAGES`] pages and no
//! faster than one page per [`LIST_PAGE_INTERVAL`] (the tenant's limit is 10 requests/s, shared
//! with every other caller). If the budget runs out with pages left the answer is unknown
//! ([`VendorError::Unavailable`], retryable: the claim is kept and a later delivery asks again),
//! never "not found", which would start a duplicate.
//!
//! Tested in `shared/vendors/tests/amperity.rs`
//! (`find_submitted_matches_only_the_requested_configuration`,
//! `find_submitted_without_a_known_workflow_name_finds_nothing`,
//! `reconciliation_never_adopts_a_scheduled_or_earlier_run_of_the_same_workflow`,
//! `reconciliation_follows_small_server_pages_to_the_end_within_the_rate_limit`,
//! `reconciliation_sends_a_millisecond_window_with_created_to`), and through the trigger in
//! `tests/tests/fault_matrix.rs`
//! (`a_lost_create_answer_while_a_similar_run_exists_watches_the_run_created`: a scheduler run
//! started just after the claim is never taken).
//!
//! [`Vendor::find_submitted`]: crate::Vendor::find_submitted
//! [`Vendor::can_reconcile`]: crate::Vendor::can_reconcile

use std::time::Duration as StdDuration;

use runbridge_core::request::AmperityRun;
use runbridge_core::{OffsetDateTime, ResolvedRequest};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::wire::{api_error, Workflow, WorkflowList};
use super::{AmperityClient, VENDOR};
use crate::http::Idempotency;
use crate::spec::run_of;
use crate::vendor::ReconcileWindow;
use crate::{SubmittedRun, VendorError};

/// The documented workflow type of courier-group runs.
pub const COURIER_GROUP_TYPE: &str = "courier.group/run";
/// Page size asked for when listing runs (the server may answer fewer).
pub const LIST_PAGE_SIZE: u32 = 100;
/// Most list pages read by one reconciliation; past it the answer is "unknown".
pub const MAX_RECONCILE_PAGES: usize = 50;
/// Least time between two list pages of one reconciliation: at most 5 pages/s, half the tenant's
/// 10 requests/s, so a long search does not draw 429s on itself or on other callers.
pub const LIST_PAGE_INTERVAL: StdDuration = StdDuration::from_millis(200);
/// The `principal_name` of runs Amperity's scheduler starts.
pub const SCHEDULER_PRINCIPAL_NAME: &str = "Automated workflow";

/// A timestamp with the precision the API documents and writes (`2026-06-19T04:00:18.764Z`:
/// UTC, milliseconds), rounded down (`up` false) or up.
pub(super) fn timestamp_ms(t: OffsetDateTime, up: bool) -> Result<String, VendorError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = t.millisecond();
    let floored = t
        .replace_millisecond(ms)
        .map_err(|e| VendorError::protocol(VENDOR, format!("cannot round {t}: {e}")))?;
    let t = if up && floored < t {
        floored + time::Duration::milliseconds(1)
    } else {
        floored
    };
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .map_err(|e| VendorError::protocol(VENDOR, format!("cannot format {t}: {e}")))
}

impl AmperityClient {
    /// Remembers the workflow name a response gave for `config_id`, for later reconciliation.
    pub(super) fn remember_name(&self, tenant: &str, config_id: &str, workflow: &Workflow) {
        if let Some(name) = &workflow.name {
            let mut learned = self
                .learned_names
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            learned.insert((tenant.to_owned(), config_id.to_owned()), name.clone());
        }
    }

    /// The workflow name of `config_id`: configured, else learned in this process.
    pub(super) fn workflow_name(&self, tenant: &str, config_id: &str) -> Option<String> {
        if let Some(name) = self.configured_names.get(config_id) {
            return Some(name.clone());
        }
        let learned = self
            .learned_names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        learned
            .get(&(tenant.to_owned(), config_id.to_owned()))
            .cloned()
    }

    async fn list_page(
        &self,
        tenant: &str,
        filters: &[(&str, String)],
        next_token: Option<&str>,
    ) -> Result<WorkflowList, VendorError> {
        let url = self.api_url(tenant, "/workflow/runs");
        self.send(Idempotency::Safe, tenant, |c| {
            let mut query: Vec<(&str, String)> = filters.to_vec();
            query.push(("limit", LIST_PAGE_SIZE.to_string()));
            if let Some(token) = next_token {
                query.push(("next_token", token.to_owned()));
            }
            c.get(&url).query(&query)
        })
        .await?
        .success_or(api_error)?
        .json(VENDOR)
    }

    /// Remembers the principal a start answered with, for later reconciliation.
    pub(super) fn remember_principal(&self, tenant: &str, workflow: &Workflow) {
        if let Some(principal) = workflow.principal_id.as_deref().filter(|p| !p.is_empty()) {
            let mut learned = self
                .learned_principals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            learned.insert(tenant.to_owned(), principal.to_owned());
        }
    }

    /// The principal runs started with this API key carry: configured, else learned.
    fn principal(&self, tenant: &str) -> Option<String> {
        if !self.configured_principal.is_empty() {
            return Some(self.configured_principal.clone());
        }
        let learned = self
            .learned_principals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        learned.get(tenant).cloned()
    }

    /// The one run of `request` created inside `window` (see the module documentation).
    pub(super) async fn find_run(
        &self,
        request: &ResolvedRequest,
        window: ReconcileWindow,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run: &AmperityRun = run_of(request)?;
        let Some(name) = self.workflow_name(&run.tenant, &run.config_id) else {
            tracing::warn!(
                vendor = %VENDOR,
                config_id = %run.config_id,
                "workflow name unknown (set amperity.workflow_names); cannot tell this configuration's runs apart"
            );
            return Ok(None);
        };
        let principal = self.principal(&run.tenant);
        let mut filters = vec![("created_from", timestamp_ms(window.from, false)?)];
        if let Some(to) = window.to {
            filters.push(("created_to", timestamp_ms(to, true)?));
        }
        let kind = run
            .config_id
            .starts_with("cg-")
            .then_some(COURIER_GROUP_TYPE);
        if let Some(kind) = kind {
            filters.push(("type", kind.to_owned()));
        }
        let mut matches: Vec<Workflow> = Vec::new();
        let mut next_token: Option<String> = None;
        for page_number in 0..MAX_RECONCILE_PAGES {
            if page_number > 0 {
                tokio::time::sleep(LIST_PAGE_INTERVAL).await;
            }
            let page = self
                .list_page(&run.tenant, &filters, next_token.as_deref())
                .await?;
            matches.extend(
                page.data
                    .into_iter()
                    .filter(|w| is_match(w, &name, kind, principal.as_deref(), &window)),
            );
            // An empty or absent token marks the last page.
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return one_of(matches),
            }
        }
        Err(VendorError::Unavailable {
            vendor: VENDOR,
            status: None,
            message: format!(
                "reconciliation read {MAX_RECONCILE_PAGES} pages of runs and more remain; \
                 whether the start created a run is unknown (the claim is kept; retry later)"
            ),
        })
    }
}

/// Whether a listed run is one this request's start would have created (module table).
fn is_match(
    workflow: &Workflow,
    name: &str,
    kind: Option<&str>,
    principal: Option<&str>,
    window: &ReconcileWindow,
) -> bool {
    let created = workflow
        .created_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    // The filter bounds are rounded to milliseconds, as `created_at` is written.
    let in_window = created.is_some_and(|c| {
        c >= window.from - time::Duration::milliseconds(1)
            && window
                .to
                .is_none_or(|to| c < to + time::Duration::milliseconds(1))
    });
    let by_scheduler = workflow.principal_name.as_deref() == Some(SCHEDULER_PRINCIPAL_NAME);
    let same_principal = match principal {
        Some(ours) => workflow.principal_id.as_deref() == Some(ours),
        None => true,
    };
    in_window
        && workflow.name.as_deref() == Some(name)
        && kind.is_none_or(|k| workflow.kind.as_deref() == Some(k))
        && !by_scheduler
        && same_principal
}

/// The single match, none, or [`VendorError::Ambiguous`].
fn one_of(mut matches: Vec<Workflow>) -> Result<Option<SubmittedRun>, VendorError> {
    match matches.len() {
        0 => Ok(None),
        1 => {
            let workflow = matches.remove(0);
            tracing::info!(vendor = %VENDOR, run_id = %workflow.id, "found the run an unanswered start created");
            Ok(Some(SubmittedRun {
                vendor_run_id: workflow.id,
                vendor_state: Some(workflow.state),
            }))
        }
        _ => Err(VendorError::Ambiguous {
            vendor: VENDOR,
            candidates: matches.into_iter().map(|w| w.id).collect(),
        }),
    }
}
