//! Reading the scope records' stored changes: admissions, slot handovers, admission cost and
//! admissions out of arrival order.

use std::collections::{BTreeMap, HashMap};

use runbridge_bench::storage::ScopeWrite;
use runbridge_core::OffsetDateTime;

use crate::deployment::Run;
use crate::report::{mean, seconds};

/// A waiter given a slot by a stored change of its scope's record.
#[derive(Debug, Clone)]
pub struct Admission {
    pub scope: String,
    pub key: String,
    pub at: OffsetDateTime,
    /// The run whose step made the change (itself: admitted when it asked, never waited).
    pub by: Option<String>,
    /// The runs still in line after the change.
    pub still_waiting: Vec<String>,
    /// The change's place among the writes.
    pub write: usize,
}

pub fn admissions(writes: &[ScopeWrite]) -> Vec<Admission> {
    let mut out = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        for h in &w.after.holders {
            if w.before.holders.iter().all(|b| b.key != h.key) {
                out.push(Admission {
                    scope: w.scope.clone(),
                    key: h.key.to_string(),
                    at: h.since,
                    by: w.by.clone(),
                    still_waiting: w.after.waiting.iter().map(|x| x.key.to_string()).collect(),
                    write: i,
                });
            }
        }
    }
    out
}

/// A slot freed while runs waited in its scope's line, and when the next run had it.
#[derive(Debug, Clone)]
pub struct Handover {
    /// The change that freed it also gave it to the oldest waiter.
    pub same_write: bool,
    /// Seconds from the change that freed the slot to the change that gave it on.
    pub admitted_after: f64,
    /// Seconds from the change that freed the slot to the next holder's submission at AMC
    /// (its wake-up by `SendTaskSuccess`, the Admit step, the submit).
    pub submitted_after: Option<f64>,
}

/// Every slot freed while others waited (a holder left, or its lease was dropped), from the
/// scope records' stored changes, with the runs' submissions.
pub fn handovers(writes: &[ScopeWrite], runs: &[Run]) -> Vec<Handover> {
    let submitted: HashMap<&str, OffsetDateTime> = runs
        .iter()
        .filter_map(|r| Some((r.key.as_str(), r.entry.run()?.submitted_at)))
        .collect();
    let mut out = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let Some(freed_at) = w.at else { continue };
        if w.before.waiting.is_empty() {
            continue;
        }
        let gone = w
            .before
            .holders
            .iter()
            .filter(|h| w.after.holders.iter().all(|a| a.key != h.key));
        for holder in gone {
            // The next run to hold that slot number (the lowest free one goes first).
            let next = writes[i..]
                .iter()
                .enumerate()
                .filter(|(_, x)| x.scope == w.scope)
                .find_map(|(j, x)| {
                    let heir = x.after.holders.iter().find(|h| {
                        h.slot == holder.slot && x.before.holders.iter().all(|b| b.key != h.key)
                    })?;
                    Some((j == 0, x.at?, heir.key.to_string()))
                });
            let Some((same_write, admitted_at, heir)) = next else {
                continue;
            };
            out.push(Handover {
                same_write,
                admitted_after: seconds(freed_at, admitted_at),
                submitted_after: submitted
                    .get(heir.as_str())
                    .map(|at| seconds(freed_at, *at)),
            });
        }
    }
    out
}

/// "n of m in the same change; freed → next holder submitted at AMC: mean, p95, max".
pub fn describe_handovers(handovers: &[Handover], speed: f64) -> String {
    if handovers.is_empty() {
        return "no slot was freed while others waited".to_owned();
    }
    let same = handovers.iter().filter(|h| h.same_write).count();
    let admitted = handovers
        .iter()
        .map(|h| h.admitted_after)
        .fold(0.0, f64::max);
    let mut submitted: Vec<f64> = handovers.iter().filter_map(|h| h.submitted_after).collect();
    submitted.sort_by(f64::total_cmp);
    let p95 = submitted
        .get((submitted.len() * 95).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);
    let max = submitted.last().copied().unwrap_or(f64::NAN);
    format!(
        "{same} of {} freed slots given to the oldest waiter by the change that freed them \
         (at most {admitted:.1} s later otherwise); freed → the next holder submitted at AMC \
         (its wake-up, Admit, the submit): mean {:.1} s, p95 {p95:.1} s, max {max:.1} s \
         simulated, i.e. {:.0} / {:.0} / {:.0} ms of real processing at {speed:.0}×",
        handovers.len(),
        mean(submitted.iter().copied()),
        1_000.0 * mean(submitted.iter().copied()) / speed,
        1_000.0 * p95 / speed,
        1_000.0 * max / speed,
    )
}

