//! Finding the run a submit created when its answer was lost ([`Vendor::find_submitted`]).
//!
//! Lists the flow's runs in the request's sandbox (`GET /runs?property=flowId==<id>&orderby=-createdAt`,
//! following `_links.next`) and claims the oldest run that this API client created
//! (`createdClient`) at or after `since` (less [`CLOCK_SKEW_SECONDS`]) whose copy activity reports
//! the same window. It cannot tell apart two submissions of the same window by the same client
//! after `since` (runs carry no caller-chosen label, so the idempotency key cannot be matched),
//! and a run whose activities do not yet report a window is not claimed.
//!
//! [`Vendor::find_submitted`]: crate::Vendor::find_submitted

use runbridge_core::{OffsetDateTime, ResolvedRequest};
use secrecy::ExposeSecret;
use url::Url;

use super::body::{adobe_run, window_seconds};
use super::wire::{RunItem, RunsPage};
use super::{Adobe, VENDOR};
use crate::{SubmittedRun, VendorError};

/// Tolerated difference between our clock and Adobe's when comparing `createdAt` with `since`.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Runs asked for per list page.
const LIST_PAGE_SIZE: usize = 50;
/// Pages read at most while reconciling (newest first, so older pages rarely matter).
const MAX_LIST_PAGES: usize = 20;

impl Adobe {
    /// The oldest run of this client for `request`'s flow and window created since `since`.
    pub(super) async fn find_run(
        &self,
        request: &ResolvedRequest,
        since: OffsetDateTime,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run = adobe_run(request)?;
        let window = window_seconds(run)?;
        let sandbox = self.sandbox(request);
        let since_ms = (since.unix_timestamp() - CLOCK_SKEW_SECONDS) * 1000;
        let client_id = self.client_id.expose_secret();
        let mut continuation: Option<String> = None;
        let mut found: Option<RunItem> = None;
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
                if created < since_ms {
                    reached_older = true;
                    break;
                }
                let ours = item
                    .created_client
                    .as_deref()
                    .is_none_or(|c| c == client_id);
                // Newest first: keep overwriting so the oldest match after `since` wins.
                if ours && item.window() == Some(window) {
                    found = Some(item);
                }
            }
            continuation = page
                .links
                .and_then(|l| l.next)
                .and_then(|n| continuation_token(&n.href));
            if reached_older || continuation.is_none() {
                break;
            }
        }
        Ok(found.map(|item| SubmittedRun {
            vendor_state: item.status_summary().and_then(|s| s.status.clone()),
            vendor_run_id: item.id,
        }))
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
