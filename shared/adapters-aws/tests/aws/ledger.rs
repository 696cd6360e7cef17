//! S3Ledger: one claim per key under concurrency, and the recorded run read back.

use std::sync::Arc;

use runbridge_adapters_aws::S3Ledger;
use runbridge_core::{IdempotencyKey, OffsetDateTime, RunRequest};
use runbridge_handlers::ports::{Claim, Ledger, LedgerEntry, RecordedRun};

use runbridge_test_support::{moto, read, unique};

fn entry(request_id: &str, claimed_at: OffsetDateTime) -> LedgerEntry {
    let request = RunRequest::from_value(serde_json::json!({
        "vendor": "amperity", "request_id": request_id, "tenant": "acme", "config_id": "cg-0001", "run_mode": "full"
    }))
    .unwrap()
    .resolve(OffsetDateTime::now_utc());
    LedgerEntry {
        key: IdempotencyKey::for_request(&request, None),
        request,
        fingerprint: None,
        claimed_at,
        state: runbridge_core::KeyState::Claimed {
            lease_until: OffsetDateTime::UNIX_EPOCH,
        },
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap()
}

#[tokio::test]
async fn ten_concurrent_claims_make_exactly_one_owner() {
    let Some(moto) = moto("ten_concurrent_claims_make_exactly_one_owner").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let ledger = Arc::new(S3Ledger::new(moto.s3(), &bucket, "runbridge/_ledger/"));
    let id = unique("req");
    let claims = futures::future::join_all((0..10).map(|i| {
        let ledger = ledger.clone();
        let e = entry(&id, at(i));
        tokio::spawn(async move { ledger.claim(e).await })
    }))
    .await;
    let claims: Vec<Claim> = claims.into_iter().map(|c| c.unwrap().unwrap()).collect();

    let winners: Vec<&LedgerEntry> = claims
        .iter()
        .filter_map(|c| if let Claim::New(e) = c { Some(e) } else { None })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim may win: {claims:?}");
    for c in &claims {
        if let Claim::Existing(e) = c {
            assert_eq!(e, winners[0], "losers must read the winner's entry");
        }
    }
    let stored: LedgerEntry = serde_json::from_slice(
        &read(
            &moto.s3(),
            &bucket,
            &ledger.object_key(winners[0].key.as_str()),
        )
        .await,
    )
    .unwrap();
    assert_eq!(&stored, winners[0]);
}

#[tokio::test]
async fn a_recorded_run_is_what_the_next_claim_finds() {
    let Some(moto) = moto("a_recorded_run_is_what_the_next_claim_finds").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let ledger = S3Ledger::new(moto.s3(), &bucket, "runbridge/_ledger");
    assert_eq!(ledger.object_key("k"), "runbridge/_ledger/k.json");
    let id = unique("req");
    let Claim::New(mut owned) = ledger.claim(entry(&id, at(0))).await.unwrap() else {
        panic!("first claim must win")
    };
    owned
        .record_submit(RecordedRun {
            vendor_run_id: "run-42".into(),
            submitted_at: at(3),
            vendor_state: None,
        })
        .unwrap();
    ledger.update(&owned).await.unwrap();

    match ledger.claim(entry(&id, at(60))).await.unwrap() {
        Claim::Existing(found) => assert_eq!(found, owned),
        other => panic!("a redelivery must find the recorded run, got {other:?}"),
    }
}

#[tokio::test]
async fn a_released_claim_is_claimed_afresh() {
    let Some(moto) = moto("a_released_claim_is_claimed_afresh").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let ledger = S3Ledger::new(moto.s3(), &bucket, "runbridge/_ledger/");
    let first = entry(&unique("req"), at(0));
    assert!(matches!(
        ledger.claim(first.clone()).await.unwrap(),
        Claim::New(_)
    ));
    assert!(matches!(
        ledger.claim(first.clone()).await.unwrap(),
        Claim::Existing(_)
    ));
    ledger.release(&first.key).await.unwrap();
    let again = LedgerEntry {
        claimed_at: at(1),
        ..first.clone()
    };
    match ledger.claim(again).await.unwrap() {
        Claim::New(e) => assert_eq!(e.claimed_at, at(1)),
        other => panic!("expected a fresh claim, got {other:?}"),
    }
    // Releasing an absent entry is not an error.
    ledger.release(&first.key).await.unwrap();
    ledger.release(&first.key).await.unwrap();
}
