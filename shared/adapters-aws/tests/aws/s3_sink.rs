//! S3Sink: streaming multipart uploads, abort, single puts, publish (copy and multipart copy).

use bytes::Bytes;
use runbridge_adapters_aws::{S3Sink, UploadConfig, MIN_PART_SIZE};
use runbridge_handlers::ResultSink;

use runbridge_test_support::{bytes, exists, moto, read, sha256};

const MIB: usize = 1024 * 1024;

fn small_parts() -> UploadConfig {
    UploadConfig {
        part_size: MIN_PART_SIZE,
        max_in_flight: 2,
        ..UploadConfig::default()
    }
}

/// Writes `data` through a writer in uneven chunks, as a download would deliver it.
async fn stream_into(sink: &S3Sink, key: &str, data: &[u8]) {
    let mut writer = sink.create(key).await.expect("create");
    for chunk in data.chunks(64 * 1024 + 7) {
        writer
            .write(Bytes::copy_from_slice(chunk))
            .await
            .expect("write");
    }
    writer.finish().await.expect("finish");
}

#[tokio::test]
async fn multipart_upload_of_more_than_three_parts_round_trips_exactly() {
    let Some(moto) = moto("multipart_upload_of_more_than_three_parts_round_trips_exactly").await
    else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    let data = bytes(20 * MIB + 123, 1);
    stream_into(&sink, "runbridge/big.csv", &data).await;

    let back = read(&s3, &bucket, "runbridge/big.csv").await;
    assert_eq!(back.len(), data.len());
    assert_eq!(
        sha256(&back),
        sha256(&data),
        "bytes differ after the round trip"
    );
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("runbridge/big.csv")
        .send()
        .await
        .unwrap();
    // A multipart object's ETag ends in -<parts>: 20 MiB + 123 B in 5 MiB parts is 5 parts.
    assert!(
        head.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .ends_with("-5"),
        "ETag {:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("text/csv"));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "no upload may stay open: {:?}",
        uploads.uploads()
    );
}

#[tokio::test]
async fn abort_leaves_no_object_and_no_pending_upload() {
    let Some(moto) = moto("abort_leaves_no_object_and_no_pending_upload").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    let mut writer = sink.create("runbridge/_staging/aborted.csv").await.unwrap();
    for chunk in bytes(12 * MIB, 2).chunks(MIB) {
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let open = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        open.uploads().len(),
        1,
        "12 MiB in 5 MiB parts must have started a multipart upload"
    );
    writer.abort().await;

    assert!(!exists(&s3, &bucket, "runbridge/_staging/aborted.csv").await);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "pending uploads after abort: {:?}",
        uploads.uploads()
    );
}

#[tokio::test]
async fn small_objects_use_one_put_and_get_reads_them_back() {
    let Some(moto) = moto("small_objects_use_one_put_and_get_reads_them_back").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket);

    sink.put(
        "runbridge/m/manifest.json",
        Bytes::from_static(b"{\"a\":1}"),
    )
    .await
    .unwrap();
    assert_eq!(
        sink.get("runbridge/m/manifest.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{\"a\":1}"[..])
    );
    assert_eq!(sink.get("runbridge/m/absent.json").await.unwrap(), None);

    let data = bytes(3 * MIB, 3);
    stream_into(&sink, "runbridge/small.csv", &data).await;
    assert_eq!(read(&s3, &bucket, "runbridge/small.csv").await, data);
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("runbridge/small.csv")
        .send()
        .await
        .unwrap();
    assert!(
        !head.e_tag().unwrap_or_default().contains('-'),
        "one part must be one PutObject, ETag {:?}",
        head.e_tag()
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    // An empty object is an object too.
    stream_into(&sink, "runbridge/empty.csv", b"").await;
    assert_eq!(
        sink.get("runbridge/empty.csv").await.unwrap().as_deref(),
        Some(&b""[..])
    );
}

#[tokio::test]
async fn publish_moves_staging_to_final() {
    let Some(moto) = moto("publish_moves_staging_to_final").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    // Staged as a two-part upload; the published copy must read back (checksum included).
    let data = bytes(6 * MIB + 5, 4);
    let (staging, published) = (
        "runbridge/_staging/run=k-1/part-00000.csv",
        "runbridge/vendor=amc/date=2026-11-26/run=k-1/part-00000.csv",
    );
    stream_into(&sink, staging, &data).await;

    sink.publish(staging, published).await.unwrap();
    assert_eq!(read(&s3, &bucket, published).await, data);
    assert!(
        !exists(&s3, &bucket, staging).await,
        "staging object must be gone"
    );
    assert_eq!(sink.get(staging).await.unwrap(), None);

    // Publishing what is not there fails, and not as retryable: a retry cannot conjure it.
    let err = sink.publish(staging, published).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn publish_above_the_copy_threshold_uses_a_multipart_copy() {
    let Some(moto) = moto("publish_above_the_copy_threshold_uses_a_multipart_copy").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    // The 5 GiB CopyObject limit, scaled down so the UploadPartCopy path runs on 12 MiB.
    let config = UploadConfig {
        multipart_copy_threshold: 1024,
        copy_part_size: MIN_PART_SIZE as u64,
        ..small_parts()
    };
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(config)
        .unwrap();
    let data = bytes(12 * MIB + 1, 5);
    stream_into(&sink, "runbridge/_staging/big.csv", &data).await;

    sink.publish("runbridge/_staging/big.csv", "runbridge/out/big.csv")
        .await
        .unwrap();
    let back = read(&s3, &bucket, "runbridge/out/big.csv").await;
    assert_eq!(sha256(&back), sha256(&data));
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("runbridge/out/big.csv")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .ends_with("-3"),
        "ETag {:?}",
        head.e_tag()
    );
    assert!(!exists(&s3, &bucket, "runbridge/_staging/big.csv").await);
}
