//! Cold start: time from process start to the first `GET /runtime/invocation/next` on a local
//! stand-in of the Lambda Runtime API — that is, to "ready for the first event", with the SDK
//! configuration and clients built — for each release function binary, and for a minimal Python
//! handler that builds the same boto3 clients (the baseline). Also the stripped binary sizes,
//! against the size of boto3 + botocore (what the Python runtime loads).
//!
//! Usage: `coldstart --bin-dir DIR --python PATH --script PATH [--runs N]` (prints Markdown).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use runbridge_bench::{at_most, mib, ratio, Table};

const FUNCTIONS: [&str; 3] = ["runbridge-trigger", "runbridge-poll", "runbridge-collect"];
const TARGET_INIT_MS: f64 = 25.0;
const TARGET_SIZE_MIB: f64 = 15.0;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Listens for the runtime API's first `next` request and reports when it arrived.
fn runtime_api() -> anyhow::Result<(String, mpsc::Receiver<Instant>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            if String::from_utf8_lossy(&buf[..n]).contains("/runtime/invocation/next") {
                let _ = tx.send(Instant::now());
                // Hold no event back: answer "no event" and let the caller kill the process.
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    Ok((addr, rx))
}

/// Milliseconds from spawn to the first `next` request, `runs` times.
fn init_times(program: &str, args: &[&str], runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let (api, arrived) = runtime_api()?;
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            // Nothing listens here: init must not need the network.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("RESULTS_BUCKET", "bench-results")
            .env("RESULTS_PREFIX", "")
            .env("LEDGER_PREFIX", "_ledger")
            .env(
                "STATE_MACHINE_ARN",
                "arn:aws:states:us-east-1:000000000000:stateMachine:bench",
            )
            .env("EVENT_BUS_NAME", "default")
            .env(
                "VENDOR_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench",
            )
            .env(
                "DEAD_LETTER_QUEUE_URL",
                "http://127.0.0.1:9/000000000000/bench-dlq",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let ready = arrived.recv_timeout(Duration::from_secs(30));
        let _ = child.kill();
        let output = child.wait_with_output()?;
        match ready {
            Ok(at) => out.push((at - started).as_secs_f64() * 1_000.0),
            Err(_) => bail!(
                "{program} never asked for an event: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn dir_size(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn main() -> anyhow::Result<()> {
    let bin_dir = arg("--bin-dir").context("--bin-dir DIR")?;
    let python = arg("--python").context("--python PATH")?;
    let script = arg("--script").context("--script PATH")?;
    let runs: usize = arg("--runs").map(|r| r.parse()).transpose()?.unwrap_or(10);

    let python_ms = init_times(&python, &[&script], runs)?;
    let python_median = percentile(&python_ms, 0.5);
    let site = Command::new(&python)
        .args([
            "-c",
            "import boto3, botocore, os; print(os.path.dirname(os.path.dirname(boto3.__file__)))",
        ])
        .output()?;
    let site = String::from_utf8(site.stdout)?.trim().to_owned();
    let boto_bytes =
        dir_size(&Path::new(&site).join("boto3"))? + dir_size(&Path::new(&site).join("botocore"))?;

    let mut t = Table::new([
        "function",
        "init median",
        "init p90",
        "init vs Python (median)",
        "binary (stripped)",
        "size vs boto3+botocore",
    ]);
    let mut verdicts = Vec::new();
    for f in FUNCTIONS {
        let path = Path::new(&bin_dir).join(f);
        let ms = init_times(&path.to_string_lossy(), &[], runs)?;
        let size = std::fs::metadata(&path)?.len();
        let median = percentile(&ms, 0.5);
        t.row([
            f.to_owned(),
            format!("{median:.1} ms"),
            format!("{:.1} ms", percentile(&ms, 0.9)),
            ratio(median, python_median),
            format!("{:.1} MiB", mib(size)),
            ratio(size as f64, boto_bytes as f64),
        ]);
        verdicts.push(format!(
            "- {f}: init < {TARGET_INIT_MS} ms: {}; binary < {TARGET_SIZE_MIB} MiB: {}",
            at_most(median, TARGET_INIT_MS, "ms"),
            at_most(mib(size), TARGET_SIZE_MIB, "MiB")
        ));
    }
    t.row([
        "Python 3 + boto3 (baseline)".to_owned(),
        format!("{python_median:.1} ms"),
        format!("{:.1} ms", percentile(&python_ms, 0.9)),
        "1.00×".to_owned(),
        format!("{:.1} MiB (boto3+botocore)", mib(boto_bytes)),
        "1.00×".to_owned(),
    ]);

    println!("## 3. Cold start\n");
    println!(
        "Init is the time from spawning the process to its first `GET \
         /2018-06-01/runtime/invocation/next` on a local stand-in of the Lambda Runtime API: \
         tracing set up, SDK configuration loaded from the environment (static credentials, no \
         network), every client of the function built. {runs} runs each, on this machine (no \
         Lambda sandbox, no Firecracker, no code download). The baseline is \
         `bench/python/boto3_init.py`, which builds the same five boto3 clients and then asks \
         for its first event the same way. Sizes are the release binaries (`strip = true`, LTO, \
         one codegen unit) for x86_64; the Python baseline's size is boto3 + botocore as \
         installed.\n"
    );
    println!("{}", t.markdown());
    println!("**Targets (median)**\n");
    for v in verdicts {
        println!("{v}");
    }
    println!();
    Ok(())
}
