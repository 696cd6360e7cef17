//! The secret canary: every error path that once leaked a credential is driven with known secret
//! values (the simulator's client secrets and refresh tokens, canary access tokens, a presigned
//! URL's signature and session token), then every captured log line and every error (Display and
//! Debug) is searched for them. Zero hits.
//!
//! Last recorded (`docs/RELIABILITY.md` at `12e28e1`, when redaction by construction landed in
//! `65ba1be`): 31 error paths driven, 0 hits, against 166 hits before that change. The test
//! requires at least 28 paths, so a path that stops being driven is noticed.

mod contract;
mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};

use runbridge_core::VendorKind;
use runbridge_sim::{auth, Fault, FaultRule};
use runbridge_vendors::RunRef;
use util::Harness;

const ACCESS: &str = "CANARY-ACCESS-TOKEN-7c1d";
const REFRESH: &str = "CANARY-REFRESH-TOKEN-93ab";
const SIGNATURE: &str = "CANARYSIGNATURE0f0f0f";
const SESSION: &str = "CANARYSESSIONTOKEN4242";

/// Log lines written while a test runs (the simulator's own lines are fixture output and left
/// out: it logs the faults it was told to inject, canaries included).
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

fn token_path(kind: VendorKind) -> &'static str {
    match kind {
        VendorKind::Amc => "/auth/o2/token",
        VendorKind::Amperity => "/oauth2/token",
        VendorKind::Adobe => runbridge_sim::adobe::TOKEN_PATH,
        VendorKind::Carto => "/oauth/token",
    }
}

fn secrets(kind: VendorKind) -> Vec<String> {
    vec![
        auth::client_secret(kind),
        auth::refresh_token(kind),
        ACCESS.into(),
        REFRESH.into(),
        SIGNATURE.into(),
        SESSION.into(),
    ]
}

fn signed_url() -> String {
    format!(
        "https://results.example.s3.amazonaws.com/part-0.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={SESSION}"
    )
}

/// Every scenario: (name, vendor, fault rule, which call). Each runs on a fresh simulator so no
/// cached token skips the token endpoint.
fn scenarios() -> Vec<(String, VendorKind, FaultRule, &'static str)> {
    let mut out = Vec::new();
    for kind in VendorKind::ALL {
        let echo = format!(
            "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
            auth::client_id(kind),
            auth::client_secret(kind),
            auth::refresh_token(kind)
        );
        out.push((
            format!("{kind}: token reply with expires_in as a string"),
            kind,
            FaultRule::new(
                kind,
                Some("POST"),
                token_path(kind),
                Fault::Answer {
                    status: 200,
                    body: format!(
                        r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","token_type":"bearer","expires_in":"3600"}}"#
                    ),
                },
                1,
            ),
            "submit",
        ));
        for status in [500, 502, 503, 400, 401] {
            out.push((
                format!("{kind}: token endpoint {status} echoing the request"),
                kind,
                FaultRule::new(
                    kind,
                    Some("POST"),
                    token_path(kind),
                    Fault::Answer {
                        status,
                        body: echo.clone(),
                    },
                    100,
                ),
                "submit",
            ));
        }
        out.push((
            format!("{kind}: create 500 echoing a signed URL"),
            kind,
            FaultRule::new(
                kind,
                Some("POST"),
                match kind {
                    VendorKind::Amc => "/workflowExecutions",
                    VendorKind::Amperity => "/workflow/runs",
                    VendorKind::Adobe => "/flowservice/runs",
                    VendorKind::Carto => "/job",
                },
                Fault::Answer {
                    status: 500,
                    body: format!("upstream failed fetching {}", signed_url()),
                },
                100,
            ),
            "submit",
        ));
    }
    for body in [
        format!(r#"{{"downloadUrls": "{}"}}"#, signed_url()),
        format!(r#"{{"downloadUrls": [{{"url": "{}"}}]}}"#, signed_url()),
        format!(r#"<Error>{}</Error>"#, signed_url()),
    ] {
        out.push((
            format!("amc: unparsable downloadUrls {body}"),
            VendorKind::Amc,
            FaultRule::new(
                VendorKind::Amc,
                Some("GET"),
                "/downloadUrls",
                Fault::Answer { status: 200, body },
                100,
            ),
            "results",
        ));
    }
    out
}

#[tokio::test]
async fn no_secret_reaches_an_error_or_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace,runbridge_sim=off,hyper=off,reqwest=off,h2=off")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut hits = Vec::new();
    let mut errors = 0;
    for (name, kind, rule, call) in scenarios() {
        let h = Harness::start(1.0).await;
        h.sim.sim.faults.inject(rule);
        let vendor = h.vendor(kind);
        let req = contract::valid_request(kind);
        let error = match call {
            "submit" => vendor.submit(&req, &util::key(&req)).await.err(),
            _ => vendor
                .results(RunRef {
                    request: &req,
                    vendor_run_id: "0f0f0f0f-canary",
                })
                .await
                .err(),
        };
        let Some(error) = error else {
            hits.push(format!("{name}: no error at all (the fault did not bite)"));
            continue;
        };
        errors += 1;
        let text = format!("{error} {error:?}");
        for secret in secrets(kind) {
            if text.contains(&secret) {
                hits.push(format!("{name}: error carries `{secret}`: {error}"));
            }
        }
        h.sim.stop().await;
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "no log line was captured");
    for kind in VendorKind::ALL {
        for secret in secrets(kind) {
            for line in logs.lines().filter(|l| l.contains(&secret)) {
                hits.push(format!("log line carries `{secret}`: {line}"));
            }
        }
    }
    assert!(errors >= 28, "only {errors} error paths were driven");
    assert!(
        hits.is_empty(),
        "{} canary hits:\n{}",
        hits.len(),
        hits.join("\n")
    );
}
