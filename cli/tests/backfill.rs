//! `backfill` as an operator runs it, through the binary, without a stack (dry runs): the help
//! example works as written, the template gets the profile check `validate` and `submit` apply,
//! and two templates without a `request_id` never share a key.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn runbridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runbridge"));
    command
        .current_dir(repo())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("RUNBRIDGE_STACK")
        .env_remove("RUNBRIDGE_PROFILES")
        .stdin(Stdio::null());
    command
}

fn dry_run(template: &Path, profiles: Option<&Path>) -> Output {
    let mut command = runbridge();
    if let Some(p) = profiles {
        command.env("RUNBRIDGE_PROFILES", p);
    }
    command
        .args(["--json", "backfill"])
        .arg(template)
        .args(["--from", "2026-11-01", "--to", "2026-11-02", "--dry-run"])
        .output()
        .unwrap()
}

fn keys(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect()
}

/// `backfill --help`'s example, run as written (it is a dry run: no stack is called).
#[test]
fn the_help_example_works_as_written() {
    let out = runbridge().args(["backfill", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let example = help
        .lines()
        .skip_while(|l| !l.starts_with("Example:"))
        .find(|l| l.trim_start().starts_with("runbridge "))
        .expect("an example")
        .trim();
    assert!(example.contains("--dry-run"), "{example}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_runbridge")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(example)
        .current_dir(repo())
        .env("PATH", path)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("RUNBRIDGE_STACK")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`{example}` exited {:?}: {stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("30 window(s)"), "{stdout}");
}

/// A template whose window is absolute is refused, saying what a backfill needs.
#[test]
fn a_template_with_an_absolute_window_is_refused_naming_what_works() {
    let out = dry_run(&repo().join("examples/amperity.json"), None);
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("relative_window")
            && message.contains("docs/examples/amperity-daily.json"),
        "{message}"
    );
}

#[test]
fn the_template_gets_the_profile_check_of_validate_and_submit() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    std::fs::write(
        &profiles,
        r#"{"profiles": {"tenant-b": {"vendor": "amperity"}}}"#,
    )
    .unwrap();
    let template = |name: &str, profile: &str| {
        let path = dir.path().join(name);
        let text = std::fs::read_to_string(repo().join("docs/examples/amperity-daily.json"))
            .unwrap()
            .replacen('{', &format!("{{\n  \"profile\": \"{profile}\","), 1);
        std::fs::write(&path, text).unwrap();
        path
    };
    let known = template("known.json", "tenant-b");
    let unknown = template("unknown.json", "tenant-c");
    assert_eq!(keys(&dry_run(&known, Some(&profiles))).len(), 2);
    let out = dry_run(&unknown, Some(&profiles));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["field"], "profile", "{error}");
    // Without a profiles file only the deployment knows its profiles, as for `validate`.
    assert_eq!(keys(&dry_run(&unknown, None)).len(), 2);
}

#[test]
fn two_templates_without_a_request_id_never_share_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let template = |config: &str| {
        let path = dir.path().join(format!("{config}.json"));
        let text = std::fs::read_to_string(repo().join("examples/scheduled-amperity.json"))
            .unwrap()
            .replace("cg-files01", config);
        std::fs::write(&path, text).unwrap();
        path
    };
    let first = keys(&dry_run(&template("cg-files01"), None));
    let second = keys(&dry_run(&template("cg-files02"), None));
    assert_eq!(first.len(), 2);
    for key in &first {
        assert!(!second.contains(key), "{key} in both: {second:?}");
        assert!(key.starts_with("amperity-backfill-"), "{key}");
    }
    assert_eq!(
        keys(&dry_run(&template("cg-files01"), None)),
        first,
        "the same template, the same keys: repeating a backfill starts nothing twice"
    );
}
