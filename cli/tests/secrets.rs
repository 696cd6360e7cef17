//! Secrets never reach a log: a full sandbox run of every vendor, with token expiry, throttling
//! and failures forcing the error paths, logged at the most verbose level, contains no
//! credential, no access token and no presigned-URL signature.

use std::io::Write;
use std::sync::{Arc, Mutex};

use runbridge::sandbox::{Quiet, Sandbox, SandboxOptions};
use runbridge_core::VendorKind;
use runbridge_sim::{Fault, FaultRule};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("debug,runbridge=trace,runbridge_handlers=trace,runbridge_vendors=trace,runbridge_sim=trace")
        .with_writer(move || writer.clone())
        .init();

    let out = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::simulated(
        &SandboxOptions {
            out: out.path().to_path_buf(),
            speed: 400.0,
        },
        Arc::new(Quiet),
    )
    .await
    .unwrap();
    let sim = sandbox.sim.as_ref().unwrap().sim.clone();
    for vendor in VendorKind::ALL {
        // Throttling and server errors make the clients log retries; an expired token makes
        // them log the refresh.
        sim.faults.inject(FaultRule::new(
            vendor,
            Some("GET"),
            "",
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            1,
        ));
        sim.faults.inject(FaultRule::new(
            vendor,
            Some("GET"),
            "",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            1,
        ));
    }
    let runs = futures::future::join_all(
        runbridge::examples::DEMO
            .iter()
            .map(|(_, r)| sandbox.run(r.as_bytes())),
    )
    .await;
    for vendor in VendorKind::ALL {
        sim.tokens.expire_all(vendor, sim.clock.now());
    }
    for run in runs {
        run.expect("run completes");
    }

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("retrying"),
        "the error paths ran and were logged"
    );
    // The default accounts' credentials and the named demo profiles' (each its account's).
    let mut secrets: Vec<String> = sim
        .client_settings()
        .into_iter()
        .chain(
            runbridge::sandbox::DEMO_PROFILES
                .iter()
                .flat_map(|p| sim.account_settings(p.vendor, p.account)),
        )
        .filter(|(k, _)| k.contains("secret") || k.contains("token") || k.contains("client_id"))
        .map(|(_, v)| v)
        .collect();
    secrets.extend(sim.tokens.issued_tokens());
    assert!(
        secrets.len() >= 8,
        "credentials and tokens to look for: {secrets:?}"
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the logs: {secret}"
        );
    }
    assert!(
        !text.contains("sig="),
        "a presigned URL signature reached the logs"
    );
    assert!(
        !text.to_ascii_lowercase().contains("bearer "),
        "an Authorization header reached the logs"
    );
}