/// The scope record's requests of a run's enqueue and admit steps (what admitting it costs).
pub fn admission_requests(run: &Run) -> u64 {
    let [enqueue, admit, _, _] = run.queue_steps;
    enqueue.slots_gets + enqueue.slots_puts + admit.slots_gets + admit.slots_puts
}

/// "mean (max) scope-record requests per admission, deepest line n".
pub fn describe_admission_cost(runs: &[Run], writes: &[ScopeWrite]) -> String {
    let per_run: Vec<u64> = runs.iter().map(admission_requests).collect();
    let refused = runs
        .iter()
        .map(|r| r.queue_steps[0].slots_refused + r.queue_steps[1].slots_refused);
    let deepest = writes
        .iter()
        .map(|w| w.after.waiting.len())
        .max()
        .unwrap_or(0);
    format!(
        "{:.1} mean, {} max scope-record requests (GET + conditional PUT) per admission, of \
         which {:.1} conditional PUTs refused because another change of the record came first \
         (each refusal costs a GET and a PUT more), with up to {deepest} runs in line",
        mean(per_run.iter().map(|n| *n as f64)),
        per_run.iter().max().copied().unwrap_or(0),
        mean(refused.map(|n| n as f64)),
    )
}

/// Admissions out of arrival order among `runs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Order {
    /// Admissions: each run's first.
    pub admitted: usize,
    /// Runs admitted while an earlier arrival was in their scope's line and stayed there.
    pub in_line: usize,
    /// Runs admitted after an earlier arrival had arrived and before that one was admitted.
    pub by_times: usize,
    /// Of `by_times`, those where no earlier arrival passed over had reached the line yet
    /// (its execution had not yet asked for a slot when the later one took a free one).
    pub not_yet_in_line: usize,
    /// The largest arrival gap between a run and an earlier arrival it passed, seconds.
    pub largest_gap: f64,
}

/// Each run's arrival (its ledger entry's `queue().since`), by key.
pub fn arrivals(runs: &[Run]) -> HashMap<String, OffsetDateTime> {
    runs.iter().map(|r| (r.key.clone(), r.arrived())).collect()
}

/// Admissions out of arrival order, from the scope records' stored changes (`writes`) and the
/// runs' arrivals; runs without an arrival are left out.
pub fn out_of_order(arrivals: &HashMap<String, OffsetDateTime>, writes: &[ScopeWrite]) -> Order {
    let admissions = admissions(writes);
    // Arrival order as the scope record orders its line: by time, then by key.
    let arrived: HashMap<&str, (OffsetDateTime, &str)> = arrivals
        .iter()
        .map(|(k, at)| (k.as_str(), (*at, k.as_str())))
        .collect();
    // When each run first appears in its scope's record (in line or holding).
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        let keys = w.after.waiting.iter().map(|x| &x.key);
        for key in keys.chain(w.after.holders.iter().map(|h| &h.key)) {
            first_seen.entry(key.to_string()).or_insert(i);
        }
    }
    let mut first: BTreeMap<&str, &Admission> = BTreeMap::new();
    for a in &admissions {
        first.entry(a.key.as_str()).or_insert(a);
    }
    let mut order = Order {
        admitted: first.len(),
        ..Order::default()
    };
    for a in first.values() {
        let Some(mine) = arrived.get(a.key.as_str()) else {
            continue;
        };
        if a.still_waiting
            .iter()
            .any(|w| arrived.get(w.as_str()).is_some_and(|theirs| theirs < mine))
        {
            order.in_line += 1;
        }
        let passed: Vec<&&Admission> = first
            .values()
            .filter(|b| {
                b.scope == a.scope
                    && arrived
                        .get(b.key.as_str())
                        .is_some_and(|theirs| theirs < mine && theirs.0 <= a.at && b.at > a.at)
            })
            .collect();
        if passed.is_empty() {
            continue;
        }
        order.by_times += 1;
        if passed
            .iter()
            .all(|b| first_seen.get(&b.key).is_some_and(|seen| *seen > a.write))
        {
            order.not_yet_in_line += 1;
        }
        for b in passed {
            let gap = seconds(arrived[b.key.as_str()].0, mine.0);
            order.largest_gap = order.largest_gap.max(gap);
        }
    }
    order
}

