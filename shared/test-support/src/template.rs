//! The deployed template as CloudFormation creates it: `infra/template.yaml` through the SAM
//! translator (`scripts/sam-transform.py`, run with the venv of `scripts/install-tools.sh`), plain
//! CloudFormation JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `infra/template.yaml` transformed, each function's code at `s3://<code_bucket>/<code_prefix>/
/// <LogicalId>.zip` and the state machine's definition inlined; or `None` (after saying so on
/// stderr) when the venv is missing outside CI. Under CI a missing venv is a failure, not a skip.
pub fn transformed(test: &str, code_bucket: &str, code_prefix: &str) -> Option<serde_json::Value> {
    let root = repository_root();
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
            panic!(
                "{test}: CI is set but {} is missing; run: bash scripts/install-tools.sh",
                python.display()
            );
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED {test}: {} is missing; run: bash scripts/install-tools.sh ***",
            python.display()
        );
        return None;
    }
    let out = Command::new(&python)
        .arg(root.join("scripts/sam-transform.py"))
        .args(["--code-bucket", code_bucket, "--code-prefix", code_prefix])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("{test}: run scripts/sam-transform.py: {e}"));
    assert!(
        out.status.success(),
        "{test}: scripts/sam-transform.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("the transform writes JSON"))
}
