//! The README's main command, as a test: every vendor's example runs end to end on the embedded
//! simulators through the deployed state machine, and lands in the S3 layout with a manifest;
//! two AMC accounts (NA and EU, named profiles with different refresh tokens) run at the same
//! time, beside Amperity's default profile and a second tenant, and Adobe's and CARTO's default
//! profiles.

use std::sync::Arc;

use runbridge::sandbox::{Quiet, Sandbox, SandboxOptions};
use runbridge_core::{Manifest, RunState, VendorKind};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_lands_every_vendor_with_manifests() {
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
    let runs = futures::future::join_all(
        runbridge::examples::DEMO
            .iter()
            .map(|(_, r)| sandbox.run(r.as_bytes())),
    )
    .await;
    let sim = &sandbox.sim.as_ref().unwrap().sim;
    let mut profiles = std::collections::BTreeSet::new();
    for run in runs {
        let run = run.expect("run completes");
        assert_eq!(run.state, RunState::Succeeded, "{run:?}");
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(&run.manifest).unwrap()).unwrap();
        assert_eq!(manifest.vendor_run_id, run.vendor_run_id);
        assert_eq!(manifest.state, RunState::Succeeded);
        assert!(manifest.polls >= 1);
        assert!(
            manifest.timeline.len() >= 2,
            "timeline records state changes: {:?}",
            manifest.timeline
        );
        // Every timeline entry is the vendor's own word: Amperity's first is "scheduled".
        assert_ne!(manifest.timeline[0].vendor_state, "submitted");
        if manifest.vendor == runbridge_core::VendorKind::Amperity {
            assert_eq!(
                manifest.timeline[0].vendor_state, "scheduled",
                "{:?}",
                manifest.timeline
            );
        }
        let run_dir = run.manifest.parent().unwrap();
        let dir_name = run_dir.to_string_lossy();
        assert!(
            dir_name.contains(&format!("vendor={}/date=", manifest.vendor)),
            "{dir_name}"
        );
        assert!(
            dir_name.ends_with(&format!("run={}", manifest.key)),
            "{dir_name}"
        );
        let expected_files = match manifest.vendor {
            VendorKind::Amc => 2,
            VendorKind::Carto => 1,
            VendorKind::Amperity | VendorKind::Adobe => 0,
        };
        assert_eq!(
            manifest.files.len(),
            expected_files,
            "{:?}",
            manifest.vendor
        );
        for (i, file) in manifest.files.iter().enumerate() {
            assert!(file.key.ends_with(&format!("part-{i:05}.csv")));
            let bytes = std::fs::read(out.path().join(&file.key)).unwrap();
            assert_eq!(bytes.len() as u64, file.size_bytes);
            assert_eq!(hex::encode(Sha256::digest(&bytes)), file.sha256);
            assert!(file.rows > 1, "header plus data rows");
        }
        // The profile the request named (or `default`) is in the manifest, and its key.
        let (name, request) = runbridge::examples::DEMO
            .iter()
            .find(|(_, r)| {
                r.contains(&format!(
                    "\"{}\"",
                    manifest.request.request_id.as_deref().unwrap()
                ))
            })
            .expect("the run of one example");
        assert_eq!(manifest.profile, manifest.request.profile(), "{name}");
        let named = request.contains("\"profile\"");
        assert_eq!(manifest.profile != "default", named, "{name}");
        if named {
            assert!(
                manifest
                    .key
                    .starts_with(&format!("{}.{}.", manifest.vendor, manifest.profile)),
                "{}",
                manifest.key
            );
        }
        profiles.insert((manifest.vendor, manifest.profile.clone()));
    }
    // Both AMC accounts (NA and EU, both named profiles) and both Amperity tenants ran, one
    // vendor run each, each with its own account's token.
    let named = |vendor: VendorKind| -> Vec<&str> {
        profiles
            .iter()
            .filter(|(v, _)| *v == vendor)
            .map(|(_, p)| p.as_str())
            .collect()
    };
    assert_eq!(named(VendorKind::Amc), ["amc-eu", "amc-na"]);
    assert_eq!(named(VendorKind::Amperity), ["amperity-b", "default"]);
    assert_eq!(named(VendorKind::Adobe), ["default"]);
    assert_eq!(named(VendorKind::Carto), ["default"]);
    let refresh_token = |profile: &str| {
        let demo = runbridge::sandbox::DEMO_PROFILES
            .iter()
            .find(|p| p.name == profile)
            .unwrap();
        sim.account_settings(demo.vendor, demo.account)
            .into_iter()
            .find(|(k, _)| k == "amc.refresh_token")
            .unwrap()
            .1
    };
    assert_ne!(refresh_token("amc-na"), refresh_token("amc-eu"));
    for (vendor, profiles_of_vendor) in [
        (VendorKind::Amc, 2),
        (VendorKind::Amperity, 2),
        (VendorKind::Adobe, 1),
        (VendorKind::Carto, 1),
    ] {
        assert_eq!(
            profiles.iter().filter(|(v, _)| *v == vendor).count(),
            profiles_of_vendor,
            "{vendor}: {profiles:?}"
        );
        assert_eq!(
            sim.control.runs_created(vendor),
            profiles_of_vendor as u64,
            "{vendor}: one vendor run per request"
        );
    }
    for vendor in [VendorKind::Amc, VendorKind::Amperity] {
        for account in runbridge_sim::auth::ACCOUNTS {
            assert!(
                sim.tokens.issued_count_for(vendor, account) >= 1,
                "{vendor} account {account} obtained its own token"
            );
        }
    }
    // Nothing left in staging, nothing partial anywhere.
    let leftovers: Vec<_> = walk(out.path())
        .into_iter()
        .filter(|p| p.contains(".partial") || p.contains("_staging/"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        sandbox.events.published().len(),
        runbridge::examples::DEMO.len(),
        "one Run Completed event per run"
    );
    // Each event names its run's profile, as its manifest does.
    let announced: std::collections::BTreeSet<_> = sandbox
        .events
        .published()
        .into_iter()
        .map(|e| (e.vendor, e.profile))
        .collect();
    assert_eq!(announced, profiles);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

/// `runbridge run` interrupted (Ctrl-C): the local execution is stopped like a deployed one, the
/// stop handler cancels the vendor run, and the run ends with a CANCELLED manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_sandbox_run_cancels_the_vendor_run() {
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
    let sim = &sandbox.sim.as_ref().unwrap().sim;
    sim.control.push_script(
        VendorKind::Carto,
        runbridge_sim::RunScript {
            outcome: runbridge_sim::Outcome::NeverFinish,
            ..runbridge_sim::RunScript::default()
        },
    );
    let request = runbridge::examples::DEMO
        .iter()
        .find(|(name, _)| name.contains("carto"))
        .unwrap()
        .1;
    let interrupt = tokio::time::sleep(std::time::Duration::from_millis(300));
    let run = sandbox
        .run_until(request.as_bytes(), interrupt)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Cancelled, "{run:?}");
    assert!(
        run.reason.as_deref().unwrap().contains("cancelled"),
        "{run:?}"
    );
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(&run.manifest).unwrap()).unwrap();
    assert_eq!(manifest.state, RunState::Cancelled);
    assert_eq!(sim.control.requests("carto.cancel"), 1);
}
