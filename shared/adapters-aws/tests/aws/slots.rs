//! S3Slots: at most `limit` holders under concurrency, renewals and releases only by the
//! holder, and a lease that ran out taken over (conditional writes: `If-None-Match`, `If-Match`).

use std::sync::Arc;

use runbridge_adapters_aws::S3Slots;
use runbridge_core::{ConcurrencyLimit, IdempotencyKey, OffsetDateTime};
use runbridge_handlers::ports::Slots;
use time::Duration;

use runbridge_test_support::{moto, unique};

fn key(name: &str) -> IdempotencyKey {
    IdempotencyKey::from_string(name.to_owned())
}

#[tokio::test]
async fn twenty_concurrent_acquires_of_three_slots_make_three_holders() {
    let Some(moto) = moto("twenty_concurrent_acquires_of_three_slots_make_three_holders").await
    else {
        return;
    };
    let bucket = moto.bucket().await;
    let slots = Arc::new(S3Slots::new(moto.s3(), &bucket, "runbridge/_ledger/slots/"));
    let limit = ConcurrencyLimit {
        scope: unique("amc.default.inst"),
        limit: 3,
    };
    let now = OffsetDateTime::now_utc();
    let results = futures::future::join_all((0..20).map(|i| {
        let (slots, limit) = (slots.clone(), limit.clone());
        tokio::spawn(async move {
            let holder = key(&format!("amc-run{i:02}"));
            let lease = slots
                .acquire(&limit, &holder, now, now + Duration::minutes(5))
                .await
                .unwrap();
            (holder, lease)
        })
    }))
    .await;
    let granted: Vec<_> = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter_map(|(holder, lease)| Some((holder, lease?)))
        .collect();
    assert_eq!(granted.len(), 3, "{granted:?}");
    let mut numbers: Vec<u32> = granted.iter().map(|(_, l)| l.hold.slot).collect();
    numbers.sort();
    assert_eq!(numbers, [0, 1, 2]);
    let holders = slots.holders(&limit.scope).await.unwrap();
    assert_eq!(holders.len(), 3, "{holders:?}");
    for (n, holder, _) in &holders {
        assert!(
            granted
                .iter()
                .any(|(h, l)| h == holder && l.hold.slot == *n),
            "{holders:?}"
        );
    }
}

#[tokio::test]
async fn only_the_holder_renews_or_releases_and_an_expired_lease_is_taken_over() {
    let Some(moto) =
        moto("only_the_holder_renews_or_releases_and_an_expired_lease_is_taken_over").await
    else {
        return;
    };
    let bucket = moto.bucket().await;
    let slots = S3Slots::new(moto.s3(), &bucket, "runbridge/_ledger/slots");
    let limit = ConcurrencyLimit {
        scope: unique("amc.eu.inst"),
        limit: 1,
    };
    let t0 = OffsetDateTime::now_utc();
    let (a, b) = (key("amc-a"), key("amc-b"));
    let lease = slots
        .acquire(&limit, &a, t0, t0 + Duration::minutes(1))
        .await
        .unwrap()
        .expect("a free slot");
    // Taken while the lease lasts; the holder itself gets its own slot back.
    assert!(slots
        .acquire(&limit, &b, t0, t0 + Duration::minutes(1))
        .await
        .unwrap()
        .is_none());
    let again = slots
        .acquire(&limit, &a, t0, t0 + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(again.map(|l| l.hold), Some(lease.hold.clone()));
    // Another run can neither renew nor release it.
    let renewal = slots
        .renew(&lease.hold, &b, t0, t0 + Duration::hours(1))
        .await
        .unwrap();
    assert!(!renewal.held);
    slots.release(&lease.hold, &b).await.unwrap();
    assert_eq!(slots.holders(&limit.scope).await.unwrap()[0].1, a);
    // b's failed acquire marked the scope wanted: the holder hears of it while it is fresh.
    let renewal = slots
        .renew(&lease.hold, &a, t0, t0 + Duration::minutes(2))
        .await
        .unwrap();
    assert!(renewal.held && renewal.wanted, "{renewal:?}");
    let renewal = slots
        .renew(
            &lease.hold,
            &a,
            t0 + Duration::minutes(5),
            t0 + Duration::minutes(10),
        )
        .await
        .unwrap();
    assert!(renewal.held, "{renewal:?}");
    assert!(!renewal.wanted, "the mark is five minutes old: {renewal:?}");
    // After the renewed lease ran out, b takes it over.
    let before = t0 + Duration::minutes(9);
    let early = slots
        .acquire(&limit, &b, before, before + Duration::minutes(1))
        .await
        .unwrap();
    assert!(early.is_none());
    let after = t0 + Duration::minutes(11);
    let taken = slots
        .acquire(&limit, &b, after, after + Duration::minutes(1))
        .await
        .unwrap()
        .expect("an expired lease is free");
    assert_eq!(taken.hold, lease.hold);
    // a, whose lease ran out, no longer renews or releases it.
    let renewal = slots
        .renew(&lease.hold, &a, after, after + Duration::hours(1))
        .await
        .unwrap();
    assert!(!renewal.held);
    slots.release(&lease.hold, &a).await.unwrap();
    assert_eq!(slots.holders(&limit.scope).await.unwrap()[0].1, b);
    // b gives it back: free.
    slots.release(&taken.hold, &b).await.unwrap();
    assert!(slots.holders(&limit.scope).await.unwrap().is_empty());
    let again = slots
        .acquire(&limit, &a, after, after + Duration::minutes(1))
        .await
        .unwrap();
    assert!(again.is_some());
}
