//! One collect, in its own process so its peak memory is its own: triggers an AMC run on a
//! running `sim-serve`, polls it until done, then times `Collector::collect` into the chosen
//! sink. Prints one JSON line: collected bytes, seconds spent in collect, peak RSS (VmHWM).
//!
//! Usage: `collect-once --info FILE --sink dir:PATH|s3:BUCKET|null: --id REQUEST_ID [--stage S]
//! [--no-sha256]` (`--no-sha256`: the deployment option `MANIFEST_SHA256=false`).
//! The S3 sink reads the standard AWS environment (`AWS_ENDPOINT_URL`, credentials, region).
//!
//! `--stage` breaks the time down (one process per stage, so each stage's peak memory is its
//! own): `cpu` prints the in-memory speed of each digest (no
//! simulator needed); `download` only streams the result file and drops it; `digest` also feeds every chunk
//! to SHA-256, MD5 and the CSV record counter on the download task (what collect did before it
//! moved them to a worker); `collect` (the default) is the whole `Collector::collect`. With
//! `--sink null:` collect writes into a sink that drops the bytes (download, digests, records,
//! no upload). The output line also has `sink_seconds`: wall time spent inside the sink's
//! `finish` and `publish` calls after the download (for S3: the last parts, then completing the
//! multipart uploads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use runbridge_adapters_local::{DirLedger, DirSink, LocalConfig, LocalDeployment};
use runbridge_bench::peak_rss_bytes;
use runbridge_bench::sim_server::{self, SimInfo};
use runbridge_handlers::collect::{CollectInput, CollectOptions, Outcome, RowCounter};
use runbridge_handlers::{HandlerError, ObjectChecksum, PartWriter, ResultSink, StagedObject};
use runbridge_vendors::{ResultsAvailability, RunRef};

fn arg(name: &str) -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .with_context(|| format!("missing {name} VALUE"))
}

/// A sink that drops every byte (the upload-free baseline of collect).
struct NullSink;

struct NullWriter;

#[async_trait]
impl PartWriter for NullWriter {
    async fn write(&mut self, _chunk: Bytes) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn finish(
        self: Box<Self>,
        _checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        Ok(Box::new(NullWriter))
    }
    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl StagedObject for NullWriter {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl ResultSink for NullSink {
    async fn create(&self, _key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(NullWriter))
    }
    async fn put(&self, _key: &str, _body: Bytes) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn get(&self, _key: &str) -> Result<Option<Bytes>, HandlerError> {
        Ok(None)
    }
}

/// Times the calls that come after the download: `finish` of each writer and `publish`.
struct TimedSink {
    inner: Arc<dyn ResultSink>,
    nanos: Arc<AtomicU64>,
}

struct TimedWriter {
    inner: Box<dyn PartWriter>,
    nanos: Arc<AtomicU64>,
}

#[async_trait]
impl PartWriter for TimedWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.inner.write(chunk).await
    }
    async fn finish(
        self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        let started = Instant::now();
        let out = self.inner.finish(checksum).await;
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(Box::new(TimedStaged {
            inner: out?,
            nanos: self.nanos,
        }))
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

#[async_trait]
impl ResultSink for TimedSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(TimedWriter {
            inner: self.inner.create(key).await?,
            nanos: self.nanos.clone(),
        }))
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        self.inner.get(key).await
    }
}

struct TimedStaged {
    inner: Box<dyn StagedObject>,
    nanos: Arc<AtomicU64>,
}

