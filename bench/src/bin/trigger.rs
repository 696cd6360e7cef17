//! Trigger throughput: SQS-sized batches of 10 requests through the trigger function's handler
//! (`runbridge_lambda::handle_trigger_event`, as the Lambda calls it) against the in-process
//! simulator, with the local directory ledger and, when `AWS_ENDPOINT_URL` points at an S3
//! emulator (moto), with the S3 ledger. The baseline is the same requests submitted straight to
//! the vendor client (no parsing of the event, no ledger, no execution start), 10 at a time.
//! Executions are recorded in memory, not started: the poll loop is measured in section 1.
//!
//! Usage: `trigger [--batches N]` (prints a Markdown section).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use futures::future::join_all;
use runbridge_adapters_aws::env::load_sdk_config;
use runbridge_adapters_aws::AwsEnv;
use runbridge_adapters_local::DirLedger;
use runbridge_bench::sim_server::{self, amc_request, RecordingExecutions, VENDOR};
use runbridge_bench::{ratio, Table};
use runbridge_core::{IdempotencyKey, OffsetDateTime, ResolvedRequest, RunRequest};
use runbridge_handlers::ports::Ledger;
use runbridge_sim::{RunScript, SimHandle};
use runbridge_vendors::Vendors;
use serde_json::{json, Value};

const BATCH: usize = 10;

/// Requests per second over all batches, and per-batch latencies in ms (sorted).
struct Measured {
    requests_per_second: f64,
    batch_ms: Vec<f64>,
}

