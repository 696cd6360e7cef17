//! Serves the vendor simulators for the throughput benchmark, in their own process so the
//! download baselines (`curl`) and runbridge's collect pay the same server cost.
//!
//! Usage: `sim-serve --bytes N --info FILE [--prebuild PATH]`. Every AMC run it creates has one
//! result file of about N bytes; FILE receives a [`SimInfo`] (JSON) once the server listens. Runs
//! until killed. With `--prebuild`, the result file is generated once into PATH before serving and
//! every download is read from it (the page cache), so a download measures transport, not CSV
//! generation; PATH is removed on exit.

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
    let prebuilt = std::env::args()
        .any(|a| a == "--prebuild")
        .then(|| arg("--prebuild").map(std::path::PathBuf::from))
        .transpose()?;
    if let Some(path) = &prebuilt {
        let (inner, path2) = (sim.sim.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            inner.prebuild(sim_server::BASELINE_SEED, rows, &path2)
        })
        .await?
        .context("prebuilding the result file")?;
    }
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
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    sim.stop().await;
    if let Some(path) = prebuilt {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
