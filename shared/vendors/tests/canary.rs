//! The secret canary: every error path that once leaked a credential is driven with known secret
//! values (the simulator's client secrets and refresh tokens, canary access tokens, a presigned
//! URL's signature and session token), then every captured log line and every error (Display and
//! Debug) is searched for them. Zero hits.
//!
//! Last recorded (`docs/RELIABILITY.md` at `12e28e1`, when redaction by construction landed in
//! `65ba1be`): 31 error paths driven, 0 hits, against 166 hits before that change. The test
//! requires at least 28 paths, so a path that stops being driven is noticed.
//!
//! The echo test ([`no_echo_of_a_secret_reaches_an_error_or_a_log_line`]) has every vendor's
//! token endpoint and API answer with the request itself — form, `Authorization` header, URL —
//! in every wrapping ([`EchoShape`]) and at every error status, CARTO's static API token on a
//! 401, and AMC's `downloadUrls` 400 quoting a presigned URL: the redactor
//! (`runbridge_core::redact`) must remove every value, whatever surrounds it.

mod contract;
mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};

use runbridge_core::VendorKind;
use runbridge_sim::{auth, EchoShape, Fault, FaultRule};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::RunRef;
use runbridge_vendors::Settings;
use util::Harness;

const ACCESS: &str = "CANARY-ACCESS-TOKEN-7c1d";
const REFRESH: &str = "CANARY-REFRESH-TOKEN-93ab";
const SIGNATURE: &str = "CANARYSIGNATURE0f0f0f";
const SESSION: &str = "CANARYSESSIONTOKEN4242";
const CARTO_API_TOKEN: &str = "CANARY-CARTO-API-TOKEN-5e5e";

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

/// The API paths of `kind` an echo is injected on: (method, path fragment, which call).
fn api_paths(kind: VendorKind) -> Vec<(&'static str, &'static str, &'static str)> {
    let (create, status) = match kind {
        VendorKind::Amc => ("/workflowExecutions", "/workflowExecutions/"),
        VendorKind::Amperity => ("/workflow/runs", "/workflow/runs/"),
        VendorKind::Adobe => ("/flowservice/runs", "/flowservice/runs/"),
        VendorKind::Carto => ("/job", "/job/"),
    };
    let mut out = vec![("POST", create, "submit"), ("GET", status, "status")];
    if kind == VendorKind::Amc {
        out.push(("GET", "/downloadUrls", "results"));
    }
    out
}

/// Drives `call` of `kind`'s client and returns the error (`None`: the call succeeded).
async fn drive(
    vendor: &dyn runbridge_vendors::Vendor,
    kind: VendorKind,
    call: &str,
) -> Option<runbridge_vendors::VendorError> {
    let req = contract::valid_request(kind);
    let run = RunRef {
        request: &req,
        vendor_run_id: "0f0f0f0f-canary",
    };
    match call {
        "submit" => vendor.submit(&req, &util::key(&req)).await.err(),
        "status" => vendor.status(run).await.err(),
        _ => vendor.results(run).await.err(),
    }
}

/// `secret` in the forms a leak could take (as is, URL-encoded, JSON-escaped).
fn leak_forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        json.trim_matches('"').to_owned(),
    ]
}

