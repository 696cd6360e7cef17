//! Where a run's results land, in S3 and in a local directory alike.
//!
//! `{root}/{output_prefix}/vendor={vendor}/date={YYYY-MM-DD}/run={key}/part-00000.csv` and
//! `manifest.json` beside the parts; parts are written straight to their keys but made visible
//! (S3: their multipart uploads completed) only when all are complete, and the manifest is
//! written last.

use time::macros::format_description;

use crate::request::check_prefix;
use crate::reserved::KEY_SEGMENTS;
use crate::{RunHandle, ValidationError, MANIFEST_NAME};

/// The configured root of all results (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultLayout {
    root: String,
}

/// Name of the marker that the run's outcome event was published.
pub const ANNOUNCED_NAME: &str = "announced.json";
/// Name of the marker that a collect failed on runbridge's side.
pub const COLLECT_FAILED_NAME: &str = "collect-failed.json";

/// The concrete keys of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultPaths {
    /// Directory-like prefix of the published run, ending in `/`.
    pub run_prefix: String,
    /// Directory-like prefix of the run's bookkeeping markers (`_runs/run=<key>/`), ending in
    /// `/`: found from the key alone, and outside the published run.
    pub marker_prefix: String,
}

impl ResultLayout {
    /// A layout under `root` (`""` for the bucket or directory root). The root is operator
    /// configuration but is held to the same rules as a request's `output_prefix`.
    pub fn new(root: &str) -> Result<Self, ValidationError> {
        let root = root.trim_matches('/');
        if !root.is_empty() {
            check_prefix("results_prefix", root)?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The keys for `handle`. Every component is validated: the key was built from validated ids,
    /// the prefix by [`check_prefix`], the date by formatting.
    pub fn paths(&self, handle: &RunHandle) -> ResultPaths {
        let date = handle
            .submitted_at
            .format(format_description!("[year]-[month]-[day]"))
            .expect("date formatting cannot fail");
        let mut base = String::new();
        for part in [
            Some(self.root.as_str()),
            handle.request.output_prefix.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        {
            base.push_str(part);
            base.push('/');
        }
        let key = handle.key.as_str();
        let [vendor, day, run] = KEY_SEGMENTS;
        ResultPaths {
            run_prefix: format!(
                "{base}{vendor}={}/{day}={date}/{run}={key}/",
                handle.vendor()
            ),
            marker_prefix: self.marker_prefix(&handle.key),
        }
    }

    /// The marker prefix of `key` (see [`ResultPaths::marker_prefix`]).
    pub fn marker_prefix(&self, key: &crate::IdempotencyKey) -> String {
        format!("{}_runs/run={key}/", root_slash(&self.root))
    }

    /// Where collect records that it failed on runbridge's side for `key` (see
    /// [`ResultPaths::collect_failed`]).
    pub fn collect_failed(&self, key: &crate::IdempotencyKey) -> String {
        format!("{}{COLLECT_FAILED_NAME}", self.marker_prefix(key))
    }
}

fn root_slash(root: &str) -> String {
    if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    }
}

impl ResultPaths {
    /// File name of the `index`-th part.
    pub fn part_name(index: usize) -> String {
        format!("part-{index:05}.csv")
    }
    /// Published key of the `index`-th part.
    pub fn part(&self, index: usize) -> String {
        format!("{}{}", self.run_prefix, Self::part_name(index))
    }
    /// Key of the manifest.
    pub fn manifest(&self) -> String {
        format!("{}{MANIFEST_NAME}", self.run_prefix)
    }
    /// Key of the marker written once the outcome event was accepted by the event bus.
    pub fn announced(&self) -> String {
        format!("{}{ANNOUNCED_NAME}", self.marker_prefix)
    }
    /// Key of the marker a collect that failed on runbridge's side leaves (no manifest then).
    pub fn collect_failed(&self) -> String {
        format!("{}{COLLECT_FAILED_NAME}", self.marker_prefix)
    }
}
