//! The throttle and submit-retry counts the handlers turn into `VendorThrottles` and
//! `SubmitRetries` are kept per (vendor, profile): a named profile's client counts under its
//! profile's name, never the default's. One test in its own binary, since the counts are
//! per process.

mod util;

use runbridge_core::VendorKind;
use runbridge_sim::auth::ACCOUNTS;
use runbridge_sim::{Fault, FaultRule, SimConfig, SimHandle};
use runbridge_vendors::http::{take_call_counts, CallCounts, RetryConfig};
use runbridge_vendors::{Settings, Vendors};
use serde_json::json;
use util::{key, request};

const AMC: VendorKind = VendorKind::Amc;

#[tokio::test]
async fn a_named_profiles_throttled_submit_is_counted_under_that_profile() {
    let sim = SimHandle::start(SimConfig {
        speed: 1.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.sim.control.assign(AMC, "amceu01", ACCOUNTS[1]);
    let mut settings = Settings::new();
    for (k, v) in sim.client_settings() {
        settings.set(k, v);
    }
    let mut eu = Settings::new();
    for (k, v) in sim.account_settings(AMC, ACCOUNTS[1]) {
        eu.set(k, v);
    }
    settings.set_profile("amc-eu", AMC, eu).unwrap();
    let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
    // The EU instance's submit is throttled once (a 429 the client retries, since AMC did not
    // act on it); the NA instance's, under the default profile, is not.
    sim.sim.faults.inject(FaultRule::new(
        AMC,
        Some("POST"),
        "amceu01",
        Fault::Status {
            status: 429,
            retry_after: None,
        },
        1,
    ));
    take_call_counts();
    for (instance, profile) in [("amceu01", "amc-eu"), ("amcna01", "default")] {
        let r = request(json!({
            "vendor": "amc",
            "profile": profile,
            "instance_id": instance,
            "advertiser_id": "ENTITY1ABC",
            "marketplace_id": "ATVPDKIKX0DER",
            "sql_query": "SELECT 1",
            "time_window_type": "MOST_RECENT_DAY",
        }));
        vendors
            .for_request(&r)
            .unwrap()
            .submit(&r, &key(&r))
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
    }
    assert_eq!(sim.sim.control.runs_created(AMC), 2);
    assert_eq!(
        take_call_counts(),
        [CallCounts {
            vendor: AMC,
            profile: "amc-eu".into(),
            throttles: 1,
            submit_retries: 1,
        }]
    );
    assert_eq!(take_call_counts(), [], "taking the counts resets them");
}
