//! Process-wide request rate limits: one limiter per vendor account (e.g. per Amperity tenant),
//! shared by every client and every call in the process, so concurrent runs of one account
//! together stay under the vendor's limit. A 429 with `Retry-After` is still honoured by
//! [`crate::http`] when the vendor counts differently (other processes, other clients).

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests are spaced this much wider than the limit allows, so jitter on the way to the
/// vendor cannot put one more request than the limit into a one-second window.
const HEADROOM: f64 = 1.1;

/// A request rate limit for one vendor account.
pub struct RateLimit {
    key: String,
    per_second: NonZeroU32,
    limiter: DefaultDirectRateLimiter,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("key", &self.key)
            .field("per_second", &self.per_second)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// At most `per_second` requests in any second, evenly spaced (no bursts: a vendor counting
    /// per calendar second sees at most the limit in each).
    pub fn new(key: impl Into<String>, per_second: NonZeroU32) -> Self {
        let period = Duration::from_secs_f64(HEADROOM / f64::from(per_second.get()));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            key: key.into(),
            per_second,
            limiter: RateLimiter::direct(quota),
        }
    }

    /// Waits until one more request is allowed.
    pub async fn wait(&self) {
        self.limiter.until_ready().await;
    }

    /// The account this limit belongs to.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Every limiter of the process, by account and rate.
type Limits = Mutex<HashMap<(String, u32), Arc<RateLimit>>>;

/// The process-wide limiter of account `key` at `per_second`, created on first use.
pub fn shared(key: &str, per_second: NonZeroU32) -> Arc<RateLimit> {
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    let mut limits = LIMITS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    limits
        .entry((key.to_owned(), per_second.get()))
        .or_insert_with(|| Arc::new(RateLimit::new(key, per_second)))
        .clone()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn requests_are_spaced_and_shared_by_key() {
        let ten = NonZeroU32::new(10).unwrap();
        let a = shared("rate-test:tenant-a", ten);
        let again = shared("rate-test:tenant-a", ten);
        assert!(Arc::ptr_eq(&a, &again), "one limiter per account");
        let b = shared("rate-test:tenant-b", ten);
        assert!(!Arc::ptr_eq(&a, &b));
        let started = Instant::now();
        for _ in 0..6 {
            a.wait().await;
        }
        // Five gaps of 110 ms after the first request.
        assert!(
            started.elapsed() >= Duration::from_millis(540),
            "{:?}",
            started.elapsed()
        );
        let other = Instant::now();
        b.wait().await;
        assert!(
            other.elapsed() < Duration::from_millis(50),
            "tenant b has its own budget"
        );
    }
}
