//! Finding the run a start created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! The list response exposes each run's `id`, `name`, `type`, `state` and `created_at`, but not
//! the configuration id it was started for. A run is therefore matched by the workflow *name* of
//! the request's configuration, created at or after `since` (server-side `created_from` filter),
//! and for courier groups also by the documented type `courier.group/run` (server-side `type`
//! filter; the types of orchestration groups and campaigns are not documented, so those are
//! matched by name alone). The name comes from the optional setting `amperity.workflow_names`
//! (`cg-1=Daily files;og-2=Nightly`) or, in the same process, from an earlier response for that
//! configuration. When the name is unknown the client cannot tell runs apart and answers
//! `Ok(None)` with a warning. Two runs of the same configuration started after `since` (say, a
//! schedule and runbridge) are indistinguishable; the earliest is returned, which does the same
//! work. Pages are followed up to [`MAX_RECONCILE_PAGES`] pages of [`LIST_PAGE_SIZE`].
//!
//! [`Vendor::find_submitted`]: crate::Vendor::find_submitted

use runbridge_core::request::AmperityRun;
use runbridge_core::{OffsetDateTime, ResolvedRequest};
use time::format_description::well_known::Rfc3339;

use super::wire::{api_error, Workflow, WorkflowList};
use super::{AmperityClient, VENDOR};
use crate::http::Idempotency;
use crate::spec::run_of;
use crate::{SubmittedRun, VendorError};

/// The documented workflow type of courier-group runs.
pub const COURIER_GROUP_TYPE: &str = "courier.group/run";
/// Page size used when listing runs.
pub const LIST_PAGE_SIZE: u32 = 100;
/// Most list pages read by one reconciliation.
pub const MAX_RECONCILE_PAGES: usize = 20;

fn timestamp(t: OffsetDateTime) -> Result<String, VendorError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
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

    /// The earliest run of `request`'s workflow created at or after `since`.
    pub(super) async fn find_run(
        &self,
        request: &ResolvedRequest,
        since: OffsetDateTime,
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
        let mut filters = vec![("created_from", timestamp(since)?)];
        let kind = run
            .config_id
            .starts_with("cg-")
            .then_some(COURIER_GROUP_TYPE);
        if let Some(kind) = kind {
            filters.push(("type", kind.to_owned()));
        }
        let mut candidates: Vec<(Option<OffsetDateTime>, Workflow)> = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_RECONCILE_PAGES {
            let page = self
                .list_page(&run.tenant, &filters, next_token.as_deref())
                .await?;
            // `created_from` already bounds the page by `since`; `created_at` is only compared
            // between candidates (it is written in milliseconds, so it may read just before a
            // nanosecond `since`).
            for workflow in page.data {
                let same_workflow = workflow.name.as_deref() == Some(name.as_str())
                    && kind.is_none_or(|k| workflow.kind.as_deref() == Some(k));
                let created = workflow
                    .created_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
                if same_workflow {
                    candidates.push((created, workflow));
                }
            }
            // An empty or absent token marks the last page.
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => break,
            }
        }
        // The earliest candidate; one whose `created_at` does not parse sorts last.
        let earliest = candidates
            .into_iter()
            .min_by_key(|(created, _)| (created.is_none(), *created));
        Ok(earliest.map(|(_, workflow)| {
            tracing::info!(vendor = %VENDOR, run_id = %workflow.id, "found the run an unanswered start created");
            SubmittedRun { vendor_run_id: workflow.id, vendor_state: Some(workflow.state) }
        }))
    }
}
