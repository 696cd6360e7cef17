//! Finding the execution a submit created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! The rules every vendor follows (the window from the claim, every echoed field, exactly one
//! match, read to the end within a budget) are on [`Vendor::find_submitted`]; what they guarantee
//! is in `docs/RELIABILITY.md`. This module is AMC's side of them.
//!
//! Lists executions created at or after the window's start with `minCreationTime` (whole
//! seconds, rounded down: AMC filters on seconds), `includeCancelled` and `includeWorkflow`, 100 a
//! page, oldest first, following `nextToken` to the end of the list or to the first execution
//! created past the window's end. Both bounds are checked again here. A listed execution is this
//! request's only when all of these hold:
//!
//! | field | must be |
//! |---|---|
//! | `createTime` | inside the window (claim less [`crate::RECONCILE_CLOCK_SKEW`], search time plus it) |
//! | `workflowId` | the request's saved workflow id (also filtered server-side) |
//! | `sqlQuery` | for an ad-hoc query, the normalised query (its workflow id is a fresh `transient_…` id) |
//! | `timeWindowStart` / `timeWindowEnd` | the request's window, for EXPLICIT windows |
//! | `parameterValues` | the request's parameters, when AMC returns them |
//!
//! What cannot be told apart: AMC stores no client token and the list does not echo
//! `timeWindowType`, so two identical requests (same query or workflow, window and parameters)
//! submitted inside the window are [`VendorError::Ambiguous`] with the candidates' ids, never a
//! guess (an operator picks one). More than [`MAX_LIST_PAGES`] pages is "unknown"
//! ([`VendorError::Unavailable`], retryable: the claim is kept), never "not found".
//!
//! Tested in `shared/vendors/tests/amc.rs`
//! (`a_lost_create_answer_is_outcome_unknown_and_reconciled_to_the_one_run`,
//! `reconciliation_pages_through_more_than_one_list_page`,
//! `two_identical_executions_in_the_window_are_ambiguous_not_the_oldest`), and through the
//! trigger and the admit in `tests/tests/fault_matrix.rs`
//! (`a_lost_create_answer_while_a_similar_run_exists_watches_the_run_created`) and
//! `tests/tests/queue.rs` (`a_lost_create_answer_at_admission_is_reconciled_without_a_second_run`).
//!
//! [`Vendor::find_submitted`]: crate::Vendor::find_submitted

use runbridge_core::request::AmcRun;
use runbridge_core::{OffsetDateTime, ResolvedRequest};
use time::UtcOffset;

use super::body::{explicit_window, parameter_values};
use super::error::{api_error, invalid};
use super::sql::normalize_sql;
use super::wire::{amc_time, parse_amc_time, Execution, ExecutionList};
use super::{AmcClient, VENDOR};
use crate::spec::run_of;
use crate::vendor::ReconcileWindow;
use crate::{SubmittedRun, VendorError};

/// Pages read by one reconciliation before the answer is "unknown" (100 executions each).
pub const MAX_LIST_PAGES: usize = 50;

impl AmcClient {
    /// One page of executions created at or after `since`.
    async fn list_page(
        &self,
        run: &AmcRun,
        since: OffsetDateTime,
        next_token: Option<&str>,
    ) -> Result<ExecutionList, VendorError> {
        let mut url = self.url(&run.instance_id, &[])?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("minCreationTime", &amc_time(since))
                .append_pair("sortAscending", "true")
                .append_pair("includeCancelled", "true")
                .append_pair("includeWorkflow", "true")
                .append_pair("limit", "100");
            if let Some(id) = &run.workflow_id {
                query.append_pair("workflowId", id);
            }
            if let Some(token) = next_token {
                query.append_pair("nextToken", token);
            }
        }
        self.get(run, &url)
            .await?
            .success_or(api_error)?
            .json(VENDOR)
    }

    /// The one listed execution `request` would have created inside `window`.
    pub(super) async fn find_execution(
        &self,
        request: &ResolvedRequest,
        window: ReconcileWindow,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run: &AmcRun = run_of(request)?;
        let sql = run
            .sql_query
            .as_deref()
            .map(normalize_sql)
            .transpose()
            .map_err(invalid)?;
        // AMC filters on whole seconds; a run created in the same second must still be found.
        let since = window
            .from
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(window.from);
        let window = ReconcileWindow {
            from: since,
            to: window.to,
        };
        let mut found: Vec<SubmittedRun> = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_page(run, since, next_token.as_deref()).await?;
            let mut past_window = false;
            for execution in &page.executions {
                let created = execution.create_time.as_deref().and_then(parse_amc_time);
                if created.is_some_and(|c| window.to.is_some_and(|to| c >= to)) {
                    // Oldest first: nothing after this one can be in the window.
                    past_window = true;
                    break;
                }
                if matches(run, sql.as_deref(), execution, &window)? {
                    if let Some(id) = &execution.workflow_execution_id {
                        found.push(SubmittedRun {
                            vendor_run_id: id.clone(),
                            vendor_state: execution.status.clone(),
                        });
                    }
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) if !past_window => next_token = Some(token),
                _ => return one_of(found),
            }
        }
        Err(VendorError::Unavailable {
            vendor: VENDOR,
            status: None,
            message: format!(
                "more than {MAX_LIST_PAGES} pages of executions since the submit time; whether \
                 the submit created one is unknown (the claim is kept; retry later)"
            ),
        })
    }
}

/// The single match, none, or [`VendorError::Ambiguous`].
fn one_of(mut found: Vec<SubmittedRun>) -> Result<Option<SubmittedRun>, VendorError> {
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(VendorError::Ambiguous {
            vendor: VENDOR,
            candidates: found.into_iter().map(|r| r.vendor_run_id).collect(),
        }),
    }
}

/// Whether a listed execution is the one `run` would have created at or after `since`.
fn matches(
    run: &AmcRun,
    sql: Option<&str>,
    execution: &Execution,
    window: &ReconcileWindow,
) -> Result<bool, VendorError> {
    let created = execution.create_time.as_deref().and_then(parse_amc_time);
    if created.is_none_or(|t| !window.contains(t)) {
        return Ok(false);
    }
    let same_query = match (sql, &run.workflow_id) {
        (Some(sql), _) => execution.sql_query.as_deref() == Some(sql),
        (None, Some(id)) => execution.workflow_id.as_deref() == Some(id.as_str()),
        (None, None) => false,
    };
    if !same_query {
        return Ok(false);
    }
    if let Some((start, end)) = explicit_window(run)? {
        let listed_start = execution
            .time_window_start
            .as_deref()
            .and_then(parse_amc_time);
        let listed_end = execution
            .time_window_end
            .as_deref()
            .and_then(parse_amc_time);
        if listed_start != Some(start) || listed_end != Some(end) {
            return Ok(false);
        }
    }
    if let Some(listed) = &execution.parameter_values {
        let ours = parameter_values(run)?;
        let listed: serde_json::Map<String, serde_json::Value> =
            listed.clone().into_iter().collect();
        if listed != ours {
            return Ok(false);
        }
    }
    Ok(true)
}
