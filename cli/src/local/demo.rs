//! `demo`: one example per vendor and profile, all at once, on the embedded simulators.

use std::sync::Arc;

use crate::exit::CliError;
use crate::output::Output;
use crate::report::{runs_output, Progress};
use crate::sandbox::{Observer, RunSummary, Sandbox, SandboxOptions};

/// `demo`: runs [`crate::examples::DEMO`] end to end; exit code 1 when a run did not succeed.
pub async fn demo(
    options: &SandboxOptions,
    plain: bool,
    as_json: bool,
) -> Result<Output, CliError> {
    let progress: Arc<dyn Observer> = Arc::new(Progress::new(plain).on_stderr(as_json));
    let sandbox = Sandbox::simulated(options, progress)
        .await
        .map_err(|e| CliError::from_anyhow(&e))?;
    let runs = futures::future::join_all(
        crate::examples::DEMO
            .iter()
            .map(|(_, request)| sandbox.run(request.as_bytes())),
    )
    .await;
    let runs: Vec<RunSummary> = runs
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .map_err(|e| CliError::from_anyhow(&e))?;
    Ok(runs_output(&runs, &options.out))
}
