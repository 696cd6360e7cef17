//! handle_collect end to end: simulator CSV downloads streamed into moto S3, manifest last,
//! sizes and SHA-256 in the manifest equal to the bytes in S3, the event on the bus.

use std::sync::Arc;

use runbridge_adapters_aws::{EventBridgeEvents, S3Ledger, S3Sink, UploadConfig, MIN_PART_SIZE};
use runbridge_core::RunOutcome;
use runbridge_core::{
    IdempotencyKey, Manifest, OffsetDateTime, ResultLayout, RunHandle, RunRequest, RunState,
};
use runbridge_handlers::collect::Collector;
use runbridge_handlers::finish::Finisher;
use runbridge_handlers::ports::{Claim, LedgerEntry, RecordedRun};
use runbridge_handlers::SystemClock;
use runbridge_lambda::handle_collect;
use runbridge_sim::{csvgen, SimConfig, SimHandle};
use runbridge_vendors::{Vendor, Vendors};
use serde_json::json;

use super::doubles::SimCsvVendor;
use runbridge_test_support::{moto, read, sha256, unique, Moto};

struct CollectRig {
    moto: Moto,
    sim: SimHandle,
    bucket: String,
    queue: String,
    collector: Collector,
    files: Vec<(String, u64, u64)>,
}

