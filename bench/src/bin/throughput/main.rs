//! Collect throughput and memory. For each file size, in one run: collect's two legs measured
//! alone — the raw download with `curl`, and the upload of the same bytes to the same endpoint
//! twice: a raw signed multipart upload with `curl` (collect's part size and parts in flight; the
//! like-for-like upload leg) and a raw signed `curl -T` PUT — the user's own `curl | aws s3 cp -`, `aws s3 cp FILE`, and runbridge's collect
//! (`collect-once`, its own process) into the local `DirSink` and into the `S3Sink`. Every process
//! runs under `/usr/bin/time -v` for its peak RSS.
//!
//! The vendor side is `sim-serve --prebuild` (its own process), which generates the result file
//! once and serves every download from that file (the page cache), so the download leg measures
//! transport, not CSV generation; the S3 endpoint is `s3s-fs` serving a temporary directory, so
//! neither is the bottleneck the way moto would be.
//!
//! Usage: `throughput --s3s-fs PATH --aws PATH [--sizes 64,1024,4096] [--repeats 3]` (prints a
//! Markdown section). The defaults are 64 MiB, 1 GiB and 4 GiB, each the best of 3.
//!
//! Here: the run (the endpoint, the simulator per size, every leg and collect); `measure.rs`
//! runs and times the processes; `report.rs` prints the section from the measurements.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use runbridge_bench::sim_server::SimInfo;

mod measure;
mod report;

use measure::{
    best_of, best_of_pair, empty_bucket, free_port, measure, wait_for, wait_for_port, Guard,
    Measured,
};
use report::Row;

