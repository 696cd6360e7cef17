//! Finding the run a submit created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! The rules every vendor follows (the window from the claim, every echoed field, exactly one
//! match, read to the end within a budget) are on [`Vendor::find_submitted`]; what they guarantee
//! is in `docs/RELIABILITY.md`. This module is Adobe's side of them.
//!
//! Lists the flow's runs in the request's sandbox (`GET /runs?property=flowId==<id>&orderby=-createdAt`,
//! [`LIST_PAGE_SIZE`] a page, newest first, following `_links.next`) until a page reaches runs
//! older than the window. A listed run is this request's only when all of these hold:
//!
//! | field | must be |
//! |---|---|
//! | sandbox | the request's (`x-sandbox-name`: the list is per sandbox) |
//! | `flowId` | the request's flow (server-side `property` filter) |
//! | `createdAt` | inside the window (claim less [`crate::RECONCILE_CLOCK_SKEW`], search time plus it) |
//! | `createdClient` | this API client's id (`adobe.client_id`), when Adobe reports it |
//! | the copy activity's window | the request's window (`windowStartTime` / `windowEndTime`) |
//!
//! What cannot be told apart: runs carry no caller-chosen label, so two runs of the same flow and
//! window by the same client inside the window are [`VendorError::Ambiguous`] with the
//! candidates' ids. A run whose activities do not yet report a window is not claimed. More than
//! [`MAX_LIST_PAGES`] pages without reaching older runs is "unknown"
//! ([`VendorError::Unavailable`], retryable), never "not found".
//!
//! Tested in `shared/vendors/tests/adobe.rs`
//! (`a_lost_submit_answer_is_outcome_unknown_and_reconciles_to_the_one_run`,
//! `find_submitted_pages_through_newer_runs`,
//! `two_runs_of_the_same_window_after_the_claim_are_ambiguous`), and through the trigger in
//! `tests/tests/fault_matrix.rs`
//! (`a_lost_create_answer_while_a_similar_run_exists_watches_the_run_created`).
//!
//! [`Vendor::find_submitted`]: crate::Vendor::find_submitted

use runbridge_core::ResolvedRequest;
use secrecy::ExposeSecret;
use url::Url;

use super::body::{adobe_run, window_seconds};
use super::wire::{RunItem, RunsPage};
use super::{Adobe, VENDOR};
use crate::vendor::ReconcileWindow;
use crate::{SubmittedRun, VendorError};

/// Runs asked for per list page.
const LIST_PAGE_SIZE: usize = 50;
/// Pages read at most while reconciling (newest first); past it the answer is "unknown".
pub const MAX_LIST_PAGES: usize = 20;

impl Adobe {
    /// The one run of this client for `request`'s flow and window created inside `window`.
    pub(super) async fn find_run(
        &self,
        request: &ResolvedRequest,
        window: ReconcileWindow,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run = adobe_run(request)?;
        let data_window = window_seconds(run)?;
        let sandbox = self.sandbox(request);
        let millis = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        let from_ms = millis(window.from);
        let to_ms = window.to.map(millis);
        let client_id = self.client_id.expose_secret();
        let mut continuation: Option<String> = None;
        let mut found: Vec<RunItem> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let mut url = self.url(&["runs"]);
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("property", &format!("flowId=={}", run.flow_id))
                    .append_pair("orderby", "-createdAt")
                    .append_pair("limit", &LIST_PAGE_SIZE.to_string());
                if let Some(token) = &continuation {
                    query.append_pair("continuationToken", token);
                }
            }
            let page: RunsPage = self.get(url, sandbox).await?.json(VENDOR)?;
            let mut reached_older = false;
            for item in page.items {
                let created = item.created_at.unwrap_or(i64::MIN);
                if created < from_ms {
                    reached_older = true;
                    break;
                }
                if to_ms.is_some_and(|to| created >= to) {
                    continue;
                }
                let ours = item
                    .created_client
                    .as_deref()
                    .is_none_or(|c| c == client_id);
                if ours && item.window() == Some(data_window) {
                    found.push(item);
                }
            }
            continuation = page
                .links
                .and_then(|l| l.next)
                .and_then(|n| continuation_token(&n.href));
            if reached_older || continuation.is_none() {
                return one_of(found);
            }
        }
        Err(VendorError::Unavailable {
            vendor: VENDOR,
            status: None,
            message: format!(
                "reconciliation read {MAX_LIST_PAGES} pages of the flow's runs without reaching \
                 the claim time; whether the submit created a run is unknown (retry later)"
            ),
        })
    }
}

/// The single match, none, or [`VendorError::Ambiguous`].
fn one_of(mut found: Vec<RunItem>) -> Result<Option<SubmittedRun>, VendorError> {
    match found.len() {
        0 => Ok(None),
        1 => {
            let item = found.remove(0);
            Ok(Some(SubmittedRun {
                vendor_state: item.status_summary().and_then(|s| s.status.clone()),
                vendor_run_id: item.id,
            }))
        }
        _ => Err(VendorError::Ambiguous {
            vendor: VENDOR,
            candidates: found.into_iter().map(|item| item.id).collect(),
        }),
    }
}

/// The `continuationToken` of a next-page link such as `/runs?continuationToken=…&limit=50`.
fn continuation_token(href: &str) -> Option<String> {
    let url = Url::parse("https://placeholder.invalid")
        .ok()?
        .join(href)
        .ok()?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "continuationToken")
        .map(|(_, v)| v.into_owned());
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_token() {
        assert_eq!(
            continuation_token("/runs?property=flowId%3D%3Dx&continuationToken=ab%2Bc").as_deref(),
            Some("ab+c")
        );
        assert_eq!(continuation_token("/runs?limit=2"), None);
    }
}
