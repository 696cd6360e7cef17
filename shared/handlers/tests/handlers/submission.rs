//! The exactly-once submission protocol: `submit_claimed`, `record_run`, `adopt_submitted` and
//! which vendor errors are definite refusals.

use runbridge_core::{Attribution, KeyState, VendorKind};
use runbridge_handlers::submission::{
    adopt_submitted, is_definite_refusal, record_run, submit_claimed,
};
use runbridge_handlers::HandlerError;
use runbridge_sim::Fault;
use runbridge_vendors::{SubmittedRun, VendorError};
use VendorKind::{Adobe, Amc, Amperity, Carto};

use super::support::Ctx;

#[tokio::test]
async fn an_accepted_submit_is_recorded_as_submitted() {
    let ctx = Ctx::start().await;
    for vendor in VendorKind::ALL {
        let mut entry = ctx.claimed(vendor, "accepted-1");
        submit_claimed(
            ctx.ledger.as_ref(),
            ctx.vendor(vendor).as_ref(),
            &mut entry,
            || ctx.now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{vendor}: {e}"));
        let KeyState::Submitted { run, queue: None } = &entry.state else {
            panic!("{vendor}: {:?}", entry.state)
        };
        assert!(!run.vendor_run_id.is_empty(), "{vendor}");
        assert_eq!(ctx.stored(&entry.key).as_ref(), Some(&entry), "{vendor}");
        assert_eq!(ctx.runs_created(vendor), 1, "{vendor}");
    }
}

#[tokio::test]
async fn a_definite_refusal_releases_the_claim() {
    let ctx = Ctx::start().await;
    let refusals = [
        (
            "rejected",
            Amc,
            Fault::Answer {
                status: 400,
                body: r#"{"message":"bad request"}"#.into(),
            },
        ),
        // At AMC a 403 is an expired token (refreshed and resent); elsewhere a permission.
        (
            "forbidden",
            Adobe,
            Fault::Answer {
                status: 403,
                body: r#"{"message":"no permission"}"#.into(),
            },
        ),
        // A Retry-After beyond the client's budget: reported at once, nothing created.
        (
            "throttled",
            Amperity,
            Fault::Status {
                status: 429,
                retry_after: Some(600),
            },
        ),
    ];
    for (case, vendor, fault) in refusals {
        let mut entry = ctx.claimed(vendor, case);
        ctx.fault_submits(vendor, fault, 1);
        let err = submit_claimed(
            ctx.ledger.as_ref(),
            ctx.vendor(vendor).as_ref(),
            &mut entry,
            || ctx.now(),
        )
        .await
        .expect_err(case);
        let HandlerError::Vendor(vendor_error) = &err else {
            panic!("{case}: {err}")
        };
        assert!(is_definite_refusal(vendor_error), "{case}: {err}");
        assert_eq!(
            ctx.stored(&entry.key),
            None,
            "{case}: the claim is released"
        );
        assert_eq!(ctx.runs_created(vendor), 0, "{case}");
    }
    assert_eq!(
        ctx.sim.sim.faults.pending(),
        0,
        "every refusal was answered"
    );
}

#[tokio::test]
async fn an_unknown_outcome_adopts_the_run_the_vendor_made() {
    let ctx = Ctx::start().await;
    for vendor in [Amc, Amperity, Adobe] {
        let claimed = ctx.claimed(vendor, "lost-answer-1");
        let mut entry = claimed.clone();
        // The vendor creates the run, then the connection breaks before its answer.
        ctx.fault_submits(vendor, Fault::DropResponse, 1);
        submit_claimed(
            ctx.ledger.as_ref(),
            ctx.vendor(vendor).as_ref(),
            &mut entry,
            || ctx.now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{vendor}: reconciled at once: {e}"));
        let run = entry.run().expect("recorded");
        assert_eq!(
            run.submitted_at, claimed.claimed_at,
            "{vendor}: dated from the claim"
        );
        assert_eq!(run.vendor_state, None, "{vendor}: not the listed state");
        assert_eq!(ctx.stored(&entry.key).as_ref(), Some(&entry), "{vendor}");
        assert_eq!(ctx.runs_created(vendor), 1, "{vendor}: not submitted again");
    }
}

#[tokio::test]
async fn an_unknown_outcome_with_no_run_found_keeps_the_claim() {
    let ctx = Ctx::start().await;
    let claimed = ctx.claimed(Amc, "unknown-1");
    let mut entry = claimed.clone();
    // A 500 to the create: the vendor may have acted (here it did not).
    ctx.fault_submits(
        Amc,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    );
    let err = submit_claimed(
        ctx.ledger.as_ref(),
        ctx.vendor(Amc).as_ref(),
        &mut entry,
        || ctx.now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandlerError::Vendor(VendorError::OutcomeUnknown { .. })
        ),
        "{err}"
    );
    assert!(err.is_retryable(), "the next delivery reconciles: {err}");
    let said = err.to_string();
    assert!(
        said.contains("lists no run of this request") && said.contains("claim is kept"),
        "the error says what was checked and what happens next: {said}"
    );
    assert!(ctx.calls("amc.list") >= 1, "the vendor was asked");
    assert_eq!(ctx.stored(&entry.key), Some(claimed), "the claim stays");
    assert_eq!(ctx.runs_created(Amc), 0);
}

#[tokio::test]
async fn an_unknown_outcome_at_a_vendor_that_cannot_tell_is_unreconcilable() {
    let ctx = Ctx::start().await;
    let claimed = ctx.claimed(Carto, "carto-lost-1");
    let mut entry = claimed.clone();
    ctx.fault_submits(Carto, Fault::DropResponse, 1);
    let err = submit_claimed(
        ctx.ledger.as_ref(),
        ctx.vendor(Carto).as_ref(),
        &mut entry,
        || ctx.now(),
    )
    .await
    .unwrap_err();
    let HandlerError::Unreconcilable(message) = &err else {
        panic!("{err}")
    };
    assert!(message.contains("carto"), "{message}");
    assert!(!err.is_retryable());
    assert_eq!(err.attribution(), Attribution::Platform);
    assert_eq!(ctx.stored(&entry.key), Some(claimed), "the claim stays");
    assert_eq!(ctx.runs_created(Carto), 1, "the one run, never a second");
}

#[tokio::test]
async fn an_ambiguous_reconciliation_goes_to_an_operator() {
    let ctx = Ctx::start().await;
    let claimed = ctx.claimed(Amc, "ambiguous-1");
    let mut entry = claimed.clone();
    // Two runs of the same request after the claim (another submitter's), then a lost answer.
    ctx.submit_behind_the_ledger(&entry).await;
    ctx.submit_behind_the_ledger(&entry).await;
    ctx.fault_submits(Amc, Fault::DropResponse, 1);
    let err = submit_claimed(
        ctx.ledger.as_ref(),
        ctx.vendor(Amc).as_ref(),
        &mut entry,
        || ctx.now(),
    )
    .await
    .unwrap_err();
    let HandlerError::Vendor(VendorError::Ambiguous { candidates, .. }) = &err else {
        panic!("{err}")
    };
    assert_eq!(candidates.len(), 3, "{candidates:?}");
    assert!(!err.is_retryable(), "non-retryable: to the DLQ");
    assert_eq!(ctx.stored(&entry.key), Some(claimed), "nothing adopted");
}

#[tokio::test]
async fn record_run_takes_the_entry_another_delivery_recorded_first() {
    let ctx = Ctx::start().await;
    let stale = ctx.claimed(Amperity, "two-reconcilers-1");
    // The other delivery recorded its run, and its execution's collect failed since.
    let mut first = stale.clone();
    let theirs = SubmittedRun {
        vendor_run_id: "their-run".into(),
        vendor_state: None,
    };
    ctx.recorded(&mut first, &theirs);
    first
        .record_collect_failure("AccessDenied".into(), ctx.now(), None)
        .unwrap();
    ctx.ledger.put(&first);

    let mut mine = stale;
    let ours = SubmittedRun {
        vendor_run_id: "our-run".into(),
        vendor_state: Some("scheduled".into()),
    };
    record_run(ctx.ledger.as_ref(), &mut mine, ours, ctx.now())
        .await
        .unwrap();
    assert_eq!(mine, first, "took the stored entry whole");
    assert_eq!(
        ctx.stored(&mine.key),
        Some(first),
        "and did not overwrite it"
    );
}

#[tokio::test]
async fn record_run_records_a_run_on_a_claim() {
    let ctx = Ctx::start().await;
    let mut entry = ctx.claimed(Amperity, "record-1");
    let at = ctx.now();
    let run = SubmittedRun {
        vendor_run_id: "run-1".into(),
        vendor_state: Some("scheduled".into()),
    };
    record_run(ctx.ledger.as_ref(), &mut entry, run, at)
        .await
        .unwrap();
    let recorded = entry.run().unwrap();
    assert_eq!(
        (
            recorded.vendor_run_id.as_str(),
            recorded.submitted_at,
            recorded.vendor_state.as_deref()
        ),
        ("run-1", at, Some("scheduled"))
    );
    assert_eq!(ctx.stored(&entry.key), Some(entry));
}

#[tokio::test]
async fn adopt_submitted_records_only_a_run_made_after_the_claim() {
    let ctx = Ctx::start().await;
    // A run of the same request made before this claim: not this claim's.
    let earlier = ctx.claimed(Amc, "adopt-1");
    ctx.submit_behind_the_ledger(&earlier).await;
    ctx.advance(60.0);
    let mut entry = ctx.claimed(Amc, "adopt-1");
    assert!(!adopt_submitted(
        ctx.ledger.as_ref(),
        ctx.vendor(Amc).as_ref(),
        &mut entry,
        ctx.now()
    )
    .await
    .unwrap());
    assert_eq!(ctx.stored(&entry.key).as_ref(), Some(&entry), "unchanged");
    assert!(entry.run().is_none());

    // The run a lost answer made after it is found and recorded as of the claim.
    let lost = ctx.submit_behind_the_ledger(&entry).await;
    ctx.advance(1.0);
    assert!(adopt_submitted(
        ctx.ledger.as_ref(),
        ctx.vendor(Amc).as_ref(),
        &mut entry,
        ctx.now()
    )
    .await
    .unwrap());
    let run = entry.run().unwrap();
    assert_eq!(run.vendor_run_id, lost.vendor_run_id);
    assert_eq!(run.submitted_at, entry.claimed_at);
    assert_eq!(run.vendor_state, None);
    assert_eq!(ctx.stored(&entry.key), Some(entry));
}

#[test]
fn definite_refusals_are_the_errors_that_certainly_created_nothing() {
    let v = VendorKind::Amc;
    let message = || "m".to_owned();
    let cases = [
        (
            VendorError::Rejected {
                vendor: v,
                status: 400,
                field: None,
                message: message(),
            },
            true,
        ),
        (
            VendorError::Unauthorized {
                vendor: v,
                status: 401,
                message: message(),
            },
            true,
        ),
        (
            VendorError::Forbidden {
                vendor: v,
                status: 403,
                message: message(),
            },
            true,
        ),
        (
            VendorError::NotFound {
                vendor: v,
                message: message(),
            },
            true,
        ),
        (
            VendorError::Throttled {
                vendor: v,
                retry_after_seconds: Some(5),
                message: message(),
            },
            true,
        ),
        (
            VendorError::Unavailable {
                vendor: v,
                status: Some(503),
                message: message(),
            },
            true,
        ),
        (
            VendorError::Config {
                vendor: v,
                setting: "amc.region".into(),
                message: message(),
            },
            true,
        ),
        (
            VendorError::DownloadRefused {
                vendor: v,
                message: message(),
            },
            true,
        ),
        // May hide a created run: the claim stays.
        (
            VendorError::OutcomeUnknown {
                vendor: v,
                message: message(),
            },
            false,
        ),
        (
            VendorError::Protocol {
                vendor: v,
                message: message(),
            },
            false,
        ),
        (
            VendorError::Ambiguous {
                vendor: v,
                candidates: vec!["a".into(), "b".into()],
            },
            false,
        ),
    ];
    for (error, definite) in &cases {
        assert_eq!(is_definite_refusal(error), *definite, "{error:?}");
    }
    // Eleven variants, each once: a variant added later is classified here too.
    let names: std::collections::BTreeSet<String> = cases
        .iter()
        .map(|(e, _)| {
            format!("{e:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names.len(), cases.len(), "{names:?}");
}
