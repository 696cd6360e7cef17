//! Finding the execution a submit created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! Lists executions created at or after the (whole-second) submit time with `minCreationTime`,
//! `includeCancelled` and `includeWorkflow`, following `nextToken`, oldest first. A saved workflow
//! matches on `workflowId` (also filtered server-side); an ad-hoc query on its normalised
//! `sqlQuery` (the workflow id of an ad-hoc run is a fresh `transient_…` id). EXPLICIT windows
//! must also match `timeWindowStart`/`timeWindowEnd`, and `parameterValues` must match when AMC
//! returns them. What it cannot tell apart: AMC stores no client token, so two identical requests
//! (same query or workflow, same window, same parameters) submitted in the same period are
//! indistinguishable, and the oldest is returned; for non-EXPLICIT windows the list does not echo
//! `timeWindowType`, so only the query, parameters and creation time are compared.
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
use crate::{SubmittedRun, VendorError};

/// Pages read by one reconciliation before giving up (100 executions each).
const MAX_LIST_PAGES: usize = 50;

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

    /// The oldest listed execution `request` would have created at or after `since`.
    pub(super) async fn find_execution(
        &self,
        request: &ResolvedRequest,
        since: OffsetDateTime,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run: &AmcRun = run_of(request)?;
        let sql = run
            .sql_query
            .as_deref()
            .map(normalize_sql)
            .transpose()
            .map_err(invalid)?;
        // AMC filters on whole seconds; a run created in the same second must still be found.
        let since = since
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(since);
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_page(run, since, next_token.as_deref()).await?;
            for execution in &page.executions {
                if matches(run, sql.as_deref(), execution, since)? {
                    if let Some(id) = &execution.workflow_execution_id {
                        return Ok(Some(SubmittedRun {
                            vendor_run_id: id.clone(),
                            vendor_state: execution.status.clone(),
                        }));
                    }
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(None),
            }
        }
        Err(VendorError::Unavailable {
            vendor: VENDOR,
            status: None,
            message: format!("more than {MAX_LIST_PAGES} pages of executions since the submit time; cannot reconcile"),
        })
    }
}

/// Whether a listed execution is the one `run` would have created at or after `since`.
fn matches(
    run: &AmcRun,
    sql: Option<&str>,
    execution: &Execution,
    since: OffsetDateTime,
) -> Result<bool, VendorError> {
    let created = execution.create_time.as_deref().and_then(parse_amc_time);
    if created.is_none_or(|t| t < since) {
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
