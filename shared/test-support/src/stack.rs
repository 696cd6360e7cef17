//! The real template as a stack in moto: `infra/template.yaml` through the SAM translator, created
//! in moto's CloudFormation with the function packages (`scripts/moto-stack.py`, run with the
//! venv of `scripts/install-tools.sh`), and what moto made of each resource.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::moto::Moto;
use crate::template::repository_root;

/// A `VendorSecretArn` of the form the template allows, for stacks whose functions never read it.
pub const PLACEHOLDER_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:runbridge/vendors-AbCdEf";

/// A stack of the real template in moto.
pub struct RealStack {
    /// The stack's name.
    pub name: String,
    /// Its outputs, by key.
    pub outputs: BTreeMap<String, String>,
    /// Where each function's package came from, by logical id: `built` (`sam build`'s
    /// bootstrap) or `stand-in` (a zip whose bootstrap only says to build; moto never runs it).
    pub packages: BTreeMap<String, String>,
    endpoint: String,
}

/// Runs `scripts/moto-stack.py` with `args`; its stdout as JSON.
async fn moto_stack(test: &str, endpoint: &str, args: Vec<String>) -> Value {
    let root = repository_root();
    let python = root.join(".venv/bin/python");
    let script = root.join("scripts/moto-stack.py");
    let endpoint = endpoint.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(args)
            .args(["--endpoint", &endpoint])
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
    })
    .await
    .expect("the script's thread")
    .unwrap_or_else(|e| panic!("{test}: run scripts/moto-stack.py: {e}"));
    assert!(
        out.status.success(),
        "{test}: scripts/moto-stack.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("moto-stack.py writes JSON")
}

impl RealStack {
    /// Creates the real template as stack `name` in `moto` with these parameters (besides
    /// `VendorSecretArn`, which is [`PLACEHOLDER_SECRET_ARN`] unless given); `None` (after
    /// saying so) when the venv is missing outside CI, as [`crate::template::transformed`].
    pub async fn create(
        moto: &Moto,
        test: &str,
        name: &str,
        parameters: &[(&str, &str)],
    ) -> Option<RealStack> {
        // The same venv check and skip rule as the transform's; its result is not needed here.
        if !repository_root().join(".venv/bin/python").exists() {
            crate::template::transformed(test, "unused", "unused")?;
        }
        let mut args = vec!["create".to_owned(), "--stack".to_owned(), name.to_owned()];
        if !parameters.iter().any(|(k, _)| *k == "VendorSecretArn") {
            args.extend([
                "--param".into(),
                format!("VendorSecretArn={PLACEHOLDER_SECRET_ARN}"),
            ]);
        }
        for (k, v) in parameters {
            args.extend(["--param".into(), format!("{k}={v}")]);
        }
        let created = moto_stack(test, &moto.endpoint, args).await;
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .expect("an object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
                .collect()
        };
        Some(RealStack {
            name: name.to_owned(),
            outputs: strings(&created["outputs"]),
            packages: strings(&created["packages"]),
            endpoint: moto.endpoint.clone(),
        })
    }

    /// The output `key`.
    pub fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("stack {} has no output {key}", self.name))
    }

    /// What moto made of the stack: `created` (by logical id: `type`, `physical_id`, `status`
    /// and `described`, the resource as its own service describes it) and `unnamed_records`
    /// (resources moto accepted without making them, listed without id or type).
    pub async fn describe(&self, test: &str) -> Value {
        moto_stack(
            test,
            &self.endpoint,
            vec!["describe".into(), "--stack".into(), self.name.clone()],
        )
        .await
    }
}
