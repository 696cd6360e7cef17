//! `status KEY`: the run's [`RunView`], from its ledger entry, its execution (and the latest
//! handle in the execution's history) and its manifest; exit code 1 for a run that did not
//! succeed.

use crate::exit::CliError;
use crate::ops::view::{handle_of, RunView, Sources};
use crate::ops::{run_key, Ops};
use crate::output::Output;

/// `status KEY`.
pub async fn status(ops: &Ops, key: &str) -> Result<Output, CliError> {
    let run_key = run_key(key)?;
    let entry = ops.ledger_entry(&run_key).await?;
    let execution = ops.describe_execution(key).await?;
    let manifest = if entry.is_none() && execution.is_none() {
        // A submit the vendor refused released the key and started nothing: its announced
        // FAILED ending is what is left of it.
        let ending = ops.announced_ending(&run_key).await?;
        if ending.is_none() {
            return Err(CliError::not_found(format!(
                "no run with key {key}: no ledger entry, no execution and no announced ending"
            )));
        }
        ending
    } else {
        None
    };
    let latest = match &execution {
        Some(e) => ops.latest_step(e).await,
        None => None,
    };
    let manifest = match (manifest, handle_of(entry.as_ref(), latest.as_ref())) {
        (Some(ending), _) => Some(ending),
        (None, Some(handle)) => ops.manifest(&handle).await?,
        (None, None) => None,
    };
    let view = RunView::build(Sources {
        name: key,
        key: Some(&run_key),
        entry: entry.as_ref(),
        execution: execution.as_ref(),
        latest: latest.as_ref(),
        manifest: manifest.as_ref(),
    });
    let failure = view.did_not_succeed().then(|| {
        let reason = view
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        CliError {
            attribution: view.attribution,
            ..CliError::run_failed(format!("run {key} {}{reason}", view.state))
        }
    });
    let json = serde_json::to_value(&view).expect("views serialise");
    Ok(Output::ok(json, view.text()).failing(failure))
}