impl Measured {
    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.batch_ms.len() as f64 - 1.0) * p).round() as usize;
        self.batch_ms[i]
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn sqs_event(batch: usize, label: &str) -> Value {
    let records: Vec<Value> = (0..BATCH)
        .map(|i| {
            let body = String::from_utf8(amc_request(&format!("{label}-{batch}-{i}")))
                .expect("JSON is UTF-8");
            json!({
                "messageId": format!("{label}-{batch}-{i}"),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {"SentTimestamp": "1764201600000", "ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:runbridge-requests",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

async fn direct_submits(vendors: &Vendors, batches: usize) -> anyhow::Result<Measured> {
    let vendor = vendors.get(VENDOR)?;
    let mut batch_ms = Vec::new();
    let started = Instant::now();
    for b in 0..batches {
        let requests: Vec<ResolvedRequest> = (0..BATCH)
            .map(|i| {
                RunRequest::from_json(&amc_request(&format!("direct-{b}-{i}")))
                    .map(|r| r.resolve(OffsetDateTime::now_utc()))
            })
            .collect::<Result<_, _>>()?;
        let t = Instant::now();
        let results = join_all(requests.iter().map(|r| {
            let key = IdempotencyKey::for_request(r, None);
            let vendor = vendor.clone();
            async move { vendor.submit(r, &key).await }
        }))
        .await;
        for r in results {
            r?;
        }
        batch_ms.push(t.elapsed().as_secs_f64() * 1_000.0);
    }
    let total = started.elapsed().as_secs_f64();
    batch_ms.sort_by(f64::total_cmp);
    Ok(Measured {
        requests_per_second: (batches * BATCH) as f64 / total,
        batch_ms,
    })
}

async fn through_trigger(
    vendors: &Vendors,
    ledger: Arc<dyn Ledger>,
    env: &AwsEnv,
    batches: usize,
    label: &str,
) -> anyhow::Result<Measured> {
    let executions = Arc::new(RecordingExecutions::default());
    let dir = tempfile::tempdir()?;
    let deployment = sim_server::deployment(vendors.clone(), dir.path(), executions.clone())?;
    let trigger = sim_server::trigger(&deployment, ledger, executions.clone());
    let dlq = env.dead_letters()?;
    let mut batch_ms = Vec::new();
    let started = Instant::now();
    for b in 0..batches {
        let event = sqs_event(b, label);
        let t = Instant::now();
        let response = runbridge_lambda::handle_trigger_event(&trigger, &dlq, event).await?;
        batch_ms.push(t.elapsed().as_secs_f64() * 1_000.0);
        let failures = response["batchItemFailures"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if failures > 0 {
            bail!("{label}: batch {b} had {failures} failed messages: {response}");
        }
    }
    let total = started.elapsed().as_secs_f64();
    if executions.len() != batches * BATCH {
        bail!(
            "{label}: {} executions for {} requests",
            executions.len(),
            batches * BATCH
        );
    }
    batch_ms.sort_by(f64::total_cmp);
    Ok(Measured {
        requests_per_second: (batches * BATCH) as f64 / total,
        batch_ms,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let batches: usize = arg("--batches")
        .map(|b| b.parse())
        .transpose()?
        .unwrap_or(50);
    let sim = SimHandle::start(sim_server::config(100)).await?;
    // Runs that end as soon as they start: AMC refuses an 11th active execution per instance
    // with 429, and this benchmark measures the trigger, not the vendor's concurrency limit.
    sim.sim.control.set_default_script(
        VENDOR,
        RunScript {
            queue_seconds: 0.0,
            run_seconds: 0.0,
            rows: 100,
            files: 1,
            ..RunScript::default()
        },
    );
    // Every submit must reach the vendor exactly once: a retried (throttled) submit would make
    // this a benchmark of the retry policy.
    let creates = || sim.sim.control.requests("amc.create");
    let check_creates = |phase: &str, before: u64, after: u64| -> anyhow::Result<()> {
        let expected = (batches * BATCH) as u64;
        if after - before != expected {
            bail!(
                "{phase}: {} vendor submits for {expected} requests (throttled or retried)",
                after - before
            );
        }
        Ok(())
    };
    let info = sim_server::SimInfo {
        base_url: sim.base_url(),
        settings: sim.client_settings(),
        download_url: String::new(),
        file_bytes: 0,
    };
    // The trigger's own submit path: AMC's concurrency queue off (a queued run is submitted by
    // the state machine's Admit, which section 5 measures), so every request is submitted here.
    let vendors = info
        .vendors()?
        .with_limit(VENDOR, runbridge_core::DEFAULT_PROFILE, None);
    let s3_endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    // A bucket of this run's own: the request ids are the same every run, and a moto that is
    // still up from an earlier run (scripts/moto.sh reuses one) would have every key claimed.
    let ledger_bucket = format!(
        "bench-ledger-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let env = AwsEnv::new(
        load_sdk_config().await,
        [
            // Never used unless a message is rejected, which fails the benchmark instead.
            (
                "DEAD_LETTER_QUEUE_URL".to_owned(),
                "http://127.0.0.1:9/000000000000/bench-dlq".to_owned(),
            ),
            ("RESULTS_BUCKET".to_owned(), ledger_bucket.clone()),
            ("LEDGER_PREFIX".to_owned(), "_ledger".to_owned()),
        ],
    );

    // Warm up connections and tokens so the first batch measures the steady state.
    direct_submits(&vendors, 1).await?;
    let direct = direct_submits(&vendors, batches).await?;
    let ledger_dir = tempfile::tempdir()?;
    let local = through_trigger(
        &vendors,
        Arc::new(DirLedger::new(ledger_dir.path())),
        &env,
        batches,
        "local",
    )
    .await?;
    let s3 = match &s3_endpoint {
        Some(_) => {
            env.s3_client()
                .create_bucket()
                .bucket(&ledger_bucket)
                .send()
                .await
                .context("creating the ledger bucket")?;
            let before = creates();
            let measured =
                through_trigger(&vendors, Arc::new(env.ledger()?), &env, batches, "s3").await?;
            check_creates("S3 ledger", before, creates())?;
            Some(measured)
        }
        None => None,
    };

    println!("## 4. Trigger throughput\n");
    println!(
        "{batches} SQS batches of {BATCH} AMC requests each, one batch after the other, through \
         `runbridge_lambda::handle_trigger_event` (parse the SQS event, validate, derive the key, \
         claim it in the ledger, submit to the simulator, record the run id, start the \
         execution — recorded in memory) against the simulator in the same process. The \
         baseline is the same number of AMC submits straight through the vendor client, {BATCH} \
         concurrently. Ratios are against that baseline in the same run.\n"
    );
    let mut t = Table::new([
        "path",
        "requests/s",
        "vs direct submit",
        "p50 per batch",
        "p99 per batch",
        "p99 vs direct",
    ]);
    let mut add = |name: &str, m: &Measured| {
        t.row([
            name.to_owned(),
            format!("{:.0}", m.requests_per_second),
            ratio(m.requests_per_second, direct.requests_per_second),
            format!("{:.1} ms", m.percentile(0.5)),
            format!("{:.1} ms", m.percentile(0.99)),
            ratio(m.percentile(0.99), direct.percentile(0.99)),
        ]);
    };
    add("direct vendor submit (baseline)", &direct);
    add("trigger, local directory ledger", &local);
    match &s3 {
        Some(m) => add("trigger, S3 ledger on moto", m),
        None => println!("(S3 ledger not measured: no `AWS_ENDPOINT_URL` for moto.)\n"),
    }
    println!("{}", t.markdown());
    Ok(())
}