impl Order {
    pub fn cell(&self) -> String {
        format!("{} / {}", self.in_line, self.by_times)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} of {} admissions out of order in line, {} by times{}",
            self.in_line,
            self.admitted,
            self.by_times,
            if self.by_times > 0 {
                format!(
                    " ({} of them passed only runs whose executions had not yet asked for a \
                     slot; arrivals at most {:.1} s apart)",
                    self.not_yet_in_line, self.largest_gap
                )
            } else {
                String::new()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::IdempotencyKey;
    use runbridge_core::{Holder, ScopeQueue, Waiter};

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::from_string(k.to_owned())
    }

    fn record(holders: &[(&str, i64)], waiting: &[(&str, i64)]) -> ScopeQueue {
        ScopeQueue {
            limit: 1,
            holders: holders
                .iter()
                .enumerate()
                .map(|(n, (k, since))| Holder {
                    key: key(k),
                    slot: n as u32,
                    since: at(*since),
                    until: at(*since + 5_400),
                    task_token: None,
                })
                .collect(),
            waiting: waiting
                .iter()
                .map(|(k, arrived)| Waiter {
                    key: key(k),
                    arrived: at(*arrived),
                    task_token: None,
                })
                .collect(),
            ..ScopeQueue::default()
        }
    }

    fn write(by: &str, before: ScopeQueue, after: ScopeQueue) -> ScopeWrite {
        ScopeWrite {
            scope: "amc.default.i".into(),
            by: Some(by.into()),
            before,
            after,
            at: None,
        }
    }

    #[test]
    fn admissions_out_of_arrival_order_are_counted_in_line_and_by_times() {
        let arrivals: HashMap<String, OffsetDateTime> = [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
            .into_iter()
            .map(|(k, s)| (k.to_owned(), at(s)))
            .collect();
        // b (arrived 1) takes the free slot before a (arrived 0) has asked: a race by times,
        // not in line. Then c passes a, which waits in line: out of order both ways. Then a,
        // then d, in order.
        let writes = vec![
            write("b", record(&[], &[]), record(&[("b", 1)], &[])),
            write(
                "a",
                record(&[("b", 1)], &[]),
                record(&[("b", 1)], &[("a", 0)]),
            ),
            write(
                "b",
                record(&[("b", 1)], &[("a", 0)]),
                record(&[("c", 10)], &[("a", 0)]),
            ),
            write(
                "c",
                record(&[("c", 10)], &[("a", 0)]),
                record(&[("a", 20)], &[("d", 3)]),
            ),
            write(
                "a",
                record(&[("a", 20)], &[("d", 3)]),
                record(&[("d", 30)], &[]),
            ),
        ];
        let order = out_of_order(&arrivals, &writes);
        assert_eq!(order.admitted, 4);
        assert_eq!(order.in_line, 1, "c passed a in line");
        assert_eq!(order.by_times, 2, "b and c were admitted before a");
        assert_eq!(
            order.not_yet_in_line, 1,
            "a had not asked when b took the slot"
        );
        assert_eq!(order.largest_gap, 2.0);
        let first = admissions(&writes);
        assert_eq!(
            first[0].by.as_deref(),
            Some("b"),
            "b was admitted when it asked"
        );
        assert_eq!(first[1].key, "c");
        assert_eq!(
            first[1].by.as_deref(),
            Some("b"),
            "c was woken by b's release"
        );
    }
}
