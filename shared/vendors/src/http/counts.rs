//! Counts of vendor throttling and submit retries, per vendor and credential profile, for the
//! `VendorThrottles` and `SubmitRetries` metrics the handlers emit.
//!
//! The counts belong to the work that made the calls, not to the process: [`counted`] runs one
//! invocation's work in a task-local scope and returns what its calls saw with its output, so
//! concurrent invocations in one process never take each other's counts and there is nothing to
//! flush. Calls made outside a scope are counted nowhere.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

use runbridge_core::VendorKind;

/// Throttling and retries of one vendor profile during one [`counted`] scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCounts {
    /// The vendor.
    pub vendor: VendorKind,
    /// The credential profile (its name: `default` or a named profile).
    pub profile: String,
    /// 429 answers received.
    pub throttles: u64,
    /// Submits (requests that create a run) sent again after a failure that proved the vendor
    /// did not act on them.
    pub submit_retries: u64,
}

type Tally = RefCell<BTreeMap<(VendorKind, String), CallCounts>>;

tokio::task_local! {
    /// See [`counted`].
    static COUNTS: Tally;
}

/// Runs `work`, counting the throttles and submit retries of every vendor call made inside it
/// (in this task: work spawned onto another task is not counted), and returns its output with
/// the counts of each (vendor, profile) that saw any. A scope inside another counts its calls
/// for itself alone.
pub async fn counted<F: Future>(work: F) -> (F::Output, Vec<CallCounts>) {
    let mut scope = std::pin::pin!(COUNTS.scope(Tally::default(), work));
    let output = scope.as_mut().await;
    let counts = scope
        .as_mut()
        .take_value()
        .map(RefCell::into_inner)
        .unwrap_or_default()
        .into_values()
        .filter(|c| c.throttles + c.submit_retries > 0)
        .collect();
    (output, counts)
}

/// Adds to the current scope's counts of `vendor`'s `profile` (nothing outside a scope).
pub(super) fn add(vendor: VendorKind, profile: &str, count: impl FnOnce(&mut CallCounts)) {
    let _ = COUNTS.try_with(|tally| {
        let mut tally = tally.borrow_mut();
        let entry = tally
            .entry((vendor, profile.to_owned()))
            .or_insert_with(|| CallCounts {
                vendor,
                profile: profile.to_owned(),
                throttles: 0,
                submit_retries: 0,
            });
        count(entry);
    });
}
