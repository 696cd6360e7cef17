//! S3Slots: a scope's record changes only by a conditional write at the version read, so
//! concurrent changes never lose one another: at most `limit` holders, the line in arrival order,
//! and two runs giving slots back at once admit two different waiters.

use std::sync::Arc;

use runbridge_adapters_aws::S3Slots;
use runbridge_core::{IdempotencyKey, OffsetDateTime, ScopeQueue, ADMISSION_LEASE};
use runbridge_handlers::ports::Slots;
use runbridge_handlers::queue::change;
use time::Duration;

use runbridge_test_support::{moto, unique};

fn key(n: usize) -> IdempotencyKey {
    IdempotencyKey::from_string(format!("amc-slot-{n:02}"))
}

fn at(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + s).unwrap()
}

#[tokio::test]
async fn twenty_concurrent_asks_for_three_slots_make_three_holders_and_a_line_in_arrival_order() {
    let Some(moto) = moto("twenty_concurrent_asks_for_three_slots").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let slots = Arc::new(S3Slots::new(moto.s3(), &bucket, "runbridge/_ledger/slots/"));
    let scope = unique("amc.default.inst");
    let asks = futures::future::join_all((0..20).map(|n| {
        let (slots, scope) = (slots.clone(), scope.clone());
        async move {
            change(slots.as_ref(), &scope, |q| {
                q.ask(
                    &key(n),
                    at(n as i64),
                    Some(format!("token-{n}")),
                    3,
                    at(100),
                    at(100) + ADMISSION_LEASE,
                )
            })
            .await
            .unwrap()
        }
    }))
    .await;
    let admitted: Vec<_> = asks.into_iter().flatten().map(|a| a.key).collect();
    let record = slots.read(&scope).await.unwrap().queue;
    assert_eq!(record.holders.len(), 3, "{record:?}");
    assert_eq!(admitted.len(), 3, "each holder admitted once: {admitted:?}");
    assert_eq!(record.waiting.len(), 17);
    let arrivals: Vec<_> = record.waiting.iter().map(|w| w.arrived).collect();
    let mut sorted = arrivals.clone();
    sorted.sort();
    assert_eq!(arrivals, sorted, "the line is in arrival order");
    let mut everyone: Vec<_> = record
        .holders
        .iter()
        .map(|h| h.key.clone())
        .chain(record.waiting.iter().map(|w| w.key.clone()))
        .collect();
    everyone.sort();
    everyone.dedup();
    assert_eq!(everyone.len(), 20, "nobody lost, nobody twice");
}

#[tokio::test]
async fn two_runs_giving_slots_back_at_once_admit_two_different_waiters() {
    let Some(moto) = moto("two_runs_giving_slots_back_at_once").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let slots = Arc::new(S3Slots::new(moto.s3(), &bucket, "runbridge/_ledger/slots"));
    let scope = unique("amc.default.race");
    let lease = at(0) + Duration::hours(1);
    for n in 0..5 {
        change(slots.as_ref(), &scope, |q| {
            q.ask(
                &key(n),
                at(n as i64),
                Some(format!("t{n}")),
                2,
                at(10),
                lease,
            )
        })
        .await
        .unwrap();
    }
    for _ in 0..5 {
        let released = futures::future::join_all([0, 1].map(|n| {
            let (slots, scope) = (slots.clone(), scope.clone());
            async move {
                change(slots.as_ref(), &scope, |q| {
                    q.leave(&key(n), at(20), at(20) + ADMISSION_LEASE)
                })
                .await
                .unwrap()
            }
        }))
        .await;
        let woken: Vec<_> = released.iter().flatten().map(|a| a.key.clone()).collect();
        assert_eq!(woken.len(), 2, "{woken:?}");
        assert_ne!(woken[0], woken[1], "the same waiter admitted twice");
        let mut expected = vec![key(2), key(3)];
        let mut got = woken.clone();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "the two oldest waiters");
        // Reset for the next round.
        let stored = slots.read(&scope).await.unwrap();
        let mut reset = ScopeQueue::default();
        for n in 0..5 {
            reset.ask(
                &key(n),
                at(n as i64),
                Some(format!("t{n}")),
                2,
                at(10),
                lease,
            );
        }
        assert!(slots
            .write(&scope, &reset, stored.version.as_deref())
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn a_write_at_a_version_someone_else_changed_is_refused() {
    let Some(moto) = moto("a_write_at_a_stale_version_is_refused").await else {
        return;
    };
    let bucket = moto.bucket().await;
    let slots = S3Slots::new(moto.s3(), &bucket, "runbridge/_ledger/slots/");
    let scope = unique("amc.default.stale");
    let mut first = ScopeQueue::default();
    first.ask(&key(1), at(1), None, 1, at(1), at(1000));
    assert!(slots.write(&scope, &first, None).await.unwrap());
    assert!(
        !slots.write(&scope, &first, None).await.unwrap(),
        "a create over an existing record"
    );
    let read = slots.read(&scope).await.unwrap();
    assert_eq!(read.queue, first);
    let mut second = read.queue.clone();
    second.ask(&key(2), at(2), None, 1, at(2), at(1000));
    assert!(slots
        .write(&scope, &second, read.version.as_deref())
        .await
        .unwrap());
    assert!(
        !slots
            .write(&scope, &first, read.version.as_deref())
            .await
            .unwrap(),
        "a write at the version before the last write"
    );
    assert_eq!(slots.read(&scope).await.unwrap().queue, second);
    assert_eq!(
        slots.object_key(&scope),
        format!("runbridge/_ledger/slots/{scope}.json")
    );
}