#[async_trait]
impl StagedObject for TimedStaged {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        let started = Instant::now();
        let out = self.inner.publish().await;
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

/// Streams the run's result files without a sink; with `digest`, hashes and counts inline.
async fn download_only(
    vendors: &runbridge_vendors::Vendors,
    handle: &runbridge_core::RunHandle,
    digest: bool,
) -> anyhow::Result<u64> {
    use md5::Digest as _;
    use sha2::Digest as _;
    let vendor = vendors.get(handle.vendor())?;
    let run = RunRef {
        request: &handle.request,
        vendor_run_id: handle
            .vendor_run_id
            .as_deref()
            .context("the run was not submitted")?,
    };
    let ResultsAvailability::Ready(files) = vendor.results(run).await? else {
        bail!("no result files ready");
    };
    let mut total = 0;
    for file in &files {
        let mut body = vendor.open_result(file).await?.body;
        let (mut sha, mut md5, mut rows) =
            (sha2::Sha256::new(), md5::Md5::new(), RowCounter::default());
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            total += chunk.len() as u64;
            if digest {
                sha.update(&chunk);
                md5.update(&chunk);
                rows.feed(&chunk);
            }
        }
        if digest {
            std::hint::black_box((sha.finalize(), md5.finalize(), rows.records()));
        }
    }
    Ok(total)
}

