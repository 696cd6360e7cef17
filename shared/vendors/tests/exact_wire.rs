//! Parameter values reach the vendor byte for byte as the request wrote them: the create body is
//! captured at the simulator as it arrived (its raw text, not a re-parse) and searched for the
//! exact digits. AMC sends parameters as strings; CARTO sends typed JSON numbers, so a number
//! that cannot be sent exactly is refused by validation instead of being changed.

mod contract;
mod util;

use runbridge_core::{RunRequest, VendorKind};
use util::Harness;

async fn wire_body(h: &Harness, kind: VendorKind, doc: &str, path: &str) -> String {
    let request = RunRequest::from_json(doc.as_bytes())
        .unwrap_or_else(|e| panic!("{doc}: {e}"))
        .resolve(runbridge_core::OffsetDateTime::now_utc());
    h.sim.sim.recorder.enable();
    let vendor = h.vendor(kind);
    vendor
        .submit(&request, &util::key(&request))
        .await
        .expect("submit");
    let exchanges = h.sim.sim.recorder.exchanges();
    exchanges
        .into_iter()
        .rev()
        .find(|e| e.method == "POST" && e.path.ends_with(path))
        .expect("create recorded")
        .request_text
}

#[tokio::test]
async fn amc_parameter_values_reach_the_vendor_as_written() {
    let h = Harness::start(1.0).await;
    let doc = r#"{"vendor":"amc","instance_id":"amcinstance01","advertiser_id":"ENTITY1ABC",
        "marketplace_id":"ATVPDKIKX0DER","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY",
        "parameter_values":{"big":123456789012345678901234567890,"exp":1e2,"negzero":-0,
        "frac":0.10,"neg":-17,"s":"1e2","t":true}}"#;
    let body = wire_body(&h, VendorKind::Amc, doc, "/workflowExecutions").await;
    for exact in [
        r#""big":"123456789012345678901234567890""#,
        r#""exp":"1e2""#,
        r#""negzero":"-0""#,
        r#""frac":"0.10""#,
        r#""neg":"-17""#,
        r#""s":"1e2""#,
        r#""t":"true""#,
    ] {
        assert!(body.contains(exact), "{exact} not in the wire body {body}");
    }
}

#[tokio::test]
async fn carto_query_parameters_reach_the_vendor_as_written_or_are_refused() {
    let h = Harness::start(1.0).await;
    let doc = r#"{"vendor":"carto","connection":"carto_dw","query":"SELECT @a, @b, @c, @d",
        "query_parameters":{"a":9223372036854775807,"b":-9223372036854775808,"c":0.5,"d":"1e2"}}"#;
    let body = wire_body(&h, VendorKind::Carto, doc, "/job").await;
    for exact in [
        r#""a":9223372036854775807"#,
        r#""b":-9223372036854775808"#,
        r#""c":0.5"#,
        r#""d":"1e2""#,
    ] {
        assert!(body.contains(exact), "{exact} not in the wire body {body}");
    }
    for changed in [
        "123456789012345678901234567890",
        "1e2",
        "-0",
        "1.50",
        "[1e0]",
    ] {
        let doc = format!(
            r#"{{"vendor":"carto","connection":"carto_dw","query":"SELECT @p","query_parameters":{{"p":{changed}}}}}"#
        );
        let e = RunRequest::from_json(doc.as_bytes()).expect_err(changed);
        assert!(e.field.starts_with("query_parameters.p"), "{changed}: {e}");
        assert!(e.rule.contains("cannot be sent exactly"), "{changed}: {e}");
    }
}
