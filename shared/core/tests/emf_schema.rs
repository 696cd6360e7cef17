//! runbridge's EMF documents against the EMF specification: the structure by
//! `schema/emf.schema.json`, the member references by `emf::check_references`.

use runbridge_core::emf::{check_references, MetricDoc, Unit};
use serde_json::{json, Value};
use time::macros::datetime;

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../../../schema/emf.schema.json")).unwrap();
    jsonschema::validator_for(&schema).expect("the EMF schema compiles")
}

/// Validates a document as CloudWatch Logs would: schema, then references.
pub fn check(doc: &Value) -> Result<(), String> {
    let v = validator();
    if let Some(e) = v.iter_errors(doc).next() {
        return Err(format!("{e} at {}", e.instance_path()));
    }
    check_references(doc)
}

#[test]
fn every_unit_and_dimension_shape_runbridge_writes_is_valid_emf() {
    let doc = MetricDoc::new(datetime!(2026-11-27 06:00 UTC))
        .dimension("Vendor", "amc")
        .split_by("Attribution", "platform")
        .metric("RunsFailed", Unit::Count, 1.0)
        .metric("CollectBytes", Unit::Bytes, 10.0)
        .metric("CollectSeconds", Unit::Seconds, 0.5)
        .metric("CollectMBps", Unit::MegabytesPerSecond, 20.0)
        .property("key", "amc-x")
        .to_json();
    check(&doc).unwrap();
}

#[test]
fn documents_that_break_the_specification_are_refused() {
    let good = MetricDoc::new(datetime!(2026-11-27 06:00 UTC))
        .dimension("Vendor", "amc")
        .metric("RunsSubmitted", Unit::Count, 1.0)
        .to_json();
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Runs");
    let mut no_timestamp = good.clone();
    no_timestamp["_aws"]
        .as_object_mut()
        .unwrap()
        .remove("Timestamp");
    let mut extra_member = good.clone();
    extra_member["_aws"]["CloudWatchMetrics"][0]["Unit"] = json!("Count");
    let mut missing_dimension = good.clone();
    missing_dimension.as_object_mut().unwrap().remove("Vendor");
    let mut string_metric = good.clone();
    string_metric["RunsSubmitted"] = json!("1");
    for (what, doc) in [
        ("unit", bad_unit),
        ("timestamp", no_timestamp),
        ("extra member", extra_member),
        ("dimension", missing_dimension),
        ("metric value", string_metric),
    ] {
        assert!(check(&doc).is_err(), "{what}: {doc}");
    }
}
