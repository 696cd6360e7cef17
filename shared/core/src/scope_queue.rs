//! [`ScopeQueue`]: one concurrency scope's record — who holds its slots and who waits for one, in
//! arrival order — as one document that the slot store changes with one conditional write.
//!
//! Every change is a method here, pure and deterministic, so the store adapters (S3, a
//! directory) only read, compare and write, and the rules are tested without them:
//! - a run joins the waiting line at its arrival time (the trigger's claim), whenever it asks,
//!   so a run that asks again (a lost wake-up, a crashed holder's lease running out) keeps its
//!   place, and newcomers never pass older waiters;
//! - whenever the record changes, expired holders are dropped and free slots go to the oldest
//!   waiters ([`ScopeQueue::admit`]): a freed slot is handed on at once, not when a waiter
//!   happens to look; the caller wakes each admitted waiter (its task token) after the write;
//! - a holder is a run key with a slot number and a lease; a holder whose lease ran out (its
//!   execution died without giving the slot back) is dropped on the next change.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{FormatVersion, IdempotencyKey, SlotHold, SCOPE_FORMAT};

/// One scope's slots and waiting line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeQueue {
    /// The record's format ([`crate::format`]); absent in records of earlier versions.
    #[serde(default)]
    pub format_version: FormatVersion<SCOPE_FORMAT>,
    /// Runs at once the scope allows, as the last run to ask was configured: a run giving its
    /// slot back admits up to this many.
    #[serde(default)]
    pub limit: u32,
    /// The runs holding a slot.
    #[serde(default)]
    pub holders: Vec<Holder>,
    /// The runs waiting for a slot, oldest arrival first.
    #[serde(default)]
    pub waiting: Vec<Waiter>,
}

/// A run holding a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The run.
    pub key: IdempotencyKey,
    /// The slot's number, `0..limit`.
    pub slot: u32,
    /// When it was given the slot.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// When the slot is free again unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The task token of the newest park this run asked from (the one its wake-up goes to):
    /// a wake-up that finds a different, older token gone must not take the slot away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

/// A run waiting for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    /// The run.
    pub key: IdempotencyKey,
    /// When it arrived (its claim): its place in the line.
    #[serde(with = "time::serde::rfc3339")]
    pub arrived: OffsetDateTime,
    /// The task token its execution waits on, to wake it. `None` for a waiter that asks again
    /// by itself (an execution started by an earlier definition, which polls for its slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

/// A waiter given a slot by a change: the caller wakes it after the change is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The run.
    pub key: IdempotencyKey,
    /// Its slot.
    pub slot: u32,
    /// Its task token, if it is parked on one.
    pub task_token: Option<String>,
}

impl ScopeQueue {
    /// The slot `key` holds, if any.
    pub fn held_by(&self, key: &IdempotencyKey) -> Option<&Holder> {
        self.holders.iter().find(|h| &h.key == key)
    }

    /// `key`'s place in the line (0: next), if it waits.
    pub fn place_of(&self, key: &IdempotencyKey) -> Option<usize> {
        self.waiting.iter().position(|w| &w.key == key)
    }

