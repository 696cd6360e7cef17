//! Lambda failing under the state machine, run on the local deployment (the deployed definition,
//! the same handlers):
//! - a throttle storm (a burst past the functions' concurrency bound, Lambda answering
//!   `TooManyRequestsException`) delays runs and never fails one: the throttle Retrier (capped,
//!   jittered, ~1.5 h of attempts) outlasts a storm far longer than the generic Retrier's ~2 min;
//! - a poll that keeps failing ends the run FAILED, and the vendor run it leaves behind is
//!   cancelled before its concurrency slot is handed on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runbridge_adapters_local::LOCAL_POLL_ARN;
use runbridge_asl::{ExecutionStatus, HistoryEventKind, TaskFailure, TaskInvoker};
use runbridge_core::Attribution;
use runbridge_core::{RunState, VendorKind};
use runbridge_system_tests::harness::{example_request, Harness, HarnessOptions, SPEED};

/// The storm's length in simulated seconds: 50 minutes.
const STORM_SECONDS: f64 = 3_000.0;

/// Throttles every task invocation from the first one until the storm has passed.
struct ThrottleStorm {
    inner: Arc<dyn TaskInvoker>,
    started: std::sync::OnceLock<Instant>,
    throttled: Arc<AtomicU64>,
}

#[async_trait]
impl TaskInvoker for ThrottleStorm {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        let started = *self.started.get_or_init(Instant::now);
        // The interpreter's waits run at the harness's speed, so real time scales the same way.
        if started.elapsed() < Duration::from_secs_f64(STORM_SECONDS / SPEED) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(TaskFailure {
                error: "Lambda.TooManyRequestsException".into(),
                cause: "Rate Exceeded.".into(),
            });
        }
        self.inner.invoke(resource, input).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_minute_throttle_storm_delays_every_run_and_fails_none() {
    let throttled = Arc::new(AtomicU64::new(0));
    let counter = throttled.clone();
    let h = Harness::start_with(HarnessOptions {
        wrap_tasks: Some(Box::new(move |inner| {
            Arc::new(ThrottleStorm {
                inner,
                started: Default::default(),
                throttled: counter.clone(),
            })
        })),
        ..HarnessOptions::default()
    })
    .await;
    for vendor in VendorKind::ALL {
        let body = example_request(vendor, "storm");
        h.trigger.handle_bytes(&body, None).await.unwrap();
    }
    for vendor in VendorKind::ALL {
        let manifest = h.run_to_end_for(vendor, "storm").await;
        assert_eq!(
            manifest.state,
            RunState::Succeeded,
            "{vendor}: {manifest:?}"
        );
        let key = Harness::key_for(vendor, "storm");
        let execution = h.executions.wait(&key.execution_name()).await.unwrap();
        assert_eq!(execution.status, ExecutionStatus::Succeeded, "{vendor}");
        let throttle_retries = execution
            .history
            .iter()
            .filter(|e| matches!(e.kind, HistoryEventKind::RetryScheduled { .. }))
            .count();
        assert!(
            throttle_retries >= 3,
            "{vendor}: the storm should have been retried through, saw {throttle_retries} retries"
        );
        assert!(
            !execution
                .history
                .iter()
                .any(|e| e.state.as_deref() == Some("RecordFailure")),
            "{vendor}: a throttle never records a failure"
        );
    }
    let throttled = throttled.load(Ordering::Relaxed);
    assert!(throttled > 0, "the storm throttled nothing");
}

/// Fails every poll (not the admission or enqueue steps of the poll function) as a Lambda that
/// keeps crashing would.
struct BrokenPolls {
    inner: Arc<dyn TaskInvoker>,
}

#[async_trait]
impl TaskInvoker for BrokenPolls {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        if resource == LOCAL_POLL_ARN && input["step"] == "poll" {
            return Err(TaskFailure {
                error: "Lambda.Unknown".into(),
                cause: "Runtime exited with error: signal: killed".into(),
            });
        }
        self.inner.invoke(resource, input).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_polls_keep_failing_ends_failed_with_its_vendor_run_cancelled() {
    let h = Harness::start_with(HarnessOptions {
        wrap_tasks: Some(Box::new(|inner| Arc::new(BrokenPolls { inner }))),
        ..HarnessOptions::default()
    })
    .await;
    for vendor in VendorKind::ALL {
        let body = example_request(vendor, "broken-polls");
        h.trigger.handle_bytes(&body, None).await.unwrap();
    }
    for vendor in VendorKind::ALL {
        let manifest = h.run_to_end_for(vendor, "broken-polls").await;
        assert_eq!(manifest.state, RunState::Failed, "{vendor}: {manifest:?}");
        assert_eq!(
            manifest.attribution,
            Some(Attribution::Platform),
            "{vendor}"
        );
        let reason = manifest.reason.clone().unwrap_or_default();
        let id = manifest.vendor_run_id.clone();
        assert!(
            reason.contains(&format!("run {id} cancelled")) || reason.contains("has no cancel"),
            "{vendor}: the vendor run left behind is cancelled: {reason}"
        );
    }
    assert_eq!(
        h.sim.sim.control.requests("amc.cancel"),
        1,
        "AMC was asked to cancel its run once"
    );
}
