//! Named credential profiles against the simulators: two AMC accounts (NA and EU, different
//! client ids and refresh tokens) and two Amperity tenants with their own API keys, in one
//! `Vendors`. Each profile's client obtains and uses its own token, and the simulator refuses a
//! request run under the wrong account's credentials.

mod util;

use runbridge_core::{ResolvedRequest, RunState, VendorKind};
use runbridge_sim::auth::{ACCOUNTS, DEFAULT_ACCOUNT};
use runbridge_sim::{SimConfig, SimHandle};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, VendorError, Vendors};
use serde_json::json;
use util::{key, request};

const AMC: VendorKind = VendorKind::Amc;
const AMPERITY: VendorKind = VendorKind::Amperity;
const EU: &str = ACCOUNTS[1];

fn amc(instance: &str, profile: &str) -> ResolvedRequest {
    request(json!({
        "vendor": "amc",
        "profile": profile,
        "instance_id": instance,
        "advertiser_id": "ENTITY1ABC",
        "marketplace_id": "ATVPDKIKX0DER",
        "sql_query": "SELECT 1",
        "time_window_type": "MOST_RECENT_DAY",
    }))
}

fn amperity(tenant: &str, profile: &str) -> ResolvedRequest {
    request(json!({
        "vendor": "amperity",
        "profile": profile,
        "tenant": tenant,
        "config_id": "cg-files01",
        "range_from": "2026-11-26T00:00:00Z",
        "range_to": "2026-11-27T00:00:00Z",
        "run_mode": "full",
    }))
}

/// The simulator with the EU AMC instance and the second Amperity tenant given to the second
/// account, and settings with the default profiles plus `amc-eu` and `amperity-b` for it.
async fn two_accounts() -> (SimHandle, Settings) {
    let sim = SimHandle::start(SimConfig {
        speed: 1.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.sim.control.assign(AMC, "amceu01", EU);
    sim.sim.control.assign(AMPERITY, "beta", EU);
    let mut settings = Settings::new();
    for (k, v) in sim.client_settings() {
        settings.set(k, v);
    }
    for (name, vendor) in [("amc-eu", AMC), ("amperity-b", AMPERITY)] {
        let mut profile = Settings::new();
        for (k, v) in sim.account_settings(vendor, EU) {
            profile.set(k, v);
        }
        settings.set_profile(name, vendor, profile).unwrap();
    }
    (sim, settings)
}

#[tokio::test]
async fn each_amc_profile_gets_and_uses_its_own_token() {
    let (sim, settings) = two_accounts().await;
    let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
    let tokens = &sim.sim.tokens;
    for (instance, profile) in [("amcna01", "default"), ("amceu01", "amc-eu")] {
        let r = amc(instance, profile);
        let client = vendors.for_request(&r).expect("profile configured");
        for _ in 0..2 {
            // Two calls per profile: the second reuses the profile's cached token.
            client.submit(&r, &key(&r)).await.unwrap_or_else(|e| {
                panic!("{profile} on {instance}: {e}");
            });
        }
    }
    assert_eq!(
        tokens.issued_count_for(AMC, DEFAULT_ACCOUNT),
        1,
        "NA: one token, reused"
    );
    assert_eq!(
        tokens.issued_count_for(AMC, EU),
        1,
        "EU: its own token, reused"
    );
    assert_eq!(sim.sim.control.runs_created(AMC), 4);

    // The wrong account for an instance is refused by the simulator, both ways round.
    for (instance, profile) in [("amceu01", "default"), ("amcna01", "amc-eu")] {
        let r = amc(instance, profile);
        match vendors.for_request(&r).unwrap().submit(&r, &key(&r)).await {
            // AMC answers 403; the client reads a 403 as an authorization failure.
            Err(VendorError::Forbidden { .. } | VendorError::Unauthorized { status: 403, .. }) => {}
            other => panic!("{profile} on {instance}: expected 403, got {other:?}"),
        }
    }
    assert_eq!(sim.sim.control.runs_created(AMC), 4, "nothing was created");
}

#[tokio::test]
async fn a_profile_with_another_accounts_refresh_token_gets_no_token() {
    let (sim, mut settings) = two_accounts().await;
    // The EU client with the NA refresh token: Login with Amazon refuses the grant.
    let mut wrong = Settings::new();
    for (k, v) in sim.account_settings(AMC, EU) {
        settings.set(k.clone(), v.clone());
        wrong.set(k, v);
    }
    wrong.set("amc.refresh_token", runbridge_sim::auth::refresh_token(AMC));
    settings.set_profile("amc-eu", AMC, wrong).unwrap();
    let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
    let r = amc("amceu01", "amc-eu");
    let err = vendors
        .for_request(&r)
        .unwrap()
        .submit(&r, &key(&r))
        .await
        .expect_err("a mixed credential set must not get a token");
    assert!(
        matches!(
            err,
            VendorError::Unauthorized { .. } | VendorError::Rejected { .. }
        ),
        "{err:?}"
    );
    assert_eq!(sim.sim.tokens.issued_count_for(AMC, EU), 0);
    assert_eq!(sim.sim.control.runs_created(AMC), 0);
}

#[tokio::test]
async fn two_amperity_tenants_each_use_their_own_api_key() {
    let (sim, settings) = two_accounts().await;
    let vendors = Vendors::from_settings(&settings, &RetryConfig::fast());
    for (tenant, profile) in [("acme", "default"), ("beta", "amperity-b")] {
        let r = amperity(tenant, profile);
        let client = vendors.for_request(&r).unwrap();
        let run = client
            .submit(&r, &key(&r))
            .await
            .unwrap_or_else(|e| panic!("{profile} on {tenant}: {e}"));
        let status = client
            .status(runbridge_vendors::RunRef {
                request: &r,
                vendor_run_id: &run.vendor_run_id,
            })
            .await
            .expect("status with the profile's token");
        assert_ne!(status.state, RunState::Failed);
    }
    assert_eq!(
        sim.sim.tokens.issued_count_for(AMPERITY, DEFAULT_ACCOUNT),
        1
    );
    assert_eq!(sim.sim.tokens.issued_count_for(AMPERITY, EU), 1);
    for (tenant, profile) in [("beta", "default"), ("acme", "amperity-b")] {
        let r = amperity(tenant, profile);
        match vendors.for_request(&r).unwrap().submit(&r, &key(&r)).await {
            Err(VendorError::Unauthorized { .. }) => {}
            other => panic!("{profile} on {tenant}: expected 401, got {other:?}"),
        }
    }
    assert_eq!(sim.sim.control.runs_created(AMPERITY), 2);
}
