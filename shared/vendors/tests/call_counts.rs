//! The throttle and submit-retry counts the handlers turn into `VendorThrottles` and
//! `SubmitRetries` are kept per (vendor, profile): a named profile's client counts under its
//! profile's name, never the default's; and they are the counts of the work they were taken
//! around ([`counted`]), not the process's.

mod util;

use runbridge_core::VendorKind;
use runbridge_sim::auth::ACCOUNTS;
use runbridge_sim::{Fault, FaultRule, SimConfig, SimHandle};
use runbridge_vendors::http::{counted, CallCounts, RetryConfig};
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
    let submits = async {
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
    };
    let ((), counts) = counted(submits).await;
    assert_eq!(sim.sim.control.runs_created(AMC), 2);
    assert_eq!(
        counts,
        [CallCounts {
            vendor: AMC,
            profile: "amc-eu".into(),
            throttles: 1,
            submit_retries: 1,
        }]
    );
    // A throttled call outside any scope is counted nowhere, and a later scope starts from
    // nothing: the counts went with the work that made them.
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
    let submit = |instance: &str, profile: &str, sql: &str| {
        let r = request(json!({
            "vendor": "amc",
            "profile": profile,
            "instance_id": instance,
            "advertiser_id": "ENTITY1ABC",
            "marketplace_id": "ATVPDKIKX0DER",
            "sql_query": sql,
            "time_window_type": "MOST_RECENT_DAY",
        }));
        let vendor = vendors.for_request(&r).unwrap();
        async move { vendor.submit(&r, &key(&r)).await }
    };
    submit("amceu01", "amc-eu", "SELECT 2")
        .await
        .expect("a throttled submit outside a scope");
    let (submitted, counts) = counted(submit("amcna01", "default", "SELECT 3")).await;
    submitted.expect("an unthrottled submit");
    assert_eq!(sim.sim.control.runs_created(AMC), 4);
    assert_eq!(counts, [], "a scope counts only its own calls");
}
