//! The simulated day's engine: one virtual clock (ms) and a priority queue of events. A request
//! goes to SQS (through Scheduler in the cron shape), the trigger's event source takes batches
//! within `TriggerMaxConcurrency`, the trigger claims, submits and starts the execution through
//! the StartExecution bucket (SDK retries, then redelivery, then the dead-letter queue); the
//! execution passes the AMC queue (a slot per running execution, handed on in arrival order),
//! polls as `PollPlan` says through Lambda (throttles retried as the definition's Retrier
//! says) and the StateTransition bucket, then collects. Vendors count requests per account.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use runbridge_handlers::poll::history_floor;

use crate::day::lambda::{Env, Function, Lambda};
use crate::day::machine::MachineFacts;
use crate::day::quotas::{RateLimit, SlidingSecond, Spacing, TokenBucket};
use crate::day::run::{Cause, Outcome, Run};
use crate::day::workload::{Intake, RunSpec, Vendor};
use crate::day::{Budget, Params};
use crate::seeded::Seeded;

/// Something that happens at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request lands in the run-request queue.
    Deliver(usize),
    /// The event source looks for messages to hand the trigger.
    SourcePoll,
    /// A trigger invocation ends: its environment is free, its failed messages go back.
    TriggerEnd(u64),
    /// Step Functions invokes a Lambda task of a run (attempt number).
    Invoke(usize, Task, u64),
    /// A poll or collect invocation ends.
    TaskEnd(u64),
}

/// The Lambda tasks of the definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    Enqueue,
    Admit,
    Poll,
    Collect,
}

/// An AMC instance's slots: holders and the line, in arrival order.
#[derive(Debug, Default)]
struct Scope {
    holders: u64,
    line: VecDeque<usize>,
    active_at_vendor: u64,
}

/// Everything the day measured besides the runs themselves.
#[derive(Debug)]
pub struct Quotas {
    pub start_execution: TokenBucket,
    pub transitions: TokenBucket,
    pub scheduler: RateLimit,
    pub s3_ledger_put: RateLimit,
    pub s3_ledger_get: RateLimit,
    pub s3_results_put: RateLimit,
    pub s3_results_get: RateLimit,
    pub lambda: Lambda,
    /// Peak trigger invocations at once (the event source's `MaximumConcurrency`).
    pub peak_trigger_batches: u64,
    /// Vendor request windows, by (vendor, account).
    pub vendor: HashMap<(Vendor, usize), SlidingSecond>,
    /// AMC 429s: submits while the instance's slots' holders were all submitted.
    pub amc_refused: u64,
    /// Messages sent to the dead-letter queue, and redeliveries.
    pub dead_letters: u64,
    pub redeliveries: u64,
}

/// The simulation of one day.
pub struct Engine<'a> {
    params: &'a Params,
    facts: &'a MachineFacts,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    pub runs: Vec<Run>,
    pub q: Quotas,
    sqs: VecDeque<usize>,
    triggers_running: u64,
    /// Environments busy in an invocation, by invocation id.
    busy: HashMap<u64, (Function, Env, Vec<usize>)>,
    scopes: HashMap<usize, Scope>,
    shared: HashMap<usize, Spacing>,
    rng: Seeded,
}

