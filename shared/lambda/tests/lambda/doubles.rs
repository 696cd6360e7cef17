//! Test doubles of the `Vendor` trait, for tests about the AWS plumbing only. Vendor behaviour
//! itself is tested against the simulators in `runbridge-vendors`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use runbridge_adapters_aws::{DlqSender, S3Ledger, SfnExecutions};
use runbridge_core::{BackoffPolicy, IdempotencyKey, ResolvedRequest, RunStatus, VendorKind};
use runbridge_handlers::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_handlers::SystemClock;
use runbridge_sim::SimHandle;
use runbridge_vendors::download::DownloadPolicy;
use runbridge_vendors::http::{HttpClient, RetryConfig};
use runbridge_vendors::{
    CancelOutcome, ResultFile, ResultStream, ResultsAvailability, RunRef, SubmittedRun, Vendor,
    VendorError, Vendors,
};

use runbridge_test_support::Moto;

const KIND: VendorKind = VendorKind::Amperity;

fn unused(what: &str) -> VendorError {
    VendorError::protocol(
        KIND,
        format!("test double: {what} is not used by these tests"),
    )
}

/// A trigger-test vendor: `submit` hands out `run-1`, `run-2`, … and counts; request ids steer
/// failures: `flaky-*` is unavailable (retryable), `refused-*` is rejected for `config_id`
/// (not retryable), `panic-*` panics, `hang-*` never answers.
#[derive(Default)]
pub struct CountingVendor {
    submits: AtomicU64,
}

impl CountingVendor {
    pub fn submits(&self) -> u64 {
        self.submits.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Vendor for CountingVendor {
    fn kind(&self) -> VendorKind {
        KIND
    }

    async fn submit(
        &self,
        request: &ResolvedRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let id = request.request_id.as_deref().unwrap_or_default();
        if id.starts_with("flaky") {
            return Err(VendorError::Unavailable {
                vendor: KIND,
                status: Some(503),
                message: "try later".into(),
            });
        }
        if id.starts_with("refused") {
            return Err(VendorError::Rejected {
                vendor: KIND,
                status: 400,
                field: Some("config_id".into()),
                message: "unknown courier group".into(),
            });
        }
        if id.starts_with("hang") {
            // A vendor that accepted the connection and never answers.
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
        if id.starts_with("panic") {
            panic!("test double panics for {id}");
        }
        let n = self.submits.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(SubmittedRun {
            vendor_run_id: format!("run-{n}"),
            vendor_state: None,
        })
    }

    async fn status(&self, _run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        Err(unused("status"))
    }
    async fn results(&self, _run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        Err(unused("results"))
    }
    async fn cancel(&self, _run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        Err(unused("cancel"))
    }
    async fn open_result(&self, _file: &ResultFile) -> Result<ResultStream, VendorError> {
        Err(unused("open_result"))
    }
}

/// A collect-test vendor whose results are the simulator's signed CSV downloads: run
/// `not-yet` has none published yet; any other run has `files` (name, rows, seed).
pub struct SimCsvVendor {
    pub sim: Arc<runbridge_sim::Sim>,
    pub files: Vec<(String, u64, u64)>,
    http: HttpClient,
    policy: DownloadPolicy,
}

impl SimCsvVendor {
    pub fn new(sim: &SimHandle, files: Vec<(String, u64, u64)>) -> Self {
        Self {
            sim: sim.sim.clone(),
            files,
            http: HttpClient::new(KIND, RetryConfig::fast()).unwrap(),
            // The simulator serves on loopback over http, which only the sandbox policy allows.
            policy: DownloadPolicy::new(Vec::new()).with_loopback(),
        }
    }
}

#[async_trait]
impl Vendor for SimCsvVendor {
    fn kind(&self) -> VendorKind {
        KIND
    }
    async fn submit(
        &self,
        _request: &ResolvedRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        Err(unused("submit"))
    }
    async fn status(&self, _run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        Err(unused("status"))
    }
    async fn results(&self, run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        if run.vendor_run_id == "not-yet" {
            return Ok(ResultsAvailability::NotYet {
                retry_after_seconds: Some(30),
                reason: "still publishing".into(),
            });
        }
        let files = self
            .files
            .iter()
            .map(|(name, rows, seed)| ResultFile {
                name: name.clone(),
                url: self
                    .sim
                    .download_url(KIND, run.vendor_run_id, name, *rows, *seed)
                    .into(),
                size_hint: None,
                post_json: None,
            })
            .collect();
        Ok(ResultsAvailability::Ready(files))
    }
    async fn cancel(&self, _run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        Err(unused("cancel"))
    }
    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError> {
        runbridge_vendors::result_stream::open(&self.http, &self.policy, file, None).await
    }
}

/// A trigger wired to moto: a fresh bucket (ledger), state machine and DLQ.
pub struct TriggerRig {
    pub moto: Moto,
    pub trigger: Trigger,
    pub vendor: Arc<CountingVendor>,
    pub dlq: DlqSender,
    pub dlq_url: String,
    pub executions: SfnExecutions,
}

impl TriggerRig {
    pub async fn new(moto: Moto) -> Self {
        let bucket = moto.bucket().await;
        let state_machine = moto.state_machine().await;
        let dlq_url = moto.queue().await;
        let vendor = Arc::new(CountingVendor::default());
        let executions = SfnExecutions::new(aws_sdk_sfn::Client::new(&moto.sdk), &state_machine);
        let trigger = Trigger {
            vendors: Vendors::from_clients([vendor.clone() as Arc<dyn Vendor>]),
            ledger: Arc::new(S3Ledger::new(moto.s3(), &bucket, "runbridge/_ledger/")),
            executions: Arc::new(executions.clone()),
            clock: Arc::new(SystemClock),
            policy: BackoffPolicy::default(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            deadline: None,
            announcer: None,
        };
        let dlq = DlqSender::new(moto.sqs(), &dlq_url);
        Self {
            moto,
            trigger,
            vendor,
            dlq,
            dlq_url,
            executions,
        }
    }

    /// The input of the execution named for `key`, `None` when it was never started.
    pub async fn execution_input(&self, key: &str) -> Option<serde_json::Value> {
        let arn = self
            .executions
            .execution_arn(&IdempotencyKey::from_string(key.to_owned()).execution_name());
        let out = aws_sdk_sfn::Client::new(&self.moto.sdk)
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .ok()?;
        serde_json::from_str(out.input()?).ok()
    }

    /// Everything in the DLQ.
    pub async fn dead_letters(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let batch = self.moto.receive(&self.dlq_url).await;
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }
}

/// A message attribute's string value.
pub fn attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    message
        .message_attributes()?
        .get(name)?
        .string_value()
        .map(str::to_owned)
}
