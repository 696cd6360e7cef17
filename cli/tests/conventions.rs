//! Command-line conventions: help with examples and exit codes, no ANSI codes on a stderr that
//! is not a terminal, errors without backtraces and with exit codes by cause.

use std::process::Command;

fn runbridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runbridge"));
    c.env("RUST_BACKTRACE", "1").env_remove("RUNBRIDGE_STACK");
    c
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = runbridge().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Exit codes:",
        "Examples:",
        "1  a run failed",
        "3  not found",
        "--json",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = runbridge().args(["backfill", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("Example:"));
}

#[test]
fn a_piped_stderr_gets_no_ansi_codes_and_errors_no_backtrace() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = runbridge()
        .args(["run", "--sandbox", "--speed", "2000", "--out"])
        .arg(out_dir.path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/carto.json"
        ))
        .env("RUNBRIDGE_LOG", "info")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stderr.is_empty(), "info logs were written");
    assert!(!out.stderr.contains(&0x1b), "ANSI escape on a pipe");
    assert!(!out.stdout.contains(&0x1b), "ANSI escape on a pipe");

    let bad = out_dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"vendor":"amc"}"#).unwrap();
    let out = runbridge().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "invalid input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    let out = runbridge()
        .args(["run", "/nonexistent/request.json"])
        .output()
        .unwrap();
    // One table for every command: a request file that cannot be read is invalid input for
    // `run` as for `validate` and `submit` (it was 5, "other", before the table was one).
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable request is invalid input"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("backtrace"));
}