const MIB: u64 = 1024 * 1024;
const ACCESS_KEY: &str = "runbridgebench";
const SECRET_KEY: &str = "runbridgebenchsecret";
const REGION: &str = "us-east-1";
const BUCKET: &str = "bench-results";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The raw multipart upload leg: `CreateMultipartUpload`, every part file of `$3` (in name order,
/// cut before the leg is timed) as `UploadPart` with at most `$4` in flight over one `curl
/// --parallel`, then `CompleteMultipartUpload` with the parts' ETags; every request signed with
/// `curl --aws-sigv4`, payloads unsigned like collect's parts. Arguments: `$1` object URL, `$2`
/// curl config file to write, `$3` parts directory, `$4` parts in flight, `$5` SigV4 provider
/// string, `$6` `ACCESS:SECRET`.
const MULTIPART_SCRIPT: &str = r#"set -euo pipefail
url=$1 cfg=$2 dir=$3 inflight=$4
sig=(--no-progress-meter --fail --aws-sigv4 "$5" --user "$6" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')
# curl 7.88 signs a bare `?uploads` as `uploads` (the endpoint expects `uploads=`): send `uploads=`.
id=$(curl "${sig[@]}" -X POST "$url?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
[[ -n $id ]] || { echo "no UploadId" >&2; exit 1; }
n=0
for f in "$dir"/p*; do
    n=$((n + 1))
    printf 'upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' "$f" "$url?partNumber=$n&uploadId=$id"
done > "$cfg"
etags=$(curl "${sig[@]}" --parallel --parallel-max "$inflight" -w '%{url_effective} %header{etag}\n' -K "$cfg")
parts=$(printf '%s\n' "$etags" | sed -n 's:.*[?&]partNumber=\([0-9]*\)&.* \(".*"\)\r*$:\1 \2:p' | sort -n \
    | awk '{ printf "<Part><PartNumber>%s</PartNumber><ETag>%s</ETag></Part>", $1, $2 }')
got=$(grep -o '<Part>' <<< "$parts" | wc -l)
[[ $got == "$n" ]] || { echo "$got ETags for $n parts" >&2; exit 1; }
done_xml=$(curl "${sig[@]}" -X POST --data-binary "<CompleteMultipartUpload>$parts</CompleteMultipartUpload>" "$url?uploadId=$id")
grep -q '<CompleteMultipartUploadResult' <<< "$done_xml" || { echo "complete: $done_xml" >&2; exit 1; }
"#;

/// Seconds collect spent in the sink's `finish` and `publish` calls (for S3: the last parts and
/// `CompleteMultipartUpload`).
fn sink_seconds(m: &Measured) -> anyhow::Result<f64> {
    let line: serde_json::Value =
        serde_json::from_str(m.stdout.trim()).context("collect-once output")?;
    line["sink_seconds"]
        .as_f64()
        .context("collect-once sink_seconds")
}

fn collect_seconds(m: &Measured) -> anyhow::Result<f64> {
    let line: serde_json::Value =
        serde_json::from_str(m.stdout.trim()).context("collect-once output")?;
    line["seconds"].as_f64().context("collect-once seconds")
}

fn main() -> anyhow::Result<()> {
    let s3s_fs = arg("--s3s-fs").context("--s3s-fs PATH")?;
    let aws = arg("--aws").context("--aws PATH (the aws CLI)")?;
    let sizes_mib: Vec<u64> = arg("--sizes")
        .unwrap_or_else(|| "64,1024,4096".into())
        .split(',')
        .map(|s| s.trim().parse().context("--sizes MIB,MIB,…"))
        .collect::<anyhow::Result<_>>()?;
    let repeats: usize = arg("--repeats")
        .unwrap_or_else(|| "3".into())
        .parse()
        .context("--repeats N")?;
    let bins: PathBuf = std::env::current_exe()?
        .parent()
        .context("binary dir")?
        .to_path_buf();
    let bin = |name: &str| bins.join(name).to_string_lossy().into_owned();
    let work = tempfile::tempdir()?;

    let sizes: Vec<u64> = sizes_mib.iter().map(|m| m * MIB).collect();
    // collect's S3Sink defaults, which the raw multipart leg copies.
    let upload = runbridge_adapters_aws::UploadConfig::default();

    // The S3 endpoint.
    let s3_root = work.path().join("s3");
    std::fs::create_dir_all(&s3_root)?;
    let s3_port = free_port()?;
    let _s3 = Guard(
        Command::new(&s3s_fs)
            .args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&s3_root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting s3s-fs")?,
    );
    wait_for_port(s3_port, "s3s-fs")?;
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let aws_env: Vec<(&str, String)> = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
    ];
    measure(&aws, &["s3", "mb", &format!("s3://{BUCKET}")], &aws_env)?;
    measure::empty_after_each(s3_root.join(BUCKET));

    let mut rows = Vec::new();
    for &size in &sizes {
        let info_path = work.path().join(format!("sim-{size}.json"));
        // The result file, generated once by sim-serve and served from the page cache; the raw
        // PUT and `aws s3 cp FILE` upload the same bytes from it.
        let local = work.path().join(format!("file-{size}.csv"));
        let _sim = Guard(
            Command::new(bin("sim-serve"))
                .args(["--bytes", &size.to_string(), "--info"])
                .arg(&info_path)
                .arg("--prebuild")
                .arg(&local)
                .stdout(Stdio::null())
                .spawn()
                .context("starting sim-serve")?,
        );
        wait_for(&info_path, "sim-serve")?;
        let info = SimInfo::read(&info_path)?;
        let url = info.download_url.clone();

        let raw = best_of(repeats, || {
            measure("curl", &["-sS", "--fail", "-o", "/dev/null", &url], &[])
        })?;
        let pipe = best_of(repeats, || {
            let script = format!("set -o pipefail; curl -sS --fail '{url}' | '{aws}' s3 cp - s3://{BUCKET}/pipe-{size}.csv");
            measure("bash", &["-c", &script], &aws_env)
        })?;

        // The upload leg alone: the same bytes from the prebuilt file (in the page cache).
        let put_ceiling = best_of(repeats, || {
            measure(
                "curl",
                &[
                    "-sS",
                    "--fail",
                    "-o",
                    "/dev/null",
                    "--aws-sigv4",
                    &format!("aws:amz:{REGION}:s3"),
                    "--user",
                    &format!("{ACCESS_KEY}:{SECRET_KEY}"),
                    "-H",
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                    "-T",
                    &local.to_string_lossy(),
                    &format!("{endpoint}/{BUCKET}/put-{size}.csv"),
                ],
                &[],
            )
        })?;
        // The like-for-like upload leg: the same bytes as a multipart upload with collect's part
        // size and parts in flight. The part files are cut from the file before the leg is timed
        // (and synced, so no writeback runs during it); the leg is create → parts → complete.
        let parts_dir = work.path().join(format!("parts-{size}"));
        std::fs::create_dir_all(&parts_dir)?;
        let split = Command::new("split")
            .args(["-b", &upload.part_size.to_string(), "-d", "-a", "5"])
            .arg(&local)
            .arg(parts_dir.join("p"))
            .status()
            .context("split")?;
        if !split.success() {
            bail!("split {} failed: {split}", local.display());
        }
        Command::new("sync").status().context("sync")?;
        let cfg = work.path().join("parts.curlrc");
        let mpu_ceiling = best_of(repeats, || {
            measure(
                "bash",
                &[
                    "-c",
                    MULTIPART_SCRIPT,
                    "multipart",
                    &format!("{endpoint}/{BUCKET}/mpu-{size}.csv"),
                    &cfg.to_string_lossy(),
                    &parts_dir.to_string_lossy(),
                    &upload.max_in_flight.to_string(),
                    &format!("aws:amz:{REGION}:s3"),
                    &format!("{ACCESS_KEY}:{SECRET_KEY}"),
                ],
                &[],
            )
        })?;
        std::fs::remove_dir_all(&parts_dir)?;
        let cli_ceiling = best_of(repeats, || {
            measure(
                &aws,
                &[
                    "s3",
                    "cp",
                    &local.to_string_lossy(),
                    &format!("s3://{BUCKET}/cli-{size}.csv"),
                ],
                &aws_env,
            )
        })?;

        let dir_sink = work.path().join("dir-sink");
        let mut n = 0;
        let collect_dir = best_of(repeats, || {
            n += 1;
            let m = measure(
                &bin("collect-once"),
                &[
                    "--info",
                    &info_path.to_string_lossy(),
                    "--sink",
                    &format!("dir:{}", dir_sink.display()),
                    "--id",
                    &format!("bench-dir-{size}-{n}"),
                ],
                &[],
            );
            let _ = std::fs::remove_dir_all(&dir_sink);
            m
        })?;
        // The default and `MANIFEST_SHA256=false`, interleaved so that both see the same
        // machine: their difference is the SHA-256's cost.
        let (collect_s3, collect_s3_no_sha) = best_of_pair(repeats, |no_sha| {
            n += 1;
            let id = format!("bench-s3-{size}-{n}");
            let mut args = vec![
                "--info".to_owned(),
                info_path.to_string_lossy().into_owned(),
                "--sink".to_owned(),
                format!("s3:{BUCKET}"),
                "--id".to_owned(),
                id,
            ];
            if no_sha {
                args.push("--no-sha256".to_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            measure(&bin("collect-once"), &args, &aws_env)
        })?;
        drop(_sim);
        let _ = std::fs::remove_file(&local);
        empty_bucket(&s3_root.join(BUCKET))?;
        rows.push(Row {
            bytes: info.file_bytes,
            collect_dir_seconds: collect_seconds(&collect_dir)?,
            collect_s3_seconds: collect_seconds(&collect_s3)?,
            collect_s3_sink_seconds: sink_seconds(&collect_s3)?,
            collect_s3_no_sha_seconds: collect_seconds(&collect_s3_no_sha)?,
            collect_s3_no_sha,
            raw,
            pipe,
            put_ceiling,
            mpu_ceiling,
            cli_ceiling,
            collect_dir,
            collect_s3,
        });
    }
    let cpu = measure(&bin("collect-once"), &["--stage", "cpu"], &[])?;
    let cpu: serde_json::Value = serde_json::from_str(cpu.stdout.trim()).context("cpu stage")?;
    report::print(&rows, &upload, repeats, &cpu);
    Ok(())
}
