//! The commands that run on this machine: `demo` and `run` (the handlers on local ports, against
//! the embedded simulators or the real vendors), `sim` (the simulators alone), `validate` and
//! `schema`. Each returns an [`Output`](crate::output::Output) or a
//! [`CliError`](crate::exit::CliError), as the operator commands do.

pub mod demo;
pub mod run;
pub mod schema;
pub mod sim;
pub mod validate;

use std::path::Path;

use crate::exit::CliError;

/// `--metrics FILE`: the run metrics (CloudWatch Embedded Metric Format) are appended to `path`.
pub fn write_metrics_to(path: &Path) -> Result<(), CliError> {
    let sink = runbridge_handlers::metrics::file_sink(path)
        .map_err(|e| CliError::invalid(format!("--metrics {}: {e}", path.display())))?;
    runbridge_handlers::metrics::set_sink(Some(sink));
    Ok(())
}