    /// `key` asks for a slot of a scope that allows `limit`, having arrived at `arrived`, parked
    /// on `task_token` (if any). A holder stays a holder (its lease extended to `until`); a
    /// waiter keeps its place (a new token replaces its old one: the newest park is the one that
    /// waits); anyone else joins at its arrival time. Then free slots go to the oldest waiters
    /// ([`Self::admit`]); what that admitted is returned.
    pub fn ask(
        &mut self,
        key: &IdempotencyKey,
        arrived: OffsetDateTime,
        task_token: Option<String>,
        limit: u32,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Vec<Admitted> {
        self.limit = limit;
        if let Some(holder) = self.holders.iter_mut().find(|h| &h.key == key) {
            holder.until = holder.until.max(until);
            if task_token.is_some() {
                holder.task_token = task_token;
            }
        } else if let Some(waiter) = self.waiting.iter_mut().find(|w| &w.key == key) {
            if task_token.is_some() {
                waiter.task_token = task_token;
            }
        } else {
            let at = self
                .waiting
                .iter()
                .position(|w| (w.arrived, &w.key) > (arrived, key))
                .unwrap_or(self.waiting.len());
            self.waiting.insert(
                at,
                Waiter {
                    key: key.clone(),
                    arrived,
                    task_token,
                },
            );
        }
        self.admit(limit, now, until)
    }

    /// `key` leaves: it gives back its slot, or its place in the line (a stopped waiter). Then
    /// free slots go to the oldest waiters (up to the scope's stored limit); what that admitted
    /// is returned.
    pub fn leave(
        &mut self,
        key: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Vec<Admitted> {
        self.holders.retain(|h| &h.key != key);
        self.waiting.retain(|w| &w.key != key);
        self.admit(self.limit, now, until)
    }

    /// The wake-up sent to `key` on `task_token` found no execution waiting on it. When that is
    /// still the newest token `key` asked from, its execution stopped waiting (stopped, ended):
    /// it leaves, as [`Self::leave`]. A run that has asked again since (its park timed out and
    /// it parked anew, or its own ask woke it) keeps its slot or place: the old token's park
    /// timing out is no reason to take away what its new one was given.
    pub fn wake_failed(
        &mut self,
        key: &IdempotencyKey,
        task_token: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Vec<Admitted> {
        let newest = self
            .held_by(key)
            .map(|h| h.task_token.as_deref())
            .or_else(|| {
                self.waiting
                    .iter()
                    .find(|w| &w.key == key)
                    .map(|w| w.task_token.as_deref())
            });
        match newest {
            Some(Some(token)) if token != task_token => Vec::new(),
            _ => self.leave(key, now, until),
        }
    }

    /// Keeps `key`'s lease running past `needed`: when it ends sooner, it is extended to
    /// `extend_to` (so most renewals change nothing and write nothing). When the lease ends now,
    /// if `key` holds a slot.
    pub fn renew(
        &mut self,
        key: &IdempotencyKey,
        needed: OffsetDateTime,
        extend_to: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let holder = self.holders.iter_mut().find(|h| &h.key == key)?;
        if holder.until < needed {
            holder.until = extend_to.max(needed);
        }
        Some(holder.until)
    }

    /// Drops holders whose lease ran out by `now`, then gives each free slot (lowest number
    /// first) to the oldest waiter, leased until `until`. Returns the waiters admitted, oldest
    /// first.
    pub fn admit(
        &mut self,
        limit: u32,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Vec<Admitted> {
        self.holders.retain(|h| h.until > now);
        let mut admitted = Vec::new();
        while (self.holders.len() as u64) < u64::from(limit) && !self.waiting.is_empty() {
            let waiter = self.waiting.remove(0);
            let slot = (0..limit)
                .find(|n| self.holders.iter().all(|h| h.slot != *n))
                .expect("fewer holders than slots leaves a free number");
            self.holders.push(Holder {
                key: waiter.key.clone(),
                slot,
                since: now,
                until,
                task_token: waiter.task_token.clone(),
            });
            admitted.push(Admitted {
                key: waiter.key,
                slot,
                task_token: waiter.task_token,
            });
        }
        admitted
    }

    /// The slot `key` holds in `scope`, as a run's ledger entry records it.
    pub fn hold_of(&self, scope: &str, key: &IdempotencyKey) -> Option<SlotHold> {
        self.held_by(key).map(|h| SlotHold {
            scope: scope.to_owned(),
            slot: h.slot,
        })
    }
}

/// How long a waiter given a slot keeps it before its execution takes it up (its `Admit`
/// renews the lease): longer than the longest park, so a waiter whose wake-up was lost finds
/// its slot still its own when its park times out and it asks again.
pub const ADMISSION_LEASE: Duration = Duration::minutes(90);

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> IdempotencyKey {
        IdempotencyKey::from_string(format!("amc-r{n:02}"))
    }

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + s).unwrap()
    }

    fn lease(s: i64) -> OffsetDateTime {
        at(s) + ADMISSION_LEASE
    }

    #[test]
    fn slots_go_to_the_oldest_waiters_whatever_order_they_ask_in() {
        let mut q = ScopeQueue::default();
        // Five runs that arrived at 0..5 s ask in reverse order; the limit is 2.
        let mut admitted = Vec::new();
        for n in (0..5).rev() {
            admitted.extend(q.ask(
                &key(n),
                at(n as i64),
                Some(format!("t{n}")),
                2,
                at(10),
                lease(10),
            ));
        }
        // The first two asks (r04, r03) took the free slots before the older ones arrived.
        assert_eq!(
            admitted.iter().map(|a| a.key.clone()).collect::<Vec<_>>(),
            vec![key(4), key(3)]
        );
        assert_eq!(
            q.waiting.iter().map(|w| w.key.clone()).collect::<Vec<_>>(),
            vec![key(0), key(1), key(2)],
            "the line is in arrival order"
        );
        let next = q.leave(&key(4), at(20), lease(20));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].key, key(0));
        assert_eq!(next[0].task_token.as_deref(), Some("t0"));
        assert_eq!(next[0].slot, q.held_by(&key(0)).unwrap().slot);
    }

    #[test]
    fn asking_again_keeps_the_place_and_the_slot() {
        let mut q = ScopeQueue::default();
        q.ask(&key(1), at(1), Some("a".into()), 1, at(1), lease(1));
        q.ask(&key(2), at(2), Some("b".into()), 1, at(2), lease(2));
        q.ask(&key(3), at(3), Some("c".into()), 1, at(3), lease(3));
        // r02 parks again (a new token): same place, newest token.
        assert!(q
            .ask(&key(2), at(2), Some("b2".into()), 1, at(50), lease(50))
            .is_empty());
        assert_eq!(q.place_of(&key(2)), Some(0));
        assert_eq!(q.waiting[0].task_token.as_deref(), Some("b2"));
        // The holder asks again (its wake-up was lost): it still holds its slot.
        assert!(q
            .ask(&key(1), at(1), Some("a2".into()), 1, at(60), lease(60))
            .is_empty());
        assert_eq!(q.held_by(&key(1)).unwrap().slot, 0);
    }

    #[test]
    fn an_expired_holder_is_dropped_and_its_slot_goes_to_the_oldest_waiter() {
        let mut q = ScopeQueue::default();
        q.ask(&key(1), at(0), None, 1, at(0), at(100));
        q.ask(&key(3), at(3), Some("c".into()), 1, at(3), lease(3));
        q.ask(&key(2), at(2), Some("b".into()), 1, at(4), lease(4));
        assert!(q.admit(1, at(99), lease(99)).is_empty(), "lease still runs");
        let next = q.admit(1, at(100), lease(100));
        assert_eq!(
            next.iter().map(|a| &a.key).collect::<Vec<_>>(),
            vec![&key(2)]
        );
        assert!(q.held_by(&key(1)).is_none());
        // The crashed holder asking again joins the line at its own arrival: first.
        q.ask(&key(1), at(0), Some("a".into()), 1, at(101), lease(101));
        assert_eq!(q.place_of(&key(1)), Some(0));
    }

    #[test]
    fn a_waiter_that_leaves_gives_up_its_place_and_releases_admit_different_waiters() {
        let mut q = ScopeQueue::default();
        for n in 0..4 {
            q.ask(
                &key(n),
                at(n as i64),
                Some(format!("t{n}")),
                2,
                at(5),
                lease(5),
            );
        }
        assert!(
            q.leave(&key(2), at(6), lease(6)).is_empty(),
            "a waiter left"
        );
        let a = q.leave(&key(0), at(7), lease(7));
        let b = q.leave(&key(1), at(8), lease(8));
        assert_eq!(a[0].key, key(3));
        assert!(b.is_empty(), "nobody left to admit, and never r03 twice");
        let slots: Vec<u32> = q.holders.iter().map(|h| h.slot).collect();
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn never_more_holders_than_the_limit_and_each_slot_once() {
        let mut q = ScopeQueue::default();
        for n in 0..30u32 {
            q.ask(
                &key(n),
                at(n as i64),
                None,
                10,
                at(n as i64),
                lease(n as i64),
            );
            if n % 3 == 0 {
                q.leave(&key(n / 2), at(n as i64), lease(n as i64));
            }
            assert!(q.holders.len() <= 10);
            let mut slots: Vec<u32> = q.holders.iter().map(|h| h.slot).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), q.holders.len(), "no slot twice");
            assert!(slots.iter().all(|s| *s < 10));
        }
    }

    #[test]
    fn a_wake_up_lost_to_an_old_park_keeps_what_the_new_park_was_given() {
        let mut q = ScopeQueue::default();
        q.ask(&key(0), at(0), Some("t0".into()), 1, at(0), lease(0));
        q.ask(&key(1), at(1), Some("old".into()), 1, at(1), lease(1));
        // r00 ends and r01 is admitted on its old token; that park has just timed out and r01
        // parked again on a new one, whose ask found it holding the slot.
        let admitted = q.leave(&key(0), at(2), lease(2));
        assert_eq!(admitted[0].task_token.as_deref(), Some("old"));
        q.ask(&key(1), at(1), Some("new".into()), 1, at(3), lease(3));
        q.ask(&key(2), at(4), Some("t2".into()), 1, at(4), lease(4));
        assert!(
            q.wake_failed(&key(1), "old", at(5), lease(5)).is_empty(),
            "the old token's failed wake-up gives nothing away"
        );
        assert_eq!(q.held_by(&key(1)).map(|h| h.slot), Some(0));
        // Its newest park gone too: the execution stopped, so the slot goes on.
        let next = q.wake_failed(&key(1), "new", at(6), lease(6));
        assert_eq!(next[0].key, key(2));
        assert!(q.held_by(&key(1)).is_none());
        // A waiter parked again keeps its place the same way.
        q.ask(&key(3), at(7), Some("a".into()), 1, at(7), lease(7));
        q.ask(&key(3), at(7), Some("b".into()), 1, at(8), lease(8));
        q.wake_failed(&key(3), "a", at(9), lease(9));
        assert_eq!(q.place_of(&key(3)), Some(0));
    }
}
