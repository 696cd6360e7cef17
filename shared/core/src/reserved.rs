//! The names the result layout keeps for itself: its `name=` key segments and its private `_…`
//! folders. A request's `output_prefix` (and the configured results root) may use none of them.
//!
//! The rule sits below both the layout, which writes these names, and the request, whose prefix
//! validation refuses them, so neither has to import the other to share it.

/// The `name=` segments a run's key is made of, in order: `vendor=…/date=…/run=…`.
pub const KEY_SEGMENTS: [&str; 3] = ["vendor", "date", "run"];
/// Where versions before direct uploads staged parts, under the root: still reserved, so no
/// request's prefix can write into what an older deployment may have left there.
pub const STAGING_DIR: &str = "_staging";
/// Where the idempotency ledger keeps its claims, under the root.
pub const LEDGER_DIR: &str = "_ledger";
/// The layout's own folders; every one starts with `_`, so a prefix segment starting with `_`
/// is refused as a whole (a folder the layout adds later is covered without a list to update).
pub const PRIVATE_DIRS: [&str; 2] = [STAGING_DIR, LEDGER_DIR];

/// Whether `segment` is one the layout writes itself: a `vendor=`/`date=`/`run=` segment or a
/// private `_…` folder. A request's prefix with one could write into another run's folder.
pub fn reserved_segment(segment: &str) -> Option<String> {
    if segment.starts_with('_') {
        return Some(format!(
            "must not have a segment starting with `_` (`{segment}`): the layout keeps {} there",
            PRIVATE_DIRS.join(", ")
        ));
    }
    let name = segment.split_once('=').map(|(name, _)| name)?;
    KEY_SEGMENTS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(name))
        .then(|| {
            format!(
                "must not have a `{name}=` segment: `vendor=`, `date=` and `run=` are the layout's own (reserved)"
            )
        })
}
