//! The tracing span of one run: every log line about it carries its key and ids, whichever
//! handler writes it.

use runbridge_core::{IdempotencyKey, ResolvedRequest, RunHandle};

/// The span every log line about one run carries: `key`, `vendor`, `profile`, `vendor_run_id`
/// (empty until the vendor accepted the run) and `attempt`. Opened once per handler call, by the
/// trigger and by each step.
pub fn run_span(
    key: &IdempotencyKey,
    request: &ResolvedRequest,
    vendor_run_id: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "run",
        key = %key,
        vendor = %request.vendor(),
        profile = request.profile(),
        vendor_run_id = tracing::field::Empty,
        attempt = u64::from(request.attempt()),
    );
    if let Some(id) = vendor_run_id.filter(|id| !id.is_empty()) {
        span.record("vendor_run_id", id);
    }
    span
}

/// [`run_span`] for a handle.
pub fn handle_span(handle: &RunHandle) -> tracing::Span {
    run_span(
        &handle.key,
        &handle.request,
        handle.vendor_run_id.as_deref(),
    )
}
