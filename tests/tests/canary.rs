//! The secret canary, end to end: every vendor's token endpoint, API and downloads answer with
//! the request they received echoed back (form, `Authorization` header, URL; JSON, JSON with
//! escaped slashes, URL-encoded and plain text), or quote a presigned URL, while runs go through
//! the real handlers and the deployed state machine. Then every output is searched for every
//! secret the run held — the simulators' client secrets and refresh tokens (both accounts), every
//! access token they issued, every presigned URL's signature, canary values for a signature and a
//! session token — in any of the encodings a leak could take: log lines (all levels, captured
//! raw, without the redacting writer the functions and the CLI put in front of them), trigger
//! errors, dead-letter reasons, manifests, ledger entries and every other file written, the
//! published events, the executions' errors and causes, and the metrics. Zero hits.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runbridge_adapters_local::MemoryDeadLetters;
use runbridge_core::VendorKind::{self, Adobe, Amc, Amperity, Carto};
use runbridge_handlers::DeadLetters;
use runbridge_sim::{auth, EchoShape, Fault, FaultRule};
use runbridge_system_tests::harness::{
    example_request, Harness, HarnessOptions, AMC_EU, AMC_EU_INSTANCE,
};
use runbridge_vendors::http::RetryConfig;

const SIGNATURE: &str = "CANARYSIGNATURE0f0f0f";
const SESSION: &str = "CANARYSESSIONTOKEN4242";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn token_path(kind: VendorKind) -> &'static str {
    match kind {
        Amc => "/auth/o2/token",
        Amperity => "/oauth2/token",
        Adobe => runbridge_sim::adobe::TOKEN_PATH,
        Carto => "/oauth/token",
    }
}

fn create_path(kind: VendorKind) -> &'static str {
    match kind {
        Amc => "/workflowExecutions",
        Amperity => "/workflow/runs",
        Adobe => "/flowservice/runs",
        Carto => "/job",
    }
}

fn status_path(kind: VendorKind) -> &'static str {
    match kind {
        Amc => "/workflowExecutions/",
        Amperity => "/workflow/runs/",
        Adobe => "/flowservice/runs/",
        Carto => "/job/",
    }
}

/// One case: a name, the faults it injects, and the vendor whose example request it delivers.
struct Case {
    name: String,
    vendor: VendorKind,
    faults: Vec<FaultRule>,
    /// Run under the named AMC profile of the simulator's second account.
    named_profile: bool,
}

fn echo(kind: VendorKind, method: &str, path: &str, status: u16, shape: EchoShape) -> FaultRule {
    FaultRule::new(
        kind,
        Some(method),
        path,
        Fault::Echo { status, shape },
        1_000,
    )
}

fn signed_url() -> String {
    format!(
        "https://results.example.s3.amazonaws.com/part-0.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={SESSION}"
    )
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in VendorKind::ALL {
        let shapes = EchoShape::ALL;
        for (i, (method, path, status)) in [
            ("POST", token_path(kind), 400),
            ("POST", token_path(kind), 401),
            ("POST", token_path(kind), 500),
            ("POST", create_path(kind), 400),
            ("POST", create_path(kind), 403),
            ("POST", create_path(kind), 500),
            ("GET", status_path(kind), 401),
            ("GET", status_path(kind), 400),
        ]
        .into_iter()
        .enumerate()
        {
            let shape = shapes[i % shapes.len()];
            out.push(Case {
                name: format!("{kind}-{i}"),
                vendor: kind,
                faults: vec![echo(kind, method, path, status, shape)],
                named_profile: false,
            });
        }
    }
    // Results: AMC's listing refused with a presigned URL quoted, its download answering with
    // the URL echoed, CARTO's export echoing the bearer token.
    for (i, shape) in EchoShape::ALL.into_iter().enumerate() {
        out.push(Case {
            name: format!("amc-download-{i}"),
            vendor: Amc,
            faults: vec![echo(Amc, "GET", "/__sim/files/", 403, shape)],
            named_profile: false,
        });
        out.push(Case {
            name: format!("carto-export-{i}"),
            vendor: Carto,
            faults: vec![echo(Carto, "POST", "/query", 401, shape)],
            named_profile: false,
        });
        // The named profile (the second account's credentials): its token endpoint and API
        // echo too.
        for (j, (method, path, status)) in [
            ("POST", token_path(Amc), 400),
            ("POST", create_path(Amc), 401),
            ("GET", "/__sim/files/", 403),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(Case {
                name: format!("amc-eu-{i}-{j}"),
                vendor: Amc,
                faults: vec![echo(Amc, method, path, status, shape)],
                named_profile: true,
            });
        }
    }
    for (i, body) in [
        format!(r#"{{"code":"400","details":"cannot sign {}"}}"#, signed_url()),
        format!(
            r#"{{"code":"400","details":"{}"}}"#,
            signed_url().replace('/', "\\/")
        ),
        format!(r#"{{"code":"400","details":"X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={SESSION}"}}"#),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(Case {
            name: format!("amc-listing-{i}"),
            vendor: Amc,
            faults: vec![FaultRule::new(
                Amc,
                Some("GET"),
                "/downloadUrls",
                Fault::Answer { status: 400, body },
                1_000,
            )],
            named_profile: false,
        });
    }
    out
}

