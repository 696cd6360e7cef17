//! `run`: one request through the handlers on this machine, on the embedded simulators
//! (`--sandbox`) or against the real vendor APIs; Ctrl-C stops it as a cancel would.

use std::path::Path;
use std::sync::Arc;

use futures::FutureExt;

use crate::exit::CliError;
use crate::output::Output;
use crate::report::{runs_output, Progress};
use crate::sandbox::{Observer, Sandbox, SandboxOptions};

/// `run REQUEST`: exit code 2 for an invalid request (before anything starts, or as the trigger
/// finds it: an unknown profile), 1 for a run that did not succeed or that the vendor refused.
pub async fn run(
    request: &Path,
    sandbox: bool,
    options: &SandboxOptions,
    as_json: bool,
) -> Result<Output, CliError> {
    let label = request.display().to_string();
    let body = crate::input::read_request(request)?;
    // The request's own rules, before a simulator starts. Its profile is the trigger's to check:
    // the sandbox has its own profiles, a real run those of RUNBRIDGE_PROFILES.
    runbridge_core::RunRequest::from_json(&body)
        .map_err(|e| CliError::invalid_request(&e).of(&label))?;
    let progress: Arc<dyn Observer> = Arc::new(Progress::new(false).on_stderr(as_json));
    let runner = if sandbox {
        Sandbox::simulated(options, progress).await
    } else {
        Sandbox::real(options, progress)
    }
    .map_err(|e| CliError::from_anyhow(&e))?;
    // Ctrl-C stops the execution as `runbridge cancel` does deployed: the vendor run is
    // cancelled and the run ends with a CANCELLED manifest, instead of running on, billed. The
    // handler is installed (the future polled once) before the run starts.
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let early = (&mut ctrl_c).now_or_never();
    let interrupted = async move {
        let heard = match early {
            Some(result) => result,
            None => ctrl_c.await,
        };
        if heard.is_err() {
            std::future::pending::<()>().await;
        }
        crate::output::err_line(
            "interrupted: stopping the execution and cancelling the vendor run",
        );
    };
    let summary = runner
        .run_until(&body, interrupted)
        .await
        .map_err(|e| CliError::from_anyhow(&e))?;
    Ok(runs_output(&[summary], &options.out))
}
