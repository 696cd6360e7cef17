//! The retry loop: jittered exponential backoff, waiting at least as long as the vendor's
//! `Retry-After`, repeating only what [`Idempotency`] allows (the attempt's classification in
//! [`super::classify`] decides), and never past the call deadline ([`super::deadline`]).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::deadline::{
    call_deadline, out_of_time_after, out_of_time_interrupted, out_of_time_unsent,
};
use super::{counts, HttpClient, Idempotency};
use crate::VendorError;

/// Retry and timeout settings; the defaults suit vendor control-plane APIs.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out in-process: the caller gets
    /// [`VendorError::Throttled`] and waits at the workflow level (a Step Functions Wait is free,
    /// a sleeping Lambda is not).
    pub max_retry_after: Duration,
    /// Whole-request timeout (connect, send, and for [`HttpClient::send_read`] the body).
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence between two reads of a response, headers or body chunks alike
    /// (reqwest's `read_timeout`, reset by every read): a download that sends its headers and
    /// then stalls fails after this instead of hanging collect until its Lambda times out.
    /// [`HttpClient::send_streaming`] also bounds the wait for headers by `request_timeout`
    /// (a download's first-byte timeout).
    pub idle_timeout: Duration,
    /// The slowest a download may be: a body that keeps dripping (a byte every few seconds never
    /// trips `idle_timeout`) fails once a whole interval passes with fewer bytes than this.
    pub min_download_rate: MinRate,
}

/// A minimum transfer rate: at least `bytes` in every `per` (see
/// [`RetryConfig::min_download_rate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes that must arrive in every interval.
    pub bytes: u64,
    /// The interval.
    pub per: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            // 16 KiB per 30 s is about 0.5 KB/s: far below any real download, far above a drip.
            min_download_rate: MinRate {
                bytes: 16 * 1024,
                per: Duration::from_secs(30),
            },
        }
    }
}

impl RetryConfig {
    /// The longest a download whose headers arrived can go on without delivering its first
    /// bytes or at its minimum rate, before it fails: the idle timeout or the rate interval,
    /// whichever is longer — what a test of a stalled or dripping source may assert.
    pub fn download_stall_bound(&self) -> Duration {
        self.idle_timeout.max(self.min_download_rate.per)
    }

    /// Short delays for tests against the simulators.
    pub fn fast() -> Self {
        Self {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(2),
            min_download_rate: MinRate {
                bytes: 1024,
                per: Duration::from_secs(2),
            },
            ..Self::default()
        }
    }
}

/// Parses `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// What one attempt came to.
pub(super) enum Attempt<T> {
    /// A final answer for the caller.
    Done(T),
    /// A failure another attempt may fix, after at least `after` (the vendor's `Retry-After`).
    Retry {
        after: Option<Duration>,
        error: VendorError,
    },
    /// A failure no attempt can fix, or one after which repeating is not allowed.
    Fail(VendorError),
}

impl HttpClient {
    /// Runs `attempt` until it is done or fails for good, backing off between attempts, within
    /// the call deadline.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter()
            .build();
        let deadline = call_deadline();
        let mut attempts = 0u32;
        loop {
            let outcome = match deadline {
                None => {
                    if let Some(rate) = &self.rate {
                        rate.wait()
                            .await
                            .map_err(|e| budget_failed(self.vendor, &e))?;
                    }
                    attempt().await
                }
                Some(deadline) => {
                    if let Some(rate) = &self.rate {
                        match tokio::time::timeout_at(deadline, rate.wait()).await {
                            Err(_) => return Err(out_of_time_unsent(self.vendor, attempts)),
                            Ok(taken) => taken.map_err(|e| budget_failed(self.vendor, &e))?,
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(out_of_time_unsent(self.vendor, attempts));
                    }
                    match tokio::time::timeout_at(deadline, attempt()).await {
                        Ok(outcome) => outcome,
                        Err(_) => return Err(out_of_time_interrupted(self.vendor, idempotency)),
                    }
                }
            };
            attempts += 1;
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { after, error } => {
                    if after.is_some_and(|a| a > self.retry.max_retry_after) {
                        return Err(error);
                    }
                    let Some(backoff) = delays.next() else {
                        return Err(error);
                    };
                    let wait = after.map_or(backoff, |a| a.max(backoff));
                    if deadline.is_some_and(|d| tokio::time::Instant::now() + wait >= d) {
                        // No time for another attempt: the last answer stands. For a submit that
                        // is a refusal the vendor certainly did not act on (connection refused,
                        // 429, 503): only those are retried.
                        return Err(out_of_time_after(error, attempts));
                    }
                    if idempotency == Idempotency::Unsafe {
                        counts::add(self.vendor, &self.profile, |c| c.submit_retries += 1);
                    }
                    tracing::warn!(vendor = %self.vendor, ?idempotency, wait_ms = wait.as_millis() as u64, %error, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The rate budget could not give the request its turn: nothing was sent, so another attempt
/// (a later invocation) is safe.
fn budget_failed(
    vendor: runbridge_core::VendorKind,
    e: &crate::rate::RateBudgetError,
) -> VendorError {
    VendorError::Unavailable {
        vendor,
        status: None,
        message: format!("{e}; nothing was sent"),
    }
}
