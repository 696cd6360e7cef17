//! `sim`: the vendor simulators on a local port until Ctrl-C, and the settings that point
//! runbridge at them.

use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::exit::CliError;
use crate::output::Output;

/// `sim`: serves the simulators on `127.0.0.1:port`; prints where they listen and the
/// `RUNBRIDGE_*` settings at once (the report), then serves until Ctrl-C.
pub async fn sim(port: u16, speed: f64, as_json: bool) -> Result<Output, CliError> {
    let config = runbridge_sim::SimConfig {
        speed,
        ..Default::default()
    };
    let sim = runbridge_sim::SimHandle::start_on(config, ([127, 0, 0, 1], port).into())
        .await
        .map_err(|e| CliError::other(format!("starting the simulators on port {port}: {e:#}")))?;
    let mut text = format!(
        "vendor simulators listening on {}\npoint runbridge at them with:\n",
        sim.base_url()
    );
    let mut settings = Map::new();
    for (k, v) in sim.client_settings() {
        let var = format!("RUNBRIDGE_{}", k.replace('.', "_").to_ascii_uppercase());
        text.push_str(&format!("  export {var}={v}\n"));
        settings.insert(var, Value::String(v));
    }
    let announcement = json!({"base_url": sim.base_url(), "settings": settings});
    // Polled once before the announcement, so Ctrl-C is handled from the moment anyone reads it.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let early = (&mut interrupted).now_or_never();
    // Printed now: the command runs until interrupted.
    Output::ok(announcement, text).finish(as_json)?;
    match early {
        Some(result) => result,
        None => interrupted.await,
    }
    .map_err(|e| CliError::other(format!("waiting for Ctrl-C: {e}")))?;
    sim.stop().await;
    Ok(Output::printed())
}