/// In-memory speed of each digest over `bytes` of CSV-like data (no I/O): MB/s per digest.
fn cpu_speeds(bytes: usize) -> serde_json::Value {
    use md5::Digest as _;
    use sha2::Digest as _;
    let line = b"12345,\"some, quoted\ntext\",abcdefghij,2026-11-27T00:00:00Z\n";
    let data: Vec<u8> = line.iter().copied().cycle().take(bytes).collect();
    let time = |f: &dyn Fn(&[u8])| {
        let started = Instant::now();
        for chunk in data.chunks(64 * 1024) {
            f(chunk);
        }
        bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
    };
    let sha = std::cell::RefCell::new(sha2::Sha256::new());
    let md5 = std::cell::RefCell::new(md5::Md5::new());
    let rows = std::cell::RefCell::new(RowCounter::default());
    serde_json::json!({
        "sha256_mb_s": time(&|c| sha.borrow_mut().update(c)),
        "md5_mb_s": time(&|c| md5.borrow_mut().update(c)),
        "crc64nvme_mb_s": time(&|c| {
            std::hint::black_box(ObjectChecksum::of(c));
        }),
        "rows_mb_s": time(&|c| rows.borrow_mut().feed(c)),
        "check": format!("{:x} {}", sha.into_inner().finalize(), rows.into_inner().records()),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if arg("--stage").ok().as_deref() == Some("cpu") {
        println!("{}", cpu_speeds(256 << 20));
        return Ok(());
    }
    let info = SimInfo::read(arg("--info")?.as_ref())?;
    let request_id = arg("--id")?;
    let stage = arg("--stage").unwrap_or_else(|_| "collect".into());
    let nanos = Arc::new(AtomicU64::new(0));
    let sink_arg = arg("--sink").unwrap_or_else(|_| "null:".into());
    let inner: Arc<dyn ResultSink> = match sink_arg.split_once(':') {
        Some(("dir", path)) => Arc::new(DirSink::new(path)),
        Some(("s3", bucket)) => {
            let env = runbridge_adapters_aws::AwsEnv::from_env().await;
            // Tuning runs: `BENCH_PART_MIB` and `BENCH_IN_FLIGHT` override the upload defaults.
            let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
            let defaults = runbridge_adapters_aws::UploadConfig::default();
            let config = runbridge_adapters_aws::UploadConfig {
                part_size: var("BENCH_PART_MIB").map_or(defaults.part_size, |m| m << 20),
                max_in_flight: var("BENCH_IN_FLIGHT").unwrap_or(defaults.max_in_flight),
            };
            Arc::new(
                runbridge_adapters_aws::S3Sink::new(env.s3_client(), bucket)
                    .with_upload_config(config)?,
            )
        }
        Some(("null", "")) => Arc::new(NullSink),
        _ => bail!("--sink must be dir:PATH, s3:BUCKET or null:, not {sink_arg:?}"),
    };
    let sink = Arc::new(TimedSink {
        inner,
        nanos: nanos.clone(),
    });
    let vendors = info.vendors()?;
    let ledger_dir = tempfile::tempdir()?;
    let handle = run_until_done(
        &vendors,
        Arc::new(DirLedger::new(ledger_dir.path())),
        &request_id,
    )
    .await?;

    let started = Instant::now();
    let bytes = match stage.as_str() {
        "download" | "digest" => download_only(&vendors, &handle, stage == "digest").await?,
        "collect" => {
            let dir = tempfile::tempdir()?;
            let deployment = LocalDeployment::new(LocalConfig {
                wrap_sink: Some(Box::new(move |_| sink)),
                collect: CollectOptions {
                    sha256: !std::env::args().any(|a| a == "--no-sha256"),
                },
                ..sim_server::local_config(vendors, dir.path())
            })?;
            deployment
                .collector
                .collect(CollectInput {
                    handle,
                    outcome: Outcome::Succeeded,
                    reason: None,
                    attribution: None,
                })
                .await?
                .bytes
        }
        other => bail!("--stage must be download, digest or collect, not {other:?}"),
    };
    let seconds = started.elapsed().as_secs_f64();
    if bytes != info.file_bytes {
        bail!(
            "collected {} bytes, the run produced {}",
            bytes,
            info.file_bytes
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "bytes": bytes,
            "seconds": seconds,
            "sink_seconds": nanos.load(Ordering::Relaxed) as f64 / 1e9,
            "peak_rss_bytes": peak_rss_bytes()?,
        })
    );
    Ok(())
}

/// Triggers `request_id` and polls it (in real time, at most every 20 ms) until it can be
/// collected; returns the handle the collect task would get. AMC has a limit of runs at once per
/// instance, so the trigger queues the run without submitting it: the state machine's `Admit`
/// step submits it once it holds a slot, and so does this, before the polls (polling the queued
/// handle, which has no vendor run id, answers 404).
async fn run_until_done(
    vendors: &runbridge_vendors::Vendors,
    ledger: Arc<dyn runbridge_handlers::ports::Ledger>,
    request_id: &str,
) -> anyhow::Result<runbridge_core::RunHandle> {
    use runbridge_handlers::admit::{AdmitInput, Admitter};
    use runbridge_handlers::poll::PollInput;
    let executions = Arc::new(sim_server::RecordingExecutions::default());
    let dir = tempfile::tempdir()?;
    let deployment = sim_server::deployment(vendors.clone(), dir.path(), executions.clone())?;
    let trigger = sim_server::trigger(&deployment, ledger.clone(), executions.clone());
    let triggered = trigger
        .handle_bytes(&sim_server::amc_request(request_id), None)
        .await?;
    let input = executions
        .input(&triggered.key().execution_name())
        .context("trigger started no execution")?;
    let mut reference: runbridge_core::HandleRef = serde_json::from_value(input["handle"].clone())?;
    if triggered.queued {
        let admitter = Admitter {
            vendors: vendors.clone(),
            ledger: ledger.clone(),
            slots: deployment.slots.clone(),
            callbacks: deployment.poller.callbacks.clone(),
            clock: deployment.poller.clock.clone(),
            policy: deployment.poller.policy,
            deadline: None,
        };
        let mut waits = 0;
        loop {
            let out = admitter
                .admit(AdmitInput {
                    handle: reference.clone(),
                    waits,
                })
                .await?;
            if out.failed {
                bail!("run not admitted: {:?}", out.reason);
            }
            reference = out.handle;
            if !out.queued {
                break;
            }
            waits = out.waits;
            if waits > 1_000 {
                bail!("run {request_id} not admitted after 1,000 attempts");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // The request is in the ledger the trigger wrote, not in the deployment's own.
    let mut handle = runbridge_handlers::steps::load_handle(ledger.as_ref(), reference).await?;
    for _ in 0..1_000 {
        let out = deployment.poller.poll(PollInput { handle }).await?;
        if out.failed {
            bail!("run failed: {:?}", out.reason);
        }
        if out.done {
            return Ok(out.handle);
        }
        handle = out.handle;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bail!("run {request_id} did not finish within 1,000 polls")
}