/// `secret` in the forms a leak could take: as is, URL-encoded, JSON-escaped.
fn leak_forms(secret: &str) -> Vec<String> {
    let encoded: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        encoded,
        json.trim_matches('"').to_owned(),
    ]
}

/// Every file under `dir`, as (path, lossy text).
fn files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_echoed_secret_reaches_any_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(
                "trace,runbridge_sim=off,hyper=off,hyper_util=off,reqwest=off,h2=off,rustls=off",
            )
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("one subscriber in this test binary");
    let metrics = Captured::default();
    let sink = metrics.clone();
    runbridge_handlers::metrics::set_sink(Some(Arc::new(move |line: &str| {
        let _ = writeln!(sink.clone(), "{line}");
    })));

    let h = Harness::start_with(HarnessOptions {
        retry: RetryConfig {
            request_timeout: Duration::from_secs(2),
            ..RetryConfig::fast()
        },
        ..HarnessOptions::default()
    })
    .await;
    h.sim.sim.recorder.enable();
    let dead_letters = MemoryDeadLetters::default();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let cases = cases();
    let mut ended = 0;
    for case in &cases {
        h.sim.sim.faults.clear();
        for rule in &case.faults {
            h.sim.sim.faults.inject(rule.clone());
        }
        let id = format!("canary-{}", case.name);
        let mut body = example_request(case.vendor, &id);
        if case.named_profile {
            let mut r: serde_json::Value = serde_json::from_slice(&body).unwrap();
            r["profile"] = AMC_EU.into();
            r["instance_id"] = AMC_EU_INSTANCE.into();
            body = serde_json::to_vec(&r).unwrap();
        }
        match h.trigger.handle_bytes(&body, None).await {
            Ok(_) => {
                let request = runbridge_core::RunRequest::from_json(&body).unwrap();
                let name = runbridge_core::IdempotencyKey::for_request(
                    &request.resolve(runbridge_core::OffsetDateTime::now_utc()),
                    None,
                )
                .execution_name();
                match tokio::time::timeout(Duration::from_secs(60), h.executions.wait(&name)).await
                {
                    Ok(Some(execution)) => {
                        ended += 1;
                        outputs.push((
                            format!("{}: execution", case.name),
                            format!("{execution:?}"),
                        ));
                    }
                    Ok(None) => {}
                    Err(_) => outputs.push((case.name.clone(), "execution did not end".into())),
                }
            }
            Err(e) => {
                ended += 1;
                outputs.push((
                    format!("{}: trigger error", case.name),
                    format!("{e} {e:?}"),
                ));
                // As the trigger function does with a request that can never succeed.
                if !e.is_retryable() {
                    let reason = runbridge_lambda::trigger::reason_for(&e, None);
                    dead_letters
                        .send(&String::from_utf8_lossy(&body), &reason)
                        .await
                        .unwrap();
                }
            }
        }
    }
    h.sim.sim.faults.clear();
    assert_eq!(ended, cases.len(), "every case ended: {outputs:#?}");

    // What every output is searched for.
    let mut secrets: Vec<String> = vec![SIGNATURE.into(), SESSION.into()];
    for kind in VendorKind::ALL {
        for account in auth::ACCOUNTS {
            secrets.push(auth::client_secret_of(kind, account));
            secrets.push(auth::refresh_token_of(kind, account));
        }
    }
    secrets.extend(h.sim.sim.tokens.issued_tokens());
    for exchange in h.sim.sim.recorder.exchanges() {
        let Some(answer) = &exchange.response else {
            continue;
        };
        for url in answer.to_string().split('"').filter(|s| s.contains("sig=")) {
            if let Some((_, query)) = url.split_once('?') {
                for pair in query.split('&') {
                    if let Some(("sig", value)) = pair.split_once('=') {
                        secrets.push(value.to_owned());
                    }
                }
            }
        }
    }
    assert!(
        secrets.len() > 2 + 16 + 10,
        "too few secrets to search for: {secrets:?}"
    );

    let mut sources: Vec<(String, String)> = outputs;
    sources.push(("log lines".into(), logs.text()));
    sources.push(("metrics".into(), metrics.text()));
    for (body, reason) in dead_letters.sent() {
        sources.push(("dead letter".into(), format!("{body} {reason:?}")));
    }
    for event in h.events.published() {
        sources.push(("event".into(), serde_json::to_string(&event).unwrap()));
    }
    let written = files(h.out.path());
    assert!(
        written.iter().any(|(p, _)| p.ends_with("manifest.json")),
        "no manifest was written"
    );
    assert!(
        written.iter().any(|(p, _)| p.contains("_ledger")),
        "no ledger entry was written"
    );
    sources.extend(written);
    assert!(
        !dead_letters.sent().is_empty(),
        "no request was dead-lettered"
    );

    let mut hits = Vec::new();
    for (source, text) in &sources {
        for secret in &secrets {
            for form in leak_forms(secret) {
                if let Some(at) = text.find(&form) {
                    let around: String = text[at..].chars().take(form.len() + 160).collect();
                    hits.push(format!("{source}: `{form}` in …{around}…"));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "{} canary hits:\n{}",
        hits.len(),
        hits.join("\n")
    );
}
