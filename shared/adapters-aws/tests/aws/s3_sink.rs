//! S3Sink: streaming multipart uploads straight to the final key, invisible until published,
//! abort at either stage, CRC-64/NVME full-object checksums, single puts.
//!
//! Checksum verification: moto 5.2.5 stores the CRC-64/NVME it computes itself from the parts
//! (with awscrt) but does not compare it with the checksum a request sends, so on moto these
//! tests prove that runbridge's checksum equals the one S3 computes from the bytes it stored
//! (an independent implementation), not that a mismatch is refused. The refusal is proved against
//! an endpoint that verifies (s3s-fs) in `a_wrong_checksum_is_refused_by_a_verifying_endpoint`,
//! for a `PutObject`; no endpoint installable here refuses a mismatching *part* (see
//! `checksums.rs`), and `moto_accepts_a_part_whose_bytes_do_not_match_its_checksum` pins down
//! that moto does not.

use bytes::Bytes;
use runbridge_adapters_aws::{S3Sink, UploadConfig, MIN_PART_SIZE};
use runbridge_handlers::{ObjectChecksum, ResultSink, StagedObject};

use runbridge_test_support::{bytes, exists, moto, read, sha256};

const MIB: usize = 1024 * 1024;

fn small_parts() -> UploadConfig {
    UploadConfig {
        part_size: MIN_PART_SIZE,
        max_in_flight: 2,
    }
}

/// Writes `data` through a writer in uneven chunks, as a download would deliver it, and stages it.
async fn stage(sink: &S3Sink, key: &str, data: &[u8]) -> Box<dyn StagedObject> {
    let mut writer = sink.create(key).await.expect("create");
    for chunk in data.chunks(64 * 1024 + 7) {
        writer
            .write(Bytes::copy_from_slice(chunk))
            .await
            .expect("write");
    }
    writer
        .finish(ObjectChecksum::of(data))
        .await
        .expect("finish")
}

async fn open_uploads(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    s3.list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// The CRC-64/NVME the endpoint stored for `key` (computed by the endpoint from the bytes).
async fn stored_crc64nvme(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap()
        .checksum_crc64_nvme()
        .map(str::to_owned)
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
    let staged = stage(&sink, "runbridge/big.csv", &data).await;
    assert!(
        !exists(&s3, &bucket, "runbridge/big.csv").await,
        "a staged upload must not be visible"
    );
    assert_eq!(open_uploads(&s3, &bucket).await, 1);
    staged.publish().await.expect("publish");

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
    assert_eq!(
        stored_crc64nvme(&s3, &bucket, "runbridge/big.csv")
            .await
            .as_deref(),
        Some(ObjectChecksum::of(&data).crc64nvme_base64().as_str()),
        "the endpoint's own CRC-64/NVME of the stored bytes"
    );
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
    let mut writer = sink.create("runbridge/aborted.csv").await.unwrap();
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

    assert!(!exists(&s3, &bucket, "runbridge/aborted.csv").await);
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

    assert_eq!(
        stored_crc64nvme(&s3, &bucket, "runbridge/m/manifest.json")
            .await
            .as_deref(),
        Some(ObjectChecksum::of(b"{\"a\":1}").crc64nvme_base64().as_str())
    );

    // A result smaller than a part is still a (one-part) multipart upload: invisible until
    // published, like every other.
    let data = bytes(3 * MIB, 3);
    let staged = stage(&sink, "runbridge/small.csv", &data).await;
    assert!(!exists(&s3, &bucket, "runbridge/small.csv").await);
    staged.publish().await.unwrap();
    assert_eq!(read(&s3, &bucket, "runbridge/small.csv").await, data);
    assert_eq!(open_uploads(&s3, &bucket).await, 0);

    // An empty object is an object too (put when published: it has no part).
    let staged = stage(&sink, "runbridge/empty.csv", b"").await;
    assert_eq!(sink.get("runbridge/empty.csv").await.unwrap(), None);
    staged.publish().await.unwrap();
    assert_eq!(
        sink.get("runbridge/empty.csv").await.unwrap().as_deref(),
        Some(&b""[..])
    );
}

#[tokio::test]
async fn a_staged_upload_aborted_leaves_nothing() {
    let Some(moto) = moto("a_staged_upload_aborted_leaves_nothing").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    let key = "runbridge/vendor=amc/date=2026-11-26/run=k-1/part-00000.csv";
    let staged = stage(&sink, key, &bytes(6 * MIB + 5, 4)).await;
    assert_eq!(open_uploads(&s3, &bucket).await, 1);
    staged.abort().await;
    assert!(!exists(&s3, &bucket, key).await);
    assert_eq!(
        open_uploads(&s3, &bucket).await,
        0,
        "the upload must be aborted"
    );
}

/// A refused completion aborts the upload: nothing visible, nothing left open.
#[tokio::test]
async fn a_refused_completion_leaves_nothing() {
    let Some(moto) = moto("a_refused_completion_leaves_nothing").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let sink = S3Sink::new(s3.clone(), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    let key = "runbridge/refused.csv";
    let staged = stage(&sink, key, &bytes(6 * MIB, 6)).await;
    // Someone (a lifecycle rule, an operator) aborted the upload meanwhile.
    let upload = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .uploads()[0]
        .upload_id()
        .unwrap()
        .to_owned();
    s3.abort_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(upload)
        .send()
        .await
        .unwrap();
    staged.publish().await.unwrap_err();
    assert!(!exists(&s3, &bucket, key).await);
    assert_eq!(open_uploads(&s3, &bucket).await, 0);
}

#[tokio::test]
async fn moto_accepts_a_part_whose_bytes_do_not_match_its_checksum() {
    let Some(moto) = moto("moto_accepts_a_part_whose_bytes_do_not_match_its_checksum").await else {
        return;
    };
    let (s3, bucket) = (moto.s3(), moto.bucket().await);
    let wire = super::checksums::CorruptOnTheWire::default();
    let sink = S3Sink::new(wire.client(&s3), &bucket)
        .with_upload_config(small_parts())
        .unwrap();
    let key = "runbridge/corrupt.csv";
    let data = bytes(6 * MIB, 7);
    // Both parts arrive with a flipped first byte under the CRC-64/NVME of the true bytes. AWS
    // S3 refuses each with BadDigest; moto 5.2.5 stores them. The day it verifies, this fails.
    let mut writer = sink.create(key).await.expect("create");
    for chunk in data.chunks(64 * 1024 + 7) {
        writer
            .write(Bytes::copy_from_slice(chunk))
            .await
            .expect("write");
    }
    let staged = writer
        .finish(ObjectChecksum::of(&data))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "moto refused a corrupted part ({e}): it verifies UploadPart now; update the docs"
            )
        });
    assert_eq!(wire.parts.load(std::sync::atomic::Ordering::SeqCst), 2);
    staged
        .publish()
        .await
        .expect("moto 5.2.5 does not verify a FULL_OBJECT checksum at completion");
    let stored = read(&s3, &bucket, key).await;
    assert_eq!(stored.len(), data.len());
    assert_eq!(stored[0], data[0] ^ 0x01, "the corrupted bytes were stored");
    assert_eq!(stored[MIN_PART_SIZE], data[MIN_PART_SIZE] ^ 0x01);
    // What moto reports is the checksum it computed from the bytes it stored: not runbridge's,
    // so a mismatch is visible after the fact even where it was not refused.
    assert_ne!(
        stored_crc64nvme(&s3, &bucket, key).await,
        Some(ObjectChecksum::of(&data).crc64nvme_base64())
    );
}
