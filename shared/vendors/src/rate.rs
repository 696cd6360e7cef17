//! Vendor request rate budgets: the [`RateBudget`] port every rate-limited vendor request (token
//! fetches and retries included) is taken from before it is sent, and its in-process adapter
//! [`InProcessBudget`].
//!
//! An in-process budget holds for one process only: N Lambda environments would send N times
//! the limit. A deployed stack therefore takes its requests from a budget shared by every
//! environment (the DynamoDB adapter in `runbridge-adapters-aws`), which keeps an in-process
//! budget in front of it for even spacing. A 429 with `Retry-After` is still honoured by
//! [`crate::http`] when the vendor counts differently (another stack, another tool).

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests are spaced this much wider than the limit allows, so jitter on the way to the
/// vendor cannot put one more request than the limit into a one-second window.
pub const HEADROOM: f64 = 1.1;

/// The gap between two requests of an account allowed `per_second` requests in any second.
pub fn spacing(per_second: NonZeroU32) -> Duration {
    Duration::from_secs_f64(HEADROOM / f64::from(per_second.get()))
}

/// Why a request could not be given its place in the budget. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum RateBudgetError {
    /// The shared store answered an error or could not be reached.
    #[error("rate budget store {store} failed: {message}")]
    Store {
        /// The store (e.g. the DynamoDB table).
        store: String,
        /// What happened.
        message: String,
    },
}

/// Where a vendor account's requests get their turn: at most `per_second` in any one second,
/// however many clients, processes or environments share the budget.
#[async_trait]
pub trait RateBudget: Send + Sync + fmt::Debug {
    /// Waits until one more request of `account` may be sent, and takes it.
    async fn take(&self, account: &str, per_second: NonZeroU32) -> Result<(), RateBudgetError>;
}

/// A request rate limit for one vendor account in this process: evenly spaced, no bursts.
struct RateLimit {
    limiter: DefaultDirectRateLimiter,
}

impl RateLimit {
    fn new(per_second: NonZeroU32) -> Self {
        let quota = Quota::with_period(spacing(per_second))
            .expect("a positive period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(quota),
        }
    }
}

/// Every limiter of a budget, by account and rate.
type Limits = Mutex<HashMap<(String, u32), Arc<RateLimit>>>;

/// The budget of one process: one evenly spaced limiter per account, shared by every client
/// holding this budget. Holds across a process only (the sandbox, the CLI, tests).
#[derive(Default)]
pub struct InProcessBudget {
    limits: Limits,
}

impl fmt::Debug for InProcessBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBudget").finish_non_exhaustive()
    }
}

impl InProcessBudget {
    /// A budget of its own (another simulated environment, in tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// The budget every client of this process shares unless given another.
    pub fn process() -> Arc<dyn RateBudget> {
        static PROCESS: OnceLock<Arc<InProcessBudget>> = OnceLock::new();
        PROCESS.get_or_init(Default::default).clone()
    }

    fn limit(&self, account: &str, per_second: NonZeroU32) -> Arc<RateLimit> {
        let mut limits = self
            .limits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        limits
            .entry((account.to_owned(), per_second.get()))
            .or_insert_with(|| Arc::new(RateLimit::new(per_second)))
            .clone()
    }
}

#[async_trait]
impl RateBudget for InProcessBudget {
    async fn take(&self, account: &str, per_second: NonZeroU32) -> Result<(), RateBudgetError> {
        self.limit(account, per_second).limiter.until_ready().await;
        Ok(())
    }
}

/// One account's share of a budget, as an HTTP client holds it.
#[derive(Debug, Clone)]
pub struct RateGate {
    budget: Arc<dyn RateBudget>,
    account: Arc<str>,
    per_second: NonZeroU32,
}

impl RateGate {
    /// Requests of `account` from `budget`, at most `per_second` in any second.
    pub fn new(budget: Arc<dyn RateBudget>, account: &str, per_second: NonZeroU32) -> Self {
        Self {
            budget,
            account: account.into(),
            per_second,
        }
    }

    /// Waits for, and takes, the next request's turn.
    pub async fn wait(&self) -> Result<(), RateBudgetError> {
        self.budget.take(&self.account, self.per_second).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn requests_are_spaced_and_shared_by_key() {
        let ten = NonZeroU32::new(10).unwrap();
        let budget = InProcessBudget::new();
        let started = Instant::now();
        for _ in 0..6 {
            budget.take("rate-test:tenant-a", ten).await.unwrap();
        }
        // Five gaps of 110 ms after the first request.
        assert!(
            started.elapsed() >= Duration::from_millis(540),
            "{:?}",
            started.elapsed()
        );
        let other = Instant::now();
        budget.take("rate-test:tenant-b", ten).await.unwrap();
        assert!(
            other.elapsed() < Duration::from_millis(50),
            "tenant b has its own budget"
        );
    }

    #[tokio::test]
    async fn the_process_budget_is_one_and_another_budget_is_its_own() {
        let ten = NonZeroU32::new(10).unwrap();
        let a = InProcessBudget::process();
        let again = InProcessBudget::process();
        assert!(Arc::ptr_eq(&a, &again), "one budget per process");
        a.take("rate-test:tenant-c", ten).await.unwrap();
        let mine = InProcessBudget::new();
        let started = Instant::now();
        mine.take("rate-test:tenant-c", ten).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "a budget of its own does not wait on the process's"
        );
    }
}
