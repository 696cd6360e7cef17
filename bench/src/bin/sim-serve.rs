//! Serves the vendor simulators for the throughput benchmark, in their own process so the
//! download baselines (`curl`) and runbridge's collect pay the same server cost.
//!
//! Usage: `sim-serve --bytes N --info FILE`. Every AMC run it creates has one result file of
//! about N bytes; FILE receives a [`SimInfo`] (JSON) once the server listens. Runs until killed.

use anyhow::Context;
use runbridge_bench::sim_server::{self, SimInfo};
use runbridge_sim::SimHandle;

fn arg(name: &str) -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .with_context(|| format!("missing {name} VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bytes: u64 = arg("--bytes")?.parse().context("--bytes")?;
    let info_path = std::path::PathBuf::from(arg("--info")?);
    let (rows, file_bytes) = sim_server::rows_and_size(bytes);
    let sim = SimHandle::start(sim_server::config(rows)).await?;
    let info = SimInfo {
        base_url: sim.base_url(),
        settings: sim.client_settings(),
        download_url: sim_server::download_url(&sim.sim, rows),
        file_bytes,
    };
    // Write then rename, so a reader never sees half a file.
    let tmp = info_path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&info)?)?;
    std::fs::rename(&tmp, &info_path)?;
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
