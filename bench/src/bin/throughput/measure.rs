//! Running and timing the processes a measurement is made of: each under `/usr/bin/time -v` (wall
//! time, CPU time, peak RSS), the best of several runs, the endpoint's bucket emptied between
//! runs, and the child processes (endpoint, simulator) stopped when the run is over.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The endpoint's directory of the bucket, emptied after every measurement.
static BUCKET_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Empties `bucket_dir` after every measurement from now on (see [`keep_fastest`]).
pub fn empty_after_each(bucket_dir: PathBuf) {
    BUCKET_DIR.set(bucket_dir).expect("set once");
}

/// One measured process: wall seconds, peak RSS from `time -v`, stdout.
#[derive(Debug, Clone)]
pub struct Measured {
    pub seconds: f64,
    /// User + system CPU time of the process (`/usr/bin/time -v`).
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub stdout: String,
}

/// Runs `program args` under `/usr/bin/time -v` with `env`, failing on a non-zero exit.
pub fn measure(program: &str, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Measured> {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v").arg(program).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{program} {args:?} failed ({}): {stderr}", out.status);
    }
    // A number `/usr/bin/time -v` reports after `label`.
    let field = |label: &str| -> anyhow::Result<f64> {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {label:?} in /usr/bin/time -v output"))
    };
    Ok(Measured {
        seconds,
        cpu_seconds: field("User time (seconds):")? + field("System time (seconds):")?,
        peak_rss_bytes: field("Maximum resident set size (kbytes):")? as u64 * 1024,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

/// The fastest of `n` runs (the least disturbed by the rest of the machine).
pub fn best_of(
    n: usize,
    mut run: impl FnMut() -> anyhow::Result<Measured>,
) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..n {
        keep_fastest(&mut best, run()?)?;
    }
    best.context("no run")
}

/// Empties the bucket after measurement `m` (the next one starts on an empty bucket) and keeps
/// `m` in `best` when it is the fastest so far.
fn keep_fastest(best: &mut Option<Measured>, m: Measured) -> anyhow::Result<()> {
    if let Some(dir) = BUCKET_DIR.get() {
        empty_bucket(dir)?;
    }
    if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
        *best = Some(m);
    }
    Ok(())
}

/// The fastest of `n` runs of each of two variants, interleaved (`run(false)`, `run(true)`, …) so
/// that a disturbance of the machine is shared rather than charged to one of them.
pub fn best_of_pair(
    n: usize,
    mut run: impl FnMut(bool) -> anyhow::Result<Measured>,
) -> anyhow::Result<(Measured, Measured)> {
    let mut best: [Option<Measured>; 2] = [None, None];
    for _ in 0..n {
        for (i, variant) in [false, true].into_iter().enumerate() {
            keep_fastest(&mut best[i], run(variant)?)?;
        }
    }
    let [a, b] = best;
    Ok((a.context("no run")?, b.context("no run")?))
}

/// Removes everything the endpoint stored in `bucket_dir` (objects and s3s-fs's upload
/// directories): each measurement starts on an empty bucket and 4 GiB runs keep the disk bounded.
pub fn empty_bucket(bucket_dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(bucket_dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?
        } else {
            std::fs::remove_file(&path)?
        }
    }
    Ok(())
}

/// A child process that is killed when dropped (by its own pid: only what this run started).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for(path: &Path, what: &str) -> anyhow::Result<()> {
    // sim-serve writes its info once the result file is prebuilt: 4 GiB takes a while.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{what} did not start within 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn wait_for_port(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on {port} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
