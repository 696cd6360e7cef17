//! The paths other crates name keep resolving after the vendor simulators moved to folders of
//! their own: `runbridge_sim::vendors::{adobe, amc, amperity, carto, common}`.

use runbridge_core::VendorKind;
use runbridge_sim::vendors::adobe::{BASE_PATH, FILE_FLOW_ID, ORG_ID, TABLE_FLOW_ID, TOKEN_PATH};
use runbridge_sim::vendors::{common, ALL};

#[test]
fn former_vendor_paths_name_the_moved_modules() {
    for vendor in VendorKind::ALL {
        assert_eq!(
            common::client_id(vendor),
            runbridge_sim::auth::client_id(vendor)
        );
        assert_eq!(
            common::client_secret(vendor),
            runbridge_sim::auth::client_secret(vendor)
        );
        assert_eq!(
            common::refresh_token(vendor),
            runbridge_sim::auth::refresh_token(vendor)
        );
    }
    assert_eq!(BASE_PATH, runbridge_sim::adobe::BASE_PATH);
    assert_eq!(TOKEN_PATH, runbridge_sim::adobe::TOKEN_PATH);
    assert_eq!(ORG_ID, runbridge_sim::adobe::ORG_ID);
    assert_ne!(FILE_FLOW_ID, TABLE_FLOW_ID);
    let kinds: Vec<VendorKind> = ALL.iter().map(|v| v.kind).collect();
    assert_eq!(kinds, VendorKind::ALL);
    assert_eq!(
        runbridge_sim::vendors::amperity::API_VERSION,
        runbridge_sim::amperity::API_VERSION
    );
    assert_eq!(
        runbridge_sim::vendors::carto::AUDIENCE,
        runbridge_sim::carto::AUDIENCE
    );
    assert_eq!(runbridge_sim::vendors::amc::SIM.kind, VendorKind::Amc);
}
