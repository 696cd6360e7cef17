//! The command line's own robustness: usage errors instead of panics or busy loops, stdin as
//! `-`, a size limit on inputs, every file of a list reported.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn runbridge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runbridge"))
}

const EXAMPLE: &str = include_str!("../../examples/carto.json");

#[test]
fn bad_speeds_are_usage_errors() {
    for speed in ["0", "nan", "inf", "1e308", "-1", "-inf", "abc"] {
        let dir = tempfile::tempdir().unwrap();
        let out = runbridge()
            .args(["demo", "--plain", "--out"])
            .arg(dir.path())
            .args(["--speed", speed])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--speed {speed}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--speed"), "--speed {speed}: {err}");
        assert!(!err.contains("panicked"), "--speed {speed}: {err}");
    }
}

/// The demo's summary names each run's profile: AMC's NA and EU accounts are told apart.
#[test]
fn the_demo_summary_shows_each_runs_profile() {
    let dir = tempfile::tempdir().unwrap();
    let out = runbridge()
        .args(["demo", "--plain", "--speed", "400", "--out"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("vendor "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..2], ["vendor", "profile"], "{text}");
    let mut profiles: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.len() > 3 && r[3] == "SUCCEEDED")
        .map(|r| (r[0], r[1]))
        .collect();
    profiles.sort_unstable();
    assert_eq!(
        profiles,
        [
            ("adobe", "default"),
            ("amc", "amc-eu"),
            ("amc", "amc-na"),
            ("amperity", "amperity-b"),
            ("amperity", "default"),
            ("carto", "default"),
        ],
        "{text}"
    );
}

#[test]
fn validate_without_files_is_a_usage_error() {
    let out = runbridge().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn validate_reads_stdin_as_dash() {
    let mut child = runbridge()
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(EXAMPLE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("-: ok (carto)"));
}

#[test]
fn every_file_of_a_list_is_reported_even_after_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, EXAMPLE).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{\"vendor\":\"carto\",\"vendor\":\"amc\"}").unwrap();
    let missing = dir.path().join("missing.json");
    let out = runbridge()
        .arg("validate")
        .arg(&good)
        .arg(&missing)
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("good.json: ok (carto)").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("missing.json: cannot read"), "{stdout}");
    assert!(
        stdout.contains("bad.json: invalid request: field `vendor`"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 of 4"),
        "{out:?}"
    );
}

#[test]
fn an_endless_input_stops_at_the_limit_naming_it() {
    let start = std::time::Instant::now();
    let out = runbridge()
        .args(["validate", "/dev/zero"])
        .output()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&runbridge_core::request::MAX_REQUEST_BYTES.to_string()),
        "{stdout}"
    );
}

#[test]
fn validate_checks_a_named_profile_against_the_local_profiles_file() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    std::fs::write(
        &profiles,
        r#"{"profiles": {"amc-eu": {"vendor": "amc", "client_id": "x"}, "tenant-b": {"vendor": "amperity"}}}"#,
    )
    .unwrap();
    let amc_eu = dir.path().join("amc-eu.json");
    std::fs::write(&amc_eu, include_str!("../../examples/amc-eu.json")).unwrap();
    let foreign = dir.path().join("foreign.json");
    std::fs::write(
        &foreign,
        include_str!("../../examples/amc-eu.json").replace("\"amc-eu\"", "\"tenant-b\""),
    )
    .unwrap();
    let unknown = dir.path().join("unknown.json");
    std::fs::write(
        &unknown,
        include_str!("../../examples/amc-eu.json").replace("\"amc-eu\"", "\"amc-apac\""),
    )
    .unwrap();

    let ok = runbridge()
        .env("RUNBRIDGE_PROFILES", &profiles)
        .arg("validate")
        .arg(&amc_eu)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = runbridge()
        .env("RUNBRIDGE_PROFILES", &profiles)
        .arg("validate")
        .arg(&foreign)
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("field `profile`: profile `tenant-b` is for amperity, not amc"),
        "{text}"
    );
    assert!(
        text.contains("field `profile`: no profile `amc-apac`"),
        "{text}"
    );
    // Without a profiles file only the deployment knows its profiles: the name is left to the
    // trigger.
    let unchecked = runbridge()
        .env_remove("RUNBRIDGE_PROFILES")
        .arg("validate")
        .arg(&unknown)
        .output()
        .unwrap();
    assert!(unchecked.status.success());
}

/// Ctrl-C in `runbridge run` stops the run as a cancel would (the vendor run cancelled, a
/// CANCELLED manifest, exit code 1), and the manifest says it was Ctrl-C, not `runbridge cancel`.
#[test]
fn ctrl_c_stops_a_run_and_its_manifest_says_so() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    // At one simulated second per second the CARTO job runs for minutes.
    let mut child = runbridge()
        .args(["run", "--sandbox", "--speed", "1", "--out"])
        .arg(dir.path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/carto.json"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("submitted as") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no submission");
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a cancelled run did not succeed");
    let manifest = find(dir.path(), "manifest.json").expect("a manifest");
    let manifest: runbridge_core::Manifest =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(manifest.state, runbridge_core::RunState::Cancelled);
    let reason = manifest.reason.unwrap();
    assert!(
        reason.contains(runbridge_adapters_local::INTERRUPT_STOP_CAUSE),
        "{reason}"
    );
    assert!(!reason.contains("runbridge cancel"), "{reason}");
}

fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// A run under a profile with a concurrency limit (AMC) is queued before anything is submitted:
/// its first line says so, never "submitted as" an empty run id.
#[test]
fn a_queued_run_says_it_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let out = runbridge()
        .args(["run", "--sandbox", "--speed", "2000", "--out"])
        .arg(dir.path())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amc.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("queued for a concurrency slot"), "{stdout}");
    assert!(
        !stdout.contains("submitted as  ") && !stdout.contains("submitted as (key"),
        "{stdout}"
    );
}
