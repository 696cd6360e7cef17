//! Simulated Lambda: each function's execution environments (cold starts, reuse, idle ones
//! reclaimed), its reserved concurrency, the account's concurrency limit and the scaling rate
//! of new environments per function; each environment keeps its own vendor tokens and
//! per-process rate limiters, as a real one does.

use std::collections::{HashMap, VecDeque};

use crate::day::quotas::Spacing;

/// The three functions of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Trigger,
    Poll,
    Collect,
}

/// One execution environment.
#[derive(Debug, Default)]
pub struct Env {
    last_used_ms: u64,
    /// Vendor tokens held, by (vendor index, account): when each expires.
    pub tokens: HashMap<(usize, usize), u64>,
    /// The process-wide limiter of each Amperity tenant in this environment.
    pub limiters: HashMap<usize, Spacing>,
}

/// Lambda's limits for one stack's account and region.
#[derive(Debug, Clone, Copy)]
pub struct LambdaLimits {
    /// Concurrent executions per account and region (default 1,000).
    pub account_concurrency: u64,
    /// New environments per function per 10 s (1,000).
    pub scaling_per_10s: u64,
    /// Reserved concurrency of poll and collect (`PollMaxConcurrency`, `CollectMaxConcurrency`;
    /// `None`: the template's default 0, no reservation).
    pub poll_reserved: Option<u64>,
    pub collect_reserved: Option<u64>,
    /// An environment idle this long is reclaimed.
    pub idle_reclaim_ms: u64,
    /// Cold start (init) time.
    pub cold_start_ms: u64,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<Env>,
    busy: u64,
    created: VecDeque<u64>,
    reserved: Option<u64>,
}

/// Figures of one function.
#[derive(Debug, Clone, Copy, Default)]
pub struct FunctionFigures {
    pub invocations: u64,
    pub cold_starts: u64,
    pub throttles: u64,
    pub peak_concurrency: u64,
    /// The most new environments within any 10 s.
    pub peak_scaling: u64,
}

/// The account's Lambda.
#[derive(Debug)]
pub struct Lambda {
    limits: LambdaLimits,
    pools: [Pool; 3],
    busy: u64,
    /// Peak concurrent executions of the account.
    pub peak_concurrency: u64,
    /// Per function: trigger, poll, collect.
    pub figures: [FunctionFigures; 3],
}

fn index(f: Function) -> usize {
    match f {
        Function::Trigger => 0,
        Function::Poll => 1,
        Function::Collect => 2,
    }
}

impl Lambda {
    pub fn new(limits: LambdaLimits) -> Self {
        let mut pools: [Pool; 3] = Default::default();
        pools[1].reserved = limits.poll_reserved;
        pools[2].reserved = limits.collect_reserved;
        Self {
            limits,
            pools,
            busy: 0,
            peak_concurrency: 0,
            figures: [FunctionFigures::default(); 3],
        }
    }

    /// An environment for an invocation at `now_ms` and when it starts running (after a cold
    /// start), or `None`: throttled (`TooManyRequestsException`).
    pub fn acquire(&mut self, f: Function, now_ms: u64) -> Option<(Env, u64)> {
        let i = index(f);
        let limits = self.limits;
        // Reserved concurrency is carved out of the account's; unreserved functions share the rest.
        let reserved_total: u64 = self.pools.iter().filter_map(|p| p.reserved).sum();
        let unreserved_busy: u64 = self
            .pools
            .iter()
            .filter(|p| p.reserved.is_none())
            .map(|p| p.busy)
            .sum();
        let figures = &mut self.figures[i];
        let pool = &mut self.pools[i];
        let throttled = match pool.reserved {
            Some(reserved) => pool.busy >= reserved,
            None => unreserved_busy >= limits.account_concurrency.saturating_sub(reserved_total),
        };
        if throttled {
            figures.throttles += 1;
            return None;
        }
        while pool.created.front().is_some_and(|t| *t + 10_000 <= now_ms) {
            pool.created.pop_front();
        }
        let (env, start) = loop {
            match pool.idle.pop() {
                Some(env) if env.last_used_ms + limits.idle_reclaim_ms < now_ms => continue,
                Some(env) => break (env, now_ms),
                None => {
                    if pool.created.len() as u64 >= limits.scaling_per_10s {
                        figures.throttles += 1;
                        return None;
                    }
                    pool.created.push_back(now_ms);
                    figures.peak_scaling = figures.peak_scaling.max(pool.created.len() as u64);
                    figures.cold_starts += 1;
                    break (Env::default(), now_ms + limits.cold_start_ms);
                }
            }
        };
        pool.busy += 1;
        self.busy += 1;
        figures.invocations += 1;
        figures.peak_concurrency = figures.peak_concurrency.max(pool.busy);
        self.peak_concurrency = self.peak_concurrency.max(self.busy);
        Some((env, start))
    }

    /// Gives an environment back at `now_ms`, idle and reusable.
    pub fn release(&mut self, f: Function, mut env: Env, now_ms: u64) {
        let pool = &mut self.pools[index(f)];
        pool.busy -= 1;
        self.busy -= 1;
        env.last_used_ms = now_ms;
        pool.idle.push(env);
    }
}
