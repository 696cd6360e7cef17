//! Test harness: a simulator on a loopback port and vendor clients pointed at it.
#![allow(dead_code)]

use std::sync::Arc;

use runbridge_core::{
    IdempotencyKey, ResolvedRequest, RunRequest, RunState, RunStatus, VendorKind,
};
use runbridge_sim::{SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{RunRef, Settings, Vendor, Vendors};

/// A started simulator and the clients of every vendor.
pub struct Harness {
    pub sim: SimHandle,
    pub settings: Settings,
    pub vendors: Vendors,
}

impl Harness {
    /// A simulator running `speed` simulated seconds per real second.
    pub async fn start(speed: f64) -> Self {
        Self::with_config(SimConfig {
            speed,
            ..SimConfig::default()
        })
        .await
    }

    pub async fn with_config(config: SimConfig) -> Self {
        Self::with_settings(config, &[]).await
    }

    /// Like [`Self::with_config`], with client settings `overrides` set after the simulator's.
    pub async fn with_settings(config: SimConfig, overrides: &[(&str, &str)]) -> Self {
        let sim = SimHandle::start(config).await.expect("simulator starts");
        let mut settings = Settings::new();
        for (k, v) in sim.client_settings() {
            settings.set(k, v);
        }
        for (k, v) in overrides {
            settings.set(*k, *v);
        }
        let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
        Self {
            sim,
            settings,
            vendors,
        }
    }

    pub fn vendor(&self, kind: VendorKind) -> Arc<dyn Vendor> {
        self.vendors.get(kind).expect("vendor configured")
    }

    pub fn runs_created(&self, kind: VendorKind) -> u64 {
        self.sim.sim.control.runs_created(kind)
    }
}

/// Parses a request document (panics with the validation error).
pub fn request(json: serde_json::Value) -> ResolvedRequest {
    RunRequest::from_value(json)
        .unwrap_or_else(|e| panic!("test request is invalid: {e}"))
        .resolve(runbridge_core::OffsetDateTime::now_utc())
}

pub fn key(request: &ResolvedRequest) -> IdempotencyKey {
    IdempotencyKey::for_request(request, None)
}

/// Polls `status` until the run is final, advancing the simulated clock between polls so tests
/// do not wait in real time. Returns the final status and the number of polls.
pub async fn poll_until_final(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    run_id: &str,
) -> (RunStatus, u32) {
    let mut polls = 0;
    loop {
        let status = vendor
            .status(RunRef {
                request,
                vendor_run_id: run_id,
            })
            .await
            .expect("status");
        polls += 1;
        if status.state.is_final() {
            return (status, polls);
        }
        assert!(polls < 500, "run never finished; last status {status:?}");
        h.sim.sim.clock.advance(30.0);
    }
}

pub fn is_final(s: RunState) -> bool {
    s.is_final()
}
