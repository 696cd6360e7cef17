//! `list`: the state machine's executions (newest first) and the ledger keys that have none, each
//! as a [`RunView`] built from its ledger entry, its execution and (for a finished one) its
//! manifest.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use futures::{StreamExt, TryStreamExt};
use runbridge_core::{IdempotencyKey, VendorKind};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::exit::CliError;
use crate::ops::client::Execution;
use crate::ops::view::{attribution_word, handle_of, RunView, Sources};
use crate::ops::Ops;
use crate::output::Output;

/// `list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// Executions still running.
    Running,
    /// Executions that succeeded.
    Succeeded,
    /// Executions that failed or timed out.
    Failed,
    /// Executions stopped (cancelled).
    Aborted,
}

/// Ledger entries and manifests read at once while building the views.
const READS_IN_FLIGHT: usize = 16;

/// Most ledger keys `list` reads (newest day first, from the ledger's day index).
const MAX_LEDGER_KEYS: usize = 10_000;

/// Parses a duration such as `90s`, `30m`, `24h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, CliError> {
    let bad = || {
        CliError::invalid(format!(
            "--since `{text}`: must be a number and a unit s, m, h, d or w (e.g. 24h)"
        ))
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// One row of `list --json`: the run's view, and when its execution started and stopped (a
/// ledger key without an execution: when its entry was last written).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListRow {
    /// The run.
    #[serde(flatten)]
    pub view: RunView,
    /// When the execution started (or the ledger entry was last written).
    pub started_at: String,
    /// When the execution stopped.
    pub stopped_at: Option<String>,
}

/// One run found: its name (an execution's, or a ledger key), the key the name is, the
/// execution, and when it started (for the order).
struct Found {
    name: String,
    key: Option<IdempotencyKey>,
    execution: Option<Execution>,
    started: i64,
    started_at: String,
}

/// `list`: executions (newest first) plus ledger entries that have none.
pub async fn list(
    ops: &Ops,
    state: Option<StateFilter>,
    vendor: Option<VendorKind>,
    since: Option<Duration>,
) -> Result<Output, CliError> {
    let since_epoch =
        since.map(|d| OffsetDateTime::now_utc().unix_timestamp() - d.as_secs() as i64);
    let statuses: Vec<Option<ExecutionStatus>> = match state {
        None => vec![None],
        Some(StateFilter::Running) => vec![Some(ExecutionStatus::Running)],
        Some(StateFilter::Succeeded) => vec![Some(ExecutionStatus::Succeeded)],
        Some(StateFilter::Failed) => vec![
            Some(ExecutionStatus::Failed),
            Some(ExecutionStatus::TimedOut),
        ],
        Some(StateFilter::Aborted) => vec![Some(ExecutionStatus::Aborted)],
    };
    // An execution is named after its key (a collect recovery `<key>=<n>`); a ledger entry after
    // its key. A name that is no key (not runbridge's) has no vendor.
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for status in statuses {
        for e in ops.list_executions(status, since_epoch).await? {
            seen.insert(e.name.clone());
            found.push(Found {
                name: e.name.clone(),
                key: IdempotencyKey::from_execution_name(&e.name).ok(),
                started: e.started.unix_timestamp(),
                started_at: e.started_at.clone(),
                execution: Some(e),
            });
        }
    }
    if state.is_none() {
        for (name, modified) in ops.ledger_keys(since_epoch, MAX_LEDGER_KEYS).await? {
            if seen.contains(&name) || since_epoch.is_some_and(|s| modified < s) {
                continue;
            }
            found.push(Found {
                key: IdempotencyKey::parse(&name).ok(),
                name,
                execution: None,
                started: modified,
                started_at: OffsetDateTime::from_unix_timestamp(modified)
                    .ok()
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_else(|| modified.to_string()),
            });
        }
    }
    // The vendor is in the key: filter before reading anything more.
    found.retain(|f| vendor.is_none() || f.key.as_ref().map(IdempotencyKey::vendor) == vendor);
    found.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| a.name.cmp(&b.name)));
    let rows: Vec<ListRow> = futures::stream::iter(found)
        .map(|f| async move {
            Ok::<_, CliError>(ListRow {
                view: view_of(ops, &f).await?,
                stopped_at: f.execution.as_ref().and_then(|e| e.stopped_at.clone()),
                started_at: f.started_at,
            })
        })
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(Output::ok(
        serde_json::to_value(&rows).expect("rows serialise"),
        text(&rows),
    ))
}

/// The view of one run found: its ledger entry, and the manifest of a finished execution (a
/// running one has none yet; the execution history is `status`'s to read).
async fn view_of(ops: &Ops, found: &Found) -> Result<RunView, CliError> {
    let entry = match &found.key {
        Some(key) => ops.ledger_entry(key).await?,
        None => None,
    };
    let finished = found
        .execution
        .as_ref()
        .is_some_and(|e| e.status != "RUNNING");
    let manifest = match (
        handle_of(entry.as_ref(), None).filter(|_| finished),
        &found.key,
    ) {
        (Some(handle), _) => ops.manifest(&handle).await?,
        // A key the day index names whose claim was released (the vendor refused its submit)
        // and that started no execution: its announced ending, as `status` shows it.
        (None, Some(key)) if entry.is_none() && found.execution.is_none() => {
            ops.announced_ending(key).await?
        }
        (None, _) => None,
    };
    Ok(RunView::build(Sources {
        name: &found.name,
        key: found.key.as_ref(),
        entry: entry.as_ref(),
        execution: found.execution.as_ref(),
        latest: None,
        manifest: manifest.as_ref(),
    }))
}

/// The table for people: one line per run, then why each that did not succeed failed and who
/// caused it.
fn text(rows: &[ListRow]) -> String {
    let mut text = format!(
        "{:<10} {:<9} {:<12} {:<26} KEY\n",
        "STATE", "VENDOR", "PROFILE", "STARTED"
    );
    for ListRow {
        view: r,
        started_at,
        ..
    } in rows
    {
        text.push_str(&format!(
            "{:<10} {:<9} {:<12} {:<26} {}\n",
            r.state,
            r.vendor.map_or("?", VendorKind::as_str),
            r.profile.as_deref().unwrap_or("?"),
            started_at,
            r.key
        ));
    }
    for r in rows
        .iter()
        .map(|row| &row.view)
        .filter(|r| r.did_not_succeed())
    {
        if let Some(reason) = &r.reason {
            let by = r
                .attribution
                .map(|a| format!(" [{}]", attribution_word(a)))
                .unwrap_or_default();
            text.push_str(&format!("{}: {reason}{by}\n", r.key));
        }
    }
    text.push_str(&format!("{} run(s)", rows.len()));
    text
}