impl<'a> Engine<'a> {
    pub fn new(params: &'a Params, facts: &'a MachineFacts, specs: Vec<RunSpec>) -> Self {
        let runs: Vec<Run> = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Run::new(spec, params.waits, params.seed ^ i as u64))
            .collect();
        let p = params;
        let mut engine = Self {
            params,
            facts,
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            q: Quotas {
                start_execution: TokenBucket::new(p.start_execution.0, p.start_execution.1),
                transitions: TokenBucket::new(p.state_transition.0, p.state_transition.1),
                scheduler: RateLimit::new(p.scheduler_per_second),
                s3_ledger_put: RateLimit::new(p.s3_put_per_second),
                s3_ledger_get: RateLimit::new(p.s3_get_per_second),
                s3_results_put: RateLimit::new(p.s3_put_per_second),
                s3_results_get: RateLimit::new(p.s3_get_per_second),
                lambda: Lambda::new(p.lambda),
                peak_trigger_batches: 0,
                vendor: HashMap::new(),
                amc_refused: 0,
                dead_letters: 0,
                redeliveries: 0,
            },
            runs,
            sqs: VecDeque::new(),
            triggers_running: 0,
            busy: HashMap::new(),
            scopes: HashMap::new(),
            shared: HashMap::new(),
            rng: Seeded::of(&[0xE9, params.seed]),
        };
        let mut order: Vec<usize> = (0..engine.runs.len()).collect();
        order.sort_by_key(|i| engine.runs[*i].spec.sent_ms);
        for i in order {
            let sent = engine.runs[i].spec.sent_ms;
            // Scheduler invokes its targets at up to its rate; the burst's overflow goes later.
            let at = if params.intake == Intake::SchedulerCron
                && sent == crate::day::workload::NIGHT_MS
            {
                engine.q.scheduler.admit(sent)
            } else {
                sent
            };
            engine.at(at, Event::Deliver(i));
        }
        engine
    }

    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.events
            .push(Reverse((time.max(self.now), self.seq, event)));
    }

    /// Runs the day to its end (every event handled).
    pub fn run(mut self) -> Self {
        while let Some(Reverse((time, _, event))) = self.events.pop() {
            self.now = time;
            match event {
                Event::Deliver(i) => {
                    self.sqs.push_back(i);
                    self.at(time, Event::SourcePoll);
                }
                Event::SourcePoll => self.event_source(),
                Event::TriggerEnd(id) => self.trigger_end(id),
                Event::Invoke(i, task, attempt) => self.invoke(i, task, attempt),
                Event::TaskEnd(id) => {
                    let (f, env, _) = self.busy.remove(&id).expect("a busy environment");
                    self.q.lambda.release(f, env, self.now);
                }
            }
        }
        self
    }

    fn s3(&mut self, at: u64, ledger: bool, gets: u64, puts: u64, run: usize) -> u64 {
        let mut t = at;
        for _ in 0..gets {
            let limit = if ledger {
                &mut self.q.s3_ledger_get
            } else {
                &mut self.q.s3_results_get
            };
            t = t.max(limit.admit(at));
        }
        for _ in 0..puts {
            let limit = if ledger {
                &mut self.q.s3_ledger_put
            } else {
                &mut self.q.s3_results_put
            };
            t = t.max(limit.admit(at));
        }
        let r = &mut self.runs[run];
        r.s3_gets += gets;
        r.s3_puts += puts;
        t
    }

    /// One vendor API request at `at` from `env`: the token it needs first, the limiter, 429s
    /// (answered by waiting `Retry-After`, 1 s, and asking again). Returns when it answered.
    fn vendor_request(&mut self, env: &mut Env, vendor: Vendor, account: usize, at: u64) -> u64 {
        let p = self.params;
        let v = vendor as usize;
        let mut t = at;
        let needs_token = env
            .tokens
            .get(&(v, account))
            .is_none_or(|expiry| *expiry <= t);
        // Only Amperity's token endpoint is the tenant's API (and counts toward its limit).
        let calls = if needs_token && vendor == Vendor::Amperity {
            2
        } else {
            1
        };
        if needs_token {
            if vendor != Vendor::Amperity {
                t += p.vendor_latency_ms;
            }
            env.tokens.insert((v, account), t + p.token_lifetime_ms);
        }
        for _ in 0..calls {
            loop {
                if vendor == Vendor::Amperity {
                    let spacing = p.amperity_spacing_ms();
                    t = match p.amperity_budget {
                        Budget::PerProcess => {
                            env.limiters.entry(account).or_default().next(t, spacing)
                        }
                        Budget::Shared => self.shared.entry(account).or_default().next(t, spacing),
                    };
                }
                let limit = p.vendor_limit(vendor);
                let accepted = self
                    .q
                    .vendor
                    .entry((vendor, account))
                    .or_default()
                    .request(t, limit);
                t += p.vendor_latency_ms;
                if accepted {
                    break;
                }
                t += 1_000;
            }
        }
        t
    }

    fn event_source(&mut self) {
        let p = self.params;
        while !self.sqs.is_empty() && self.triggers_running < p.trigger_max_concurrency {
            let Some((mut env, start)) = self.q.lambda.acquire(Function::Trigger, self.now) else {
                // The event source backs off and tries again.
                let later = self.now + 1_000;
                self.at(later, Event::SourcePoll);
                return;
            };
            let batch: Vec<usize> = (0..p.batch_size)
                .map_while(|_| self.sqs.pop_front())
                .collect();
            self.triggers_running += 1;
            self.q.peak_trigger_batches = self.q.peak_trigger_batches.max(self.triggers_running);
            let mut lanes = vec![start; p.trigger_lanes];
            let mut failed = Vec::new();
            for &i in &batch {
                let lane = (0..lanes.len()).min_by_key(|l| lanes[*l]).expect("a lane");
                let mut t = self.s3(lanes[lane], true, 1, 1, i);
                let (vendor, account) = (self.runs[i].spec.vendor, self.runs[i].spec.account);
                let queued = vendor == Vendor::Amc && p.amc_queue;
                if !queued && self.runs[i].submitted_ms.is_none() {
                    t = self.vendor_request(&mut env, vendor, account, t);
                    self.submit(i, t);
                    t = self.s3(t, true, 0, 1, i);
                }
                t += p.trigger_ms;
                let mut started = None;
                for attempt in 0..p.sdk_attempts {
                    match self.q.start_execution.take(t) {
                        Ok(()) => {
                            started = Some(t);
                            break;
                        }
                        Err(_) => {
                            // The SDK's backoff: half the base, plus a random half.
                            let base = p.sdk_base_ms << attempt;
                            t += base / 2 + (self.rng.unit() * (base / 2) as f64) as u64;
                        }
                    }
                }
                lanes[lane] = t;
                match started {
                    Some(t) => self.start_execution(i, t),
                    None => failed.push(i),
                }
            }
            let end = *lanes.iter().max().expect("a lane");
            let share = (end - self.now) as f64 / 1_000.0 * p.memory_gb(Function::Trigger)
                / batch.len() as f64;
            for &i in &batch {
                self.runs[i].gb_seconds += share;
                self.runs[i].triggers += 1.0 / batch.len() as f64;
            }
            self.seq += 1;
            let id = self.seq;
            self.busy.insert(id, (Function::Trigger, env, failed));
            self.at(end, Event::TriggerEnd(id));
        }
    }

    fn trigger_end(&mut self, id: u64) {
        let (f, env, failed) = self.busy.remove(&id).expect("a trigger invocation");
        self.q.lambda.release(f, env, self.now);
        self.triggers_running -= 1;
        for i in failed {
            let run = &mut self.runs[i];
            run.receives += 1;
            if run.receives >= self.params.max_receives {
                run.outcome = Outcome::DeadLettered;
                self.q.dead_letters += 1;
            } else {
                self.q.redeliveries += 1;
                let later = self.now + self.params.visibility_timeout_ms;
                self.at(later, Event::Deliver(i));
            }
        }
        self.at(self.now, Event::SourcePoll);
    }

    fn submit(&mut self, i: usize, t: u64) {
        let run = &mut self.runs[i];
        run.submits += 1;
        if run.submitted_ms.is_none() {
            run.submitted_ms = Some(t);
            run.vendor_end_ms = t + run.spec.duration * 1_000;
        }
    }

    fn start_execution(&mut self, i: usize, t: u64) {
        let queued = self.runs[i].spec.vendor == Vendor::Amc && self.params.amc_queue;
        self.runs[i].started_ms = Some(t);
        let n = self.facts.base_transitions
            + if queued {
                self.facts.queue_transitions
            } else {
                0
            };
        let mut at = t;
        for _ in 0..n {
            at = self.q.transitions.take_waiting(at);
        }
        if queued {
            self.at(at, Event::Invoke(i, Task::Enqueue, 0));
        } else {
            let first = self.runs[i].schedule.first * 1_000;
            self.at(at + first, Event::Invoke(i, Task::Poll, 0));
        }
    }

    fn fail(&mut self, i: usize, cause: Cause, at: u64) {
        // RecordFailure writes the manifest and cancels a vendor run still going.
        let run = &mut self.runs[i];
        run.outcome = Outcome::Failed(cause);
        run.manifest = true;
        run.finished_ms = Some(at);
        if run.submitted_ms.is_some() && at < run.vendor_end_ms {
            run.cancelled = true;
        }
        self.release_slot(i, at);
    }

    fn release_slot(&mut self, i: usize, at: u64) {
        let run = &self.runs[i];
        if run.spec.vendor != Vendor::Amc || !self.params.amc_queue || !run.holds_slot {
            return;
        }
        let account = run.spec.account;
        self.runs[i].holds_slot = false;
        let scope = self.scopes.entry(account).or_default();
        scope.holders -= 1;
        scope.active_at_vendor = scope.active_at_vendor.saturating_sub(1);
        if let Some(next) = scope.line.pop_front() {
            scope.holders += 1;
            self.runs[next].holds_slot = true;
            // SendTaskSuccess wakes WaitForSlot; the execution goes on to Admit.
            self.at(at, Event::Invoke(next, Task::Admit, 0));
        }
    }

    fn invoke(&mut self, i: usize, task: Task, attempt: u64) {
        let function = if task == Task::Collect {
            Function::Collect
        } else {
            Function::Poll
        };
        let Some((mut env, start)) = self.q.lambda.acquire(function, self.now) else {
            self.runs[i].retries += 1;
            let unit = self.rng.unit();
            match self.facts.throttle_delay_ms(attempt, unit) {
                Some(delay) => self.at(self.now + delay, Event::Invoke(i, task, attempt + 1)),
                None => self.fail(i, Cause::LambdaThrottle, self.now),
            }
            return;
        };
        let p = self.params;
        let (vendor, account) = (self.runs[i].spec.vendor, self.runs[i].spec.account);
        let mut t = start;
        let mut next: Option<(u64, Task)> = None;
        let mut released = false;
        match task {
            Task::Enqueue => {
                t = self.s3(t, true, 3, 2, i) + p.poll_ms;
                self.runs[i].queued_ms = Some(self.now);
                let scope = self.scopes.entry(account).or_default();
                if scope.holders < p.amc_limit && scope.line.is_empty() {
                    scope.holders += 1;
                    self.runs[i].holds_slot = true;
                    next = Some((t, Task::Admit));
                } else {
                    scope.line.push_back(i);
                }
            }
            Task::Admit => {
                // The ledger entry and the scope record (its slot given just now: read only),
                // the in-flight record and the submitted run (BENCHMARKS §5's admit step).
                t = self.s3(t, true, 3, 2, i);
                let scope = self.scopes.entry(account).or_default();
                if scope.active_at_vendor >= p.amc_limit {
                    self.q.amc_refused += 1;
                }
                scope.active_at_vendor += 1;
                t = self.vendor_request(&mut env, vendor, account, t);
                self.submit(i, t);
                t += p.poll_ms;
                let first = self.runs[i].schedule.first * 1_000;
                next = Some((t + first, Task::Poll));
            }
            Task::Poll => {
                for _ in 0..self.facts.poll_transitions {
                    t = self.q.transitions.take_waiting(t);
                }
                // The ledger entry (and on the first poll the workflow's history); a holder's
                // handle carries its lease's end, so its polls do not read the scope's record.
                let gets = if self.runs[i].polls == 0 { 2 } else { 1 };
                t = self.s3(t, true, gets, 0, i);
                t = self.vendor_request(&mut env, vendor, account, t);
                let run = &mut self.runs[i];
                let submitted = run.submitted_ms.expect("a polled run was submitted");
                let age = (t - submitted) / 1_000;
                run.polls += 1;
                run.poll_ages.0 = run.poll_ages.1;
                run.poll_ages.1 = age;
                t += p.poll_ms;
                // The deadline counts from the submit, or for a queued run from when it
                // joined the queue (`RunHandle::queued`).
                let deadline_ms = run.queued_ms.unwrap_or(submitted)
                    + 1_000
                        * p.deadline_seconds
                            .unwrap_or_else(|| vendor.kind().default_deadline_seconds());
                let polled = t - p.poll_ms;
                if polled >= run.vendor_end_ms {
                    run.detected_ms = Some(polled);
                    next = Some((t, Task::Collect));
                    // The final poll gives the slot back (one change of the scope's record).
                    if run.holds_slot {
                        t = self.s3(t, true, 1, 1, i);
                        released = true;
                    }
                } else if polled >= deadline_ms {
                    // The poll cancels the vendor run and records the ending.
                    t = self.vendor_request(&mut env, vendor, account, t);
                    t = self.s3(t, false, 1, 3, i);
                    self.fail(i, Cause::Deadline, t);
                } else {
                    let remaining = (deadline_ms - polled) / 1_000;
                    let polls = u32::try_from(run.polls).unwrap_or(u32::MAX);
                    let wait = run
                        .schedule
                        .next_wait(age)
                        .max(history_floor(polls, remaining))
                        .min(remaining.max(1));
                    next = Some((t + wait * 1_000, Task::Poll));
                }
            }
            Task::Collect => {
                t = self.s3(t, true, 1, 0, i);
                // Manifest check, history read; manifest, announcement, history write, and for
                // a vendor with result files (AMC, CARTO) one file's multipart upload (create,
                // part, complete).
                let files = u64::from(matches!(
                    self.runs[i].spec.vendor,
                    Vendor::Amc | Vendor::Carto
                ));
                t = self.s3(t, false, 2, 3 + 3 * files, i) + p.collect_ms;
                let run = &mut self.runs[i];
                run.manifest = true;
                run.outcome = Outcome::Succeeded;
                run.finished_ms = Some(t);
            }
        }
        let busy_s = (t - self.now) as f64 / 1_000.0;
        let run = &mut self.runs[i];
        run.gb_seconds += busy_s * p.memory_gb(function);
        match function {
            Function::Collect => run.collects += 1.0,
            _ => run.poll_calls += 1.0,
        }
        let history = self.facts.history_events(
            run.polls,
            run.retries,
            run.spec.vendor == Vendor::Amc && p.amc_queue,
        );
        if history >= p.max_history_events {
            self.fail(i, Cause::History, t);
            next = None;
        }
        if released {
            self.release_slot(i, t);
        }
        if let Some((at, task)) = next {
            self.at(at, Event::Invoke(i, task, 0));
        }
        self.seq += 1;
        let id = self.seq;
        self.busy.insert(id, (function, env, Vec::new()));
        self.at(t, Event::TaskEnd(id));
    }
}
