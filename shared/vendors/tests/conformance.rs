//! One conformance suite every vendor passes: the `Vendor` contract of `contract::check_vendor_contract`,
//! run once per vendor on a fresh simulator with a valid request of that vendor.

mod contract;
mod util;

use contract::valid_request;
use runbridge_core::VendorKind;
use runbridge_vendors::CancelOutcome;
use util::Harness;

#[tokio::test]
async fn amc_keeps_the_vendor_contract() {
    let h = Harness::start(1.0).await;
    let seen =
        contract::check_vendor_contract(&h, VendorKind::Amc, valid_request(VendorKind::Amc)).await;
    // AMC writes CSV files and can cancel; both must have been exercised, not skipped.
    assert_eq!(seen.files_downloaded, 2);
    assert_eq!(seen.cancel, Some(CancelOutcome::Requested));
    assert!(seen.found_submitted);
}

#[tokio::test]
async fn amperity_keeps_the_vendor_contract() {
    let h = Harness::start(1.0).await;
    let seen = contract::check_vendor_contract(
        &h,
        VendorKind::Amperity,
        valid_request(VendorKind::Amperity),
    )
    .await;
    assert_eq!(seen.files_downloaded, 0, "workflow runs produce no file");
    assert_eq!(seen.cancel, Some(CancelOutcome::Requested));
    assert!(seen.found_submitted);
}

#[tokio::test]
async fn adobe_keeps_the_vendor_contract() {
    let h = Harness::start(1.0).await;
    let seen =
        contract::check_vendor_contract(&h, VendorKind::Adobe, valid_request(VendorKind::Adobe))
            .await;
    assert_eq!(
        seen.files_downloaded, 0,
        "flow runs ingest into Platform, no file"
    );
    assert_eq!(
        seen.cancel,
        Some(CancelOutcome::Unsupported),
        "Flow Service cannot stop a run"
    );
    assert!(seen.found_submitted);
}

#[tokio::test]
async fn carto_keeps_the_vendor_contract() {
    let h = Harness::start(1.0).await;
    let seen =
        contract::check_vendor_contract(&h, VendorKind::Carto, valid_request(VendorKind::Carto))
            .await;
    assert_eq!(seen.files_downloaded, 1, "the export query's CSV");
    assert_eq!(seen.cancel, Some(CancelOutcome::Requested));
    assert!(
        !seen.found_submitted,
        "CARTO documents that it cannot reconcile"
    );
}

/// A 2xx answer to a create that cannot be read means the vendor may have created the run: the
/// outcome is unknown (reconcile, never resend blindly) for every vendor, whatever broke the
/// answer — not JSON, the wrong shape, or no run id.
#[tokio::test]
async fn an_unreadable_2xx_create_is_outcome_unknown_for_every_vendor() {
    use runbridge_sim::{Fault, FaultRule};
    use runbridge_vendors::VendorError;
    let bodies = ["<html>gateway</html>", "[]", "{}", "{\"id\": 7}"];
    let h = Harness::start(1.0).await;
    let mut wrong = Vec::new();
    for kind in VendorKind::ALL {
        let path = match kind {
            VendorKind::Amc => "/workflowExecutions",
            VendorKind::Amperity => "/workflow/runs",
            VendorKind::Adobe => "/flowservice/runs",
            VendorKind::Carto => "/job",
        };
        for body in bodies {
            let vendor = h.vendor(kind);
            let req = valid_request(kind);
            h.sim.sim.faults.inject(FaultRule::new(
                kind,
                Some("POST"),
                path,
                Fault::ReplaceBody { body: body.into() },
                1,
            ));
            let before = h.runs_created(kind);
            match vendor.submit(&req, &util::key(&req)).await {
                Err(VendorError::OutcomeUnknown { .. }) => {}
                other => wrong.push(format!("{kind} answered {body:?}: {other:?}")),
            }
            assert_eq!(
                h.runs_created(kind),
                before + 1,
                "{kind}: the fault let the create through"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
