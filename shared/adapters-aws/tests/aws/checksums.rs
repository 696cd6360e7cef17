//! Does the endpoint refuse bytes that do not match their CRC-64/NVME? Against `s3s-fs`, the one
//! local endpoint that verifies checksums at all.
//!
//! What each endpoint checks (read in their sources and confirmed by these tests where it can):
//! - **AWS S3** verifies every checksum it is sent: a `PutObject` or `UploadPart` whose bytes do
//!   not match is refused with `BadDigest`, and a `FULL_OBJECT` `CompleteMultipartUpload` whose
//!   CRC-64/NVME or `MpuObjectSize` does not match the parts is refused too. No test here reaches
//!   AWS.
//! - **s3s-fs 0.14.1** verifies the checksum of a `PutObject` (header or aws-chunked trailer,
//!   CRC-64/NVME included; it answers `BadDigest` but keeps the object it already wrote), but not of an `UploadPart` nor the full-object checksum of a
//!   `CompleteMultipartUpload`: a mismatching *part* cannot be shown refused on it, so the
//!   single-request upload is the case tested.
//! - **moto 5.2.5** verifies none: it stores the checksum it computes from the bytes (which
//!   `s3_sink.rs` compares with runbridge's) or the one it is sent.
//!
//! `s3s-fs` is found at `RUNBRIDGE_S3S_FS` or `bench/.tools/bin/s3s-fs` (installed by
//! `scripts/install-tools.sh`, which CI runs); without it the test says SKIPPED on stderr, except
//! under CI, where it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use runbridge_handlers::ObjectChecksum;

struct S3sFs {
    child: Child,
    root: PathBuf,
    client: aws_sdk_s3::Client,
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn s3s_fs(test: &str) -> Option<S3sFs> {
    let binary = std::env::var_os("RUNBRIDGE_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/.tools/bin/s3s-fs")
        });
    if !binary.exists() {
        // CI installs it (scripts/install-tools.sh): there, a missing endpoint is a failure, not
        // a skip, so the checksum check cannot silently stop running.
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: no s3s-fs at {} under CI (scripts/install-tools.sh installs it)",
            binary.display()
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED {test}: no s3s-fs at {} (bash bench/run.sh installs it, or set RUNBRIDGE_S3S_FS) ***",
            binary.display()
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = std::env::temp_dir().join(format!("runbridge-s3s-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(root.join("bucket")).unwrap();
    let child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "AKIDTEST", "--secret-key", "SECRETTEST"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting s3s-fs");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s3s-fs did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "SECRETTEST",
            None,
            None,
            "s3s",
        ))
        .http_client(runbridge_adapters_aws::env::https_client())
        .load()
        .await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    Some(S3sFs {
        child,
        root,
        client,
    })
}

#[tokio::test]
async fn a_wrong_checksum_is_refused_by_a_verifying_endpoint() {
    let Some(s3) = s3s_fs("a_wrong_checksum_is_refused_by_a_verifying_endpoint").await else {
        return;
    };
    let body = b"id,name\n1,a\n2,b\n".to_vec();
    let right = ObjectChecksum::of(&body).crc64nvme_base64();
    let wrong = ObjectChecksum::of(b"something else").crc64nvme_base64();
    assert_ne!(right, wrong);

    let refused = s3
        .client
        .put_object()
        .bucket("bucket")
        .key("refused.csv")
        .checksum_crc64_nvme(&wrong)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect_err("a body that does not match its CRC-64/NVME must be refused");
    let code = refused
        .as_service_error()
        .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e))
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("BadDigest"), "{refused:?}");
    // Not asserted: that nothing was stored. s3s-fs 0.14.1 writes the object before it compares
    // the checksum and leaves it there after answering BadDigest (AWS S3 stores nothing);
    // runbridge treats the error as a failed upload either way.

    // The control: the same body with its own checksum is stored, and the endpoint reports it.
    s3.client
        .put_object()
        .bucket("bucket")
        .key("stored.csv")
        .checksum_crc64_nvme(&right)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("the matching checksum is accepted");
    let head = s3
        .client
        .head_object()
        .bucket("bucket")
        .key("stored.csv")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc64_nvme(), Some(right.as_str()));
}
