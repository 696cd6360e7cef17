//! One collect, in its own process so its peak memory is its own: triggers an AMC run on a
//! running `sim-serve`, polls it until done, then times `Collector::collect` into the chosen
//! sink. Prints one JSON line: collected bytes, seconds spent in collect, peak RSS (VmHWM).
//!
//! Usage: `collect-once --info FILE --sink dir:PATH|s3:BUCKET --id REQUEST_ID`.
//! The S3 sink reads the standard AWS environment (`AWS_ENDPOINT_URL`, credentials, region).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use runbridge_bench::peak_rss_bytes;
use runbridge_bench::sim_server::{run_until_done, SimInfo};
use runbridge_core::ResultLayout;
use runbridge_runner::collect::{CollectInput, Collector, Outcome};
use runbridge_runner::local::{DirLedger, DirSink, LogEvents};
use runbridge_runner::{ResultSink, SystemClock};

fn arg(name: &str) -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .with_context(|| format!("missing {name} VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let info = SimInfo::read(arg("--info")?.as_ref())?;
    let request_id = arg("--id")?;
    let sink_arg = arg("--sink")?;
    let sink: Arc<dyn ResultSink> = match sink_arg.split_once(':') {
        Some(("dir", path)) => Arc::new(DirSink::new(path)),
        Some(("s3", bucket)) => {
            let env = runbridge_aws::AwsEnv::from_env().await;
            Arc::new(runbridge_aws::S3Sink::new(env.s3_client(), bucket))
        }
        _ => bail!("--sink must be dir:PATH or s3:BUCKET, not {sink_arg:?}"),
    };
    let vendors = info.vendors();
    let ledger_dir = tempfile::tempdir()?;
    let handle = run_until_done(
        &vendors,
        Arc::new(DirLedger::new(ledger_dir.path())),
        &request_id,
    )
    .await?;

    let collector = Collector {
        vendors,
        sink,
        events: Arc::new(LogEvents::default()),
        layout: ResultLayout::default(),
        clock: Arc::new(SystemClock),
    };
    let started = Instant::now();
    let out = collector
        .collect(CollectInput {
            handle,
            outcome: Outcome::Succeeded,
            reason: None,
            attribution: None,
        })
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    if out.bytes != info.file_bytes {
        bail!(
            "collected {} bytes, the run produced {}",
            out.bytes,
            info.file_bytes
        );
    }
    println!(
        "{}",
        serde_json::json!({"bytes": out.bytes, "seconds": seconds, "peak_rss_bytes": peak_rss_bytes()?})
    );
    Ok(())
}