async fn rig(moto: Moto) -> CollectRig {
    let sim = SimHandle::start(SimConfig::default()).await.unwrap();
    let bucket = moto.bucket().await;
    // One file above the part size (multipart), one small one (single put).
    let files = vec![
        (
            "part-a.csv".to_owned(),
            csvgen::rows_for_bytes(7 * 1024 * 1024),
            11,
        ),
        ("part-b.csv".to_owned(), 1_000, 12),
    ];
    let vendor: Arc<dyn Vendor> = Arc::new(SimCsvVendor::new(&sim, files.clone()));
    let eb = aws_sdk_eventbridge::Client::new(&moto.sdk);
    let (bus, queue) = moto.bus_to_queue(r#"{"source": ["runbridge"]}"#).await;
    let sink = S3Sink::new(moto.s3(), &bucket)
        .with_upload_config(UploadConfig {
            part_size: MIN_PART_SIZE,
            max_in_flight: 2,
        })
        .unwrap();
    let collector = Collector {
        vendors: Vendors::from_clients([vendor]),
        ledger: Arc::new(S3Ledger::new(moto.s3(), &bucket, "runbridge/_ledger/")),
        history: Arc::new(runbridge_adapters_aws::S3History::new(
            moto.s3(),
            &bucket,
            "runbridge/_ledger/history/",
        )),
        finisher: Arc::new(Finisher {
            sink: Arc::new(sink),
            events: Arc::new(EventBridgeEvents::new(eb, &bus)),
            layout: ResultLayout::new("runbridge").unwrap(),
            clock: Arc::new(SystemClock),
            slots: Arc::new(runbridge_adapters_aws::S3Slots::new(
                moto.s3(),
                &bucket,
                "runbridge/_ledger/slots/",
            )),
            callbacks: Arc::new(runbridge_adapters_aws::SfnCallbacks::new(
                aws_sdk_sfn::Client::new(&moto.sdk),
            )),
        }),
        options: Default::default(),
    };
    CollectRig {
        moto,
        sim,
        bucket,
        queue,
        collector,
        files,
    }
}

/// The handle's ledger entry written as the trigger writes it (the request lives there), and
/// the reference the execution carries.
async fn stored(rig: &CollectRig, handle: &RunHandle) -> serde_json::Value {
    let claim = rig
        .collector
        .ledger
        .claim(LedgerEntry::submitted(
            handle.key.clone(),
            handle.request.clone(),
            None,
            handle.submitted_at,
            RecordedRun {
                vendor_run_id: handle.vendor_run_id_or_empty().to_owned(),
                submitted_at: handle.submitted_at,
                vendor_state: None,
            },
        ))
        .await
        .unwrap();
    assert!(matches!(claim, Claim::New(_)));
    serde_json::to_value(handle.reference()).unwrap()
}

fn handle(vendor_run_id: &str) -> RunHandle {
    let request = RunRequest::from_value(json!({
        "vendor": "amperity", "request_id": unique("collect"), "tenant": "acme", "config_id": "cg-0001", "run_mode": "full"
    }))
    .unwrap()
    .resolve(OffsetDateTime::now_utc());
    let submitted_at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    RunHandle::new(
        IdempotencyKey::for_request(&request, None),
        request,
        vendor_run_id.to_owned(),
        submitted_at,
    )
}

#[tokio::test]
async fn collect_lands_simulator_csv_in_s3_with_a_manifest_matching_the_bytes() {
    let Some(moto) =
        moto("collect_lands_simulator_csv_in_s3_with_a_manifest_matching_the_bytes").await
    else {
        return;
    };
    let rig = rig(moto).await;
    let s3 = rig.moto.s3();
    let handle = handle("run-77");
    let payload = json!({"handle": stored(&rig, &handle).await, "outcome": "succeeded"});

    let out: RunOutcome = serde_json::from_value(
        handle_collect(&rig.collector, payload.clone())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out.state, RunState::Succeeded);
    assert_eq!(out.files, 2);

    let manifest: Manifest =
        serde_json::from_slice(&read(&s3, &rig.bucket, &out.manifest_key).await).unwrap();
    assert_eq!(manifest.files.len(), 2);
    let mut total = 0;
    for (file, (_, rows, seed)) in manifest.files.iter().zip(&rig.files) {
        let stored = read(&s3, &rig.bucket, &file.key).await;
        assert_eq!(file.size_bytes, stored.len() as u64, "{}", file.key);
        assert_eq!(file.sha256, sha256(&stored), "{}", file.key);
        let stored_crc = s3
            .head_object()
            .bucket(&rig.bucket)
            .key(&file.key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap()
            .checksum_crc64_nvme()
            .map(str::to_owned);
        assert_eq!(
            file.crc64nvme, stored_crc,
            "{}: the manifest's CRC-64/NVME is the one S3 stored",
            file.key
        );
        assert_eq!(
            stored,
            csvgen::generate(*seed, *rows),
            "S3 holds exactly what the vendor served"
        );
        assert_eq!(file.rows, rows + 1, "data rows plus the header");
        assert!(
            file.key.starts_with("runbridge/vendor=amperity/"),
            "{}",
            file.key
        );
        total += stored.len() as u64;
    }
    assert_eq!(out.bytes, total);
    let everything = s3
        .list_objects_v2()
        .bucket(&rig.bucket)
        .prefix("runbridge/")
        .send()
        .await
        .unwrap();
    assert!(
        everything
            .contents()
            .iter()
            .all(|o| !o.key().unwrap_or_default().contains("_staging/")),
        "nothing is written outside the final keys"
    );
    assert!(s3
        .list_multipart_uploads()
        .bucket(&rig.bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .is_empty());

    let events = rig.moto.receive(&rig.queue).await;
    assert_eq!(events.len(), 1);
    let event: serde_json::Value = serde_json::from_str(events[0].body().unwrap()).unwrap();
    assert_eq!(event["detail-type"], "Run Completed");
    assert_eq!(event["detail"]["manifest_key"], json!(out.manifest_key));

    // A Step Functions retry after the manifest was written: same answer, nothing downloaded.
    let downloads = rig.sim.sim.control.requests("amperity.download");
    let again: RunOutcome =
        serde_json::from_value(handle_collect(&rig.collector, payload).await.unwrap()).unwrap();
    assert_eq!(again, out);
    assert_eq!(rig.sim.sim.control.requests("amperity.download"), downloads);
    assert!(
        rig.moto.receive(&rig.queue).await.is_empty(),
        "the event is announced once"
    );
}

#[tokio::test]
async fn a_failed_run_gets_a_failure_manifest_and_a_run_failed_event() {
    let Some(moto) = moto("a_failed_run_gets_a_failure_manifest_and_a_run_failed_event").await
    else {
        return;
    };
    let rig = rig(moto).await;
    // The vendor said the run failed (its last poll saw it end), so there is nothing to cancel.
    let mut failed = handle("run-78");
    failed.record(
        &runbridge_core::RunStatus::new(RunState::Failed, "FAILED"),
        OffsetDateTime::now_utc(),
    );
    let reference = stored(&rig, &failed).await;
    let payload = json!({"handle": reference, "outcome": "failed", "reason": "query timed out", "attribution": "customer"});

    let out: RunOutcome =
        serde_json::from_value(handle_collect(&rig.collector, payload).await.unwrap()).unwrap();
    assert_eq!(out.state, RunState::Failed);
    assert_eq!(out.files, 0);
    let manifest: Manifest =
        serde_json::from_slice(&read(&rig.moto.s3(), &rig.bucket, &out.manifest_key).await)
            .unwrap();
    assert_eq!(manifest.reason.as_deref(), Some("query timed out"));
    let events = rig.moto.receive(&rig.queue).await;
    let event: serde_json::Value = serde_json::from_str(events[0].body().unwrap()).unwrap();
    assert_eq!(event["detail-type"], "Run Failed");
}

#[tokio::test]
async fn results_not_published_yet_is_a_retryable_error_and_lands_nothing() {
    let Some(moto) = moto("results_not_published_yet_is_a_retryable_error_and_lands_nothing").await
    else {
        return;
    };
    let rig = rig(moto).await;
    let reference = stored(&rig, &handle("not-yet")).await;
    let err = handle_collect(
        &rig.collector,
        json!({"handle": reference, "outcome": "succeeded"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(
        diagnostic.error_type, "Retryable",
        "Step Functions' Retry matches this name"
    );
    let objects = rig
        .moto
        .s3()
        .list_objects_v2()
        .bucket(&rig.bucket)
        .send()
        .await
        .unwrap();
    let landed: Vec<_> = objects
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| !k.starts_with("runbridge/_ledger/"))
        .collect();
    assert!(landed.is_empty(), "only the ledger entry: {landed:?}");
}

/// The collect function reads `MANIFEST_SHA256` at cold start (the template's `ManifestSha256`),
/// and a value that is neither `true` nor `false` stops it there, naming the variable.
#[test]
fn the_collect_function_takes_manifest_sha256_from_its_environment() {
    use runbridge_adapters_aws::env::{
        EVENT_BUS_NAME, LEDGER_PREFIX, MANIFEST_SHA256, RESULTS_BUCKET, VENDOR_SECRET_ARN,
    };
    use runbridge_adapters_aws::AwsEnv;
    use runbridge_lambda::CollectFunction;

    let env = |sha: &str| {
        AwsEnv::new(
            aws_config::SdkConfig::builder().build(),
            [
                (RESULTS_BUCKET, "bucket"),
                (LEDGER_PREFIX, "runbridge/_ledger/"),
                (EVENT_BUS_NAME, "default"),
                (
                    VENDOR_SECRET_ARN,
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:v-AbCdEf",
                ),
                (MANIFEST_SHA256, sha),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    };
    for ok in ["", "true", "false"] {
        CollectFunction::from_env(&env(ok)).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    let err = CollectFunction::from_env(&env("off"))
        .err()
        .expect("refused");
    assert!(err.to_string().contains(MANIFEST_SHA256), "{err}");
}
