//! `run`: one request through the handlers on this machine, on the embedded simulators
//! (`--sandbox`) or against the real vendor APIs; Ctrl-C stops it as a cancel would.

use std::path::Path;
use std::sync::Arc;

use futures::FutureExt;

use crate::exit::CliError;
use crate::output::Output;
use crate::report::{runs_output, Progress};
use crate::sandbox::{Observer, Sandbox, SandboxOptions};

/// What the sandbox's simulators are told before the request runs (`run --sandbox --sim-setup
/// FILE`): the faults and run scripts their own admin routes take (`/__sim/faults`,
/// `/__sim/scripts/{vendor}`), to rehearse how a vendor's refusal or failure is reported.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSetup {
    /// Faults, in the order they are added.
    #[serde(default)]
    pub faults: Vec<runbridge_sim::FaultRule>,
    /// Run scripts per vendor (`amc`, `amperity`, `adobe`, `carto`): the next runs created.
    #[serde(default)]
    pub scripts: std::collections::BTreeMap<String, Vec<runbridge_sim::RunScript>>,
}

impl SimSetup {
    /// Reads `path`: invalid input when it cannot be read or is no setup.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let label = path.display().to_string();
        let text = std::fs::read(path)
            .map_err(|e| CliError::invalid(format!("--sim-setup {label}: cannot read: {e}")))?;
        let setup: Self = serde_json::from_slice(&text)
            .map_err(|e| CliError::invalid(format!("--sim-setup {label}: {e}")))?;
        for vendor in setup.scripts.keys() {
            vendor.parse::<runbridge_core::VendorKind>().map_err(|_| {
                CliError::invalid(format!("--sim-setup {label}: no vendor `{vendor}`"))
            })?;
        }
        Ok(setup)
    }

    fn apply(self, sim: &runbridge_sim::SimHandle) {
        for rule in self.faults {
            sim.sim.faults.inject(rule);
        }
        for (vendor, scripts) in self.scripts {
            let vendor = vendor.parse().expect("checked when read");
            for script in scripts {
                sim.sim.control.push_script(vendor, script);
            }
        }
    }
}

/// `run REQUEST`: exit code 2 for an invalid request (before anything starts, or as the trigger
/// finds it: an unknown profile), 1 for a run that did not succeed or that the vendor refused.
pub async fn run(
    request: &Path,
    sandbox: bool,
    sim_setup: Option<&Path>,
    options: &SandboxOptions,
    as_json: bool,
) -> Result<Output, CliError> {
    let label = request.display().to_string();
    let setup = match (sim_setup, sandbox) {
        (Some(path), true) => Some(SimSetup::read(path)?),
        (Some(_), false) => {
            return Err(CliError::invalid(
                "--sim-setup needs --sandbox: it sets up the embedded simulators",
            ))
        }
        (None, _) => None,
    };
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
    if let (Some(setup), Some(sim)) = (setup, runner.sim.as_ref()) {
        setup.apply(sim);
    }
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
