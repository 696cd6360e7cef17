//! The AWS and vendor limits the simulated day meets, as counters on the virtual clock (ms):
//! token buckets (Step Functions' StartExecution and StateTransition), per-second rate limits
//! (S3 per prefix, Scheduler), sliding one-second windows (a vendor's per-tenant limit) and
//! each limit's peak and throttled count.

use std::collections::{HashMap, VecDeque};

/// Calls per calendar second, and the most seen in any second.
#[derive(Debug, Clone, Default)]
pub struct PerSecond {
    second: u64,
    count: u64,
    /// The most calls in one second so far.
    pub peak: u64,
}

impl PerSecond {
    /// Counts a call at `now_ms`; answers the calls in its second so far, this one included.
    pub fn hit(&mut self, now_ms: u64) -> u64 {
        let second = now_ms / 1_000;
        if second != self.second {
            self.second = second;
            self.count = 0;
        }
        self.count += 1;
        self.peak = self.peak.max(self.count);
        self.count
    }
}

/// A token bucket as AWS describes its API throttles: `capacity` tokens, refilled at
/// `refill_per_second`; a call takes one, or is throttled.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_second: f64,
    tokens: f64,
    at_ms: u64,
    /// Calls per second (peak).
    pub rate: PerSecond,
    /// Calls refused for want of a token (each is retried later by its caller).
    pub throttled: u64,
}

impl TokenBucket {
    pub fn new(capacity: f64, refill_per_second: f64) -> Self {
        Self {
            capacity,
            refill_per_second,
            tokens: capacity,
            at_ms: 0,
            rate: PerSecond::default(),
            throttled: 0,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms > self.at_ms {
            let added = (now_ms - self.at_ms) as f64 / 1_000.0 * self.refill_per_second;
            self.tokens = (self.tokens + added).min(self.capacity);
            self.at_ms = now_ms;
        }
    }

    /// Takes a token at `now_ms`: `Ok`, or `Err(ms)` until the next token (the call is counted
    /// as throttled).
    pub fn take(&mut self, now_ms: u64) -> Result<(), u64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.rate.hit(now_ms);
            Ok(())
        } else {
            self.throttled += 1;
            let missing = 1.0 - self.tokens;
            Err(((missing / self.refill_per_second) * 1_000.0)
                .ceil()
                .max(1.0) as u64)
        }
    }

    /// Takes a token, waiting for one if needed: the time the call goes through.
    pub fn take_waiting(&mut self, now_ms: u64) -> u64 {
        let mut at = now_ms.max(self.at_ms);
        loop {
            match self.take(at) {
                Ok(()) => return at,
                Err(wait) => at += wait,
            }
        }
    }
}

/// A rate limit per calendar second (S3's per-prefix request rates, Scheduler's invocations):
/// calls over `limit` in a second are throttled and go through in a later second. Calls may be
/// made out of time order (an invocation's requests are laid out when it starts), so every
/// second keeps its own count.
#[derive(Debug, Clone)]
pub struct RateLimit {
    limit: u64,
    counts: HashMap<u64, u64>,
    /// The most calls that went through in one second.
    pub peak: u64,
    /// Calls pushed to a later second.
    pub throttled: u64,
}

impl RateLimit {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            counts: HashMap::new(),
            peak: 0,
            throttled: 0,
        }
    }

    /// The time a call made at `now_ms` goes through: later than asked when its second is full
    /// (the first moment of the next second with room; S3's SlowDown retried, Scheduler's
    /// delivery delayed).
    pub fn admit(&mut self, now_ms: u64) -> u64 {
        let mut second = now_ms / 1_000;
        loop {
            let count = self.counts.entry(second).or_insert(0);
            if *count < self.limit {
                *count += 1;
                self.peak = self.peak.max(*count);
                if second == now_ms / 1_000 {
                    return now_ms;
                }
                self.throttled += 1;
                return second * 1_000;
            }
            second += 1;
        }
    }
}

/// A vendor's limit of `limit` requests in any sliding second for one account: what it accepts,
/// what it refuses with 429, and the most requests it saw in one second.
#[derive(Debug, Clone, Default)]
pub struct SlidingSecond {
    accepted: VecDeque<u64>,
    seen: VecDeque<u64>,
    /// The most requests (accepted or refused) within any one-second window.
    pub worst_second: u64,
    /// Requests refused with 429.
    pub refused: u64,
}

impl SlidingSecond {
    /// A request at `now_ms` (times in order): accepted (`true`) or refused with 429.
    pub fn request(&mut self, now_ms: u64, limit: Option<u64>) -> bool {
        let from = now_ms.saturating_sub(999);
        while self.seen.front().is_some_and(|t| *t < from) {
            self.seen.pop_front();
        }
        while self.accepted.front().is_some_and(|t| *t < from) {
            self.accepted.pop_front();
        }
        self.seen.push_back(now_ms);
        self.worst_second = self.worst_second.max(self.seen.len() as u64);
        match limit {
            Some(limit) if self.accepted.len() as u64 >= limit => {
                self.refused += 1;
                false
            }
            _ => {
                self.accepted.push_back(now_ms);
                true
            }
        }
    }
}

/// A client-side limiter spacing requests evenly (the `governor` quota of
/// `runbridge_vendors::rate`: one request per `spacing_ms`, no burst).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spacing {
    next_ms: u64,
}

impl Spacing {
    /// When a request wanted at `now_ms` may go.
    pub fn next(&mut self, now_ms: u64, spacing_ms: u64) -> u64 {
        let at = now_ms.max(self.next_ms);
        self.next_ms = at + spacing_ms;
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_bursts_to_its_capacity_then_refills() {
        let mut b = TokenBucket::new(3.0, 1.0);
        for _ in 0..3 {
            assert!(b.take(0).is_ok());
        }
        assert_eq!(b.take(0), Err(1_000));
        assert_eq!(b.take_waiting(0), 1_000);
        assert_eq!(b.throttled, 2);
        assert_eq!(b.rate.peak, 3);
    }

    #[test]
    fn a_sliding_second_refuses_the_eleventh_request() {
        let mut s = SlidingSecond::default();
        for i in 0..10 {
            assert!(s.request(i * 50, Some(10)));
        }
        assert!(!s.request(600, Some(10)));
        assert!(s.request(1_000, Some(10)), "the first left the window");
        assert_eq!((s.refused, s.worst_second), (1, 11));
    }

    #[test]
    fn a_rate_limit_pushes_the_overflow_to_the_next_second() {
        let mut r = RateLimit::new(2);
        assert_eq!(r.admit(10), 10);
        assert_eq!(r.admit(20), 20);
        assert_eq!(r.admit(30), 1_000);
        assert_eq!(r.admit(1_500), 1_500);
        assert_eq!((r.throttled, r.peak), (1, 2));
        assert_eq!(
            r.admit(500),
            2_000,
            "a call laid out of order still finds full seconds"
        );
    }
}
