//! The call deadline: every vendor HTTP call made inside [`within_deadline`] (retries and their
//! waits included) ends by one instant, derived from the invocation's deadline by
//! [`vendor_call_deadline`], so a Lambda returns a retryable error while it still runs instead of
//! being stopped mid-call. The retry loop ([`super::HttpClient`]) reads it; this module also says
//! what an attempt the deadline stopped reports.

use std::future::Future;

use runbridge_core::{OffsetDateTime, VendorKind};
use time::Duration;

use super::Idempotency;
use crate::VendorError;

/// Vendor calls stop this long before the invocation's deadline. What is left records the run
/// (or releases the claim) and starts the execution before an SQS batch's messages are cut off
/// (5 s before the deadline) and the trigger Lambda is stopped; a poll or collect returns its
/// retryable error (a poll reads it as "wait", Step Functions retries a collect).
pub const VENDOR_CALL_MARGIN: Duration = Duration::seconds(10);

tokio::task_local! {
    /// See [`within_deadline`].
    static CALL_DEADLINE: tokio::time::Instant;
}

/// The instant vendor calls must end by: `invocation_deadline` (wall-clock) less `margin`; now,
/// when that has passed.
pub fn vendor_call_deadline(
    invocation_deadline: OffsetDateTime,
    margin: Duration,
) -> tokio::time::Instant {
    let left = invocation_deadline - margin - OffsetDateTime::now_utc();
    tokio::time::Instant::now() + std::time::Duration::try_from(left).unwrap_or_default()
}

/// Runs `work` with its vendor calls bounded by `invocation_deadline` less
/// [`VENDOR_CALL_MARGIN`] ([`within_deadline`]); without a deadline, the calls keep only their
/// own timeouts.
pub async fn within_invocation<F: Future>(
    invocation_deadline: Option<OffsetDateTime>,
    work: F,
) -> F::Output {
    match invocation_deadline {
        Some(d) => within_deadline(vendor_call_deadline(d, VENDOR_CALL_MARGIN), work).await,
        None => work.await,
    }
}

/// Runs `work` with every vendor HTTP call made inside it bounded by `deadline` (the invocation's
/// remaining time less a margin): no attempt starts, and no retry waits, past it, and an attempt
/// still in flight then is cut off. The error says "out of time" and keeps what is known:
///
/// - cut off in flight: a submit is [`VendorError::OutcomeUnknown`] (it may have been applied:
///   the trigger keeps the claim and reconciles), a read [`VendorError::Unavailable`];
/// - before a call or a retry was sent: the last answer stands (for a submit one the vendor
///   certainly did not act on, since only those are retried), or `Unavailable` without a status
///   when nothing was sent at all.
///
/// All of them are retryable. Calls outside such a scope are bounded only by their own timeouts.
pub async fn within_deadline<F: Future>(deadline: tokio::time::Instant, work: F) -> F::Output {
    CALL_DEADLINE.scope(deadline, work).await
}

/// The deadline of the [`within_deadline`] scope this task runs in, if any.
pub(super) fn call_deadline() -> Option<tokio::time::Instant> {
    CALL_DEADLINE.try_with(|d| *d).ok()
}

/// `error` (a retryable answer) marked as the last one before the deadline.
pub(super) fn out_of_time_after(error: VendorError, attempts: u32) -> VendorError {
    let note =
        |message: String| format!("{message} (out of time for a retry after {attempts} attempts)");
    match error {
        VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message,
        } => VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message: note(message),
        },
        VendorError::Unavailable {
            vendor,
            status,
            message,
        } => VendorError::Unavailable {
            vendor,
            status,
            message: note(message),
        },
        other => other,
    }
}

/// The deadline passed before a (first or next) attempt was sent: nothing was sent, so a submit
/// certainly created nothing.
pub(super) fn out_of_time_unsent(vendor: VendorKind, attempts: u32) -> VendorError {
    VendorError::Unavailable {
        vendor,
        status: None,
        message: format!(
            "out of time: the invocation's deadline came before the call was sent (after \
             {attempts} attempts); nothing was sent"
        ),
    }
}

/// The deadline passed while an attempt was in flight: a submit may have been applied.
pub(super) fn out_of_time_interrupted(vendor: VendorKind, idempotency: Idempotency) -> VendorError {
    let message = "out of time: the call was interrupted at the invocation's deadline".to_owned();
    match idempotency {
        Idempotency::Unsafe => VendorError::OutcomeUnknown { vendor, message },
        Idempotency::Safe => VendorError::Unavailable {
            vendor,
            status: None,
            message,
        },
    }
}