#[tokio::test]
async fn no_echo_of_a_secret_reaches_an_error_or_a_log_line() {
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
    let mut issued = Vec::new();
    let mut check =
        |name: &str, error: Option<runbridge_vendors::VendorError>, secrets: &[String]| {
            let Some(error) = error else {
                hits.push(format!("{name}: no error at all (the fault did not bite)"));
                return;
            };
            errors += 1;
            let text = format!("{error} {error:?}");
            for secret in secrets {
                for form in leak_forms(secret) {
                    if text.contains(&form) {
                        hits.push(format!("{name}: error carries `{form}`: {error}"));
                    }
                }
            }
        };
    for kind in VendorKind::ALL {
        for shape in EchoShape::ALL {
            for status in [400, 401, 403, 500] {
                let h = util::Harness::start(1.0).await;
                h.sim.sim.faults.inject(FaultRule::new(
                    kind,
                    Some("POST"),
                    token_path(kind),
                    Fault::Echo { status, shape },
                    100,
                ));
                let error = drive(h.vendor(kind).as_ref(), kind, "submit").await;
                check(
                    &format!("{kind}: token endpoint {status} echoing as {shape:?}"),
                    error,
                    &secrets(kind),
                );
                h.sim.stop().await;
            }
            for (method, path, call) in api_paths(kind) {
                for status in [400, 401, 403, 404, 409, 500] {
                    let h = util::Harness::start(1.0).await;
                    h.sim.sim.faults.inject(FaultRule::new(
                        kind,
                        Some(method),
                        path,
                        Fault::Echo { status, shape },
                        100,
                    ));
                    let error = drive(h.vendor(kind).as_ref(), kind, call).await;
                    let mut all = secrets(kind);
                    all.extend(h.sim.sim.tokens.issued_tokens());
                    issued.extend(h.sim.sim.tokens.issued_tokens());
                    check(
                        &format!("{kind}: {call} {status} echoing as {shape:?}"),
                        error,
                        &all,
                    );
                    h.sim.stop().await;
                }
            }
        }
    }
    // CARTO's long-lived API token, echoed by a 401 (the one status where it is sent twice).
    for shape in EchoShape::ALL {
        let h = util::Harness::start(1.0).await;
        let mut settings = Settings::new();
        settings.set("carto.api_base", h.sim.base_url());
        settings.set("carto.download_allow_loopback", "true");
        settings.set("carto.api_token", CARTO_API_TOKEN);
        let carto = (runbridge_vendors::carto::ENTRY.build)(
            &settings,
            &RetryConfig::fast(),
            &runbridge_vendors::rate::InProcessBudget::process(),
        )
        .expect("client");
        h.sim.sim.faults.inject(FaultRule::new(
            VendorKind::Carto,
            None,
            "/job",
            Fault::Echo { status: 401, shape },
            100,
        ));
        let error = drive(carto.as_ref(), VendorKind::Carto, "submit").await;
        check(
            &format!("carto: static API token echoed by a 401 as {shape:?}"),
            error,
            &[CARTO_API_TOKEN.to_owned()],
        );
        h.sim.stop().await;
    }
    // AMC's downloadUrls refusing with a 400 that quotes a presigned URL: never registered (the
    // process never received it), so removed by its shape, in every wrapping.
    let url = signed_url();
    for body in [
        format!(r#"{{"code":"400","details":"cannot sign {url}"}}"#),
        format!(
            r#"{{"code":"400","details":"{}"}}"#,
            url.replace('/', "\\/")
        ),
        format!(
            "code=400&details={}",
            url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
        ),
        format!(
            r#"{{"code":"400","details":"X-Amz-Signature={SIGNATURE} X-Amz-Security-Token: {SESSION}"}}"#
        ),
        format!("<Error><Message>{url}</Message></Error>"),
    ] {
        let h = util::Harness::start(1.0).await;
        h.sim.sim.faults.inject(FaultRule::new(
            VendorKind::Amc,
            Some("GET"),
            "/downloadUrls",
            Fault::Answer {
                status: 400,
                body: body.clone(),
            },
            100,
        ));
        let error = drive(
            h.vendor(VendorKind::Amc).as_ref(),
            VendorKind::Amc,
            "results",
        )
        .await;
        check(
            &format!("amc: downloadUrls 400 quoting {body}"),
            error,
            &[SIGNATURE.to_owned(), SESSION.to_owned()],
        );
        h.sim.stop().await;
    }

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "no log line was captured");
    let mut every: Vec<String> = VendorKind::ALL.into_iter().flat_map(secrets).collect();
    every.extend(issued);
    every.push(CARTO_API_TOKEN.into());
    for secret in every {
        for form in leak_forms(&secret) {
            for line in logs.lines().filter(|l| l.contains(&form)) {
                hits.push(format!("log line carries `{form}`: {line}"));
            }
        }
    }
    assert!(errors >= 280, "only {errors} echo paths were driven");
    assert!(
        hits.is_empty(),
        "{} canary hits:\n{}",
        hits.len(),
        hits.join("\n")
    );
}

/// Hostile numbers in a token answer (`expires_in` of u64::MAX overflowed the clock, exit 101):
/// every vendor's client takes the token or reports an error, never panics, and a token it
/// takes is used (the submit reaches the API).
#[tokio::test]
async fn a_token_answer_with_hostile_numbers_is_an_error_or_a_token_never_a_panic() {
    for kind in VendorKind::ALL {
        for expires_in in [
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "0",
            "-1",
            "1e400",
            "1.5",
            "\"3600\"",
            "null",
        ] {
            let h = util::Harness::start(1.0).await;
            let body = format!(
                r#"{{"access_token":"hostile-token-{expires_in}","token_type":"bearer","expires_in":{expires_in}}}"#
            );
            h.sim.sim.faults.inject(FaultRule::new(
                kind,
                Some("POST"),
                token_path(kind),
                Fault::Answer { status: 200, body },
                100,
            ));
            // Twice: the second call reads the cached token (the expiry arithmetic).
            for _ in 0..2 {
                if let Some(error) = drive(h.vendor(kind).as_ref(), kind, "submit").await {
                    // The simulator refuses the unknown token, or the answer was unreadable.
                    assert!(!error.to_string().is_empty());
                }
            }
            h.sim.stop().await;
        }
    }
}
