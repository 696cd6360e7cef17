use runbridge_core::{RunRequest, VendorKind};

fn parse(json: &str) -> Result<RunRequest, runbridge_core::ValidationError> {
    RunRequest::from_json(json.as_bytes())
}

#[test]
fn amc_explicit_request_parses() {
    let r = parse(
        r#"{"vendor":"amc","request_id":"nightly-1","instance_id":"amc123","advertiser_id":"ENTITY1",
            "marketplace_id":"ATVPDKIKX0DER","sql_query":"SELECT 1","time_window_type":"EXPLICIT",
            "time_window_start":"2026-11-26T00:00:00Z","time_window_end":"2026-11-27T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(r.vendor(), VendorKind::Amc);
    let back = serde_json::to_string(&r).unwrap();
    assert_eq!(parse(&back).unwrap(), r, "serialisation round-trips");
}

#[test]
fn unknown_field_is_named() {
    let e = parse(r#"{"vendor":"carto","connection":"c","query":"SELECT 1","colour":"red"}"#)
        .unwrap_err();
    assert_eq!(e.field, "colour", "{e}");
}

#[test]
fn missing_field_is_named() {
    let e = parse(r#"{"vendor":"carto","query":"SELECT 1"}"#).unwrap_err();
    assert_eq!(e.field, "connection", "{e}");
}

#[test]
fn unknown_vendor_is_named() {
    let e = parse(r#"{"vendor":"snowflake"}"#).unwrap_err();
    assert_eq!(e.field, "vendor");
}

#[test]
fn wrong_type_is_named() {
    let e = parse(r#"{"vendor":"amperity","tenant":"acme","config_id":"cg-1","run_mode":"fast"}"#)
        .unwrap_err();
    assert_eq!(e.field, "run_mode", "{e}");
    let e = parse(r#"{"vendor":"carto","connection":"c","query":5}"#).unwrap_err();
    assert_eq!(e.field, "query", "{e}");
}

#[test]
fn amperity_rules() {
    let e = parse(r#"{"vendor":"amperity","tenant":"acme","config_id":"xx-1"}"#).unwrap_err();
    assert_eq!(e.field, "config_id");
    let e = parse(
        r#"{"vendor":"amperity","tenant":"acme","config_id":"cg-1","range_from":"2026-11-27T00:00:00Z","range_to":"2026-11-26T00:00:00Z"}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "range_to");
    let e = parse(r#"{"vendor":"amperity","tenant":"acme","config_id":"cg-1","range_from":"2026-11-27T00:00:00+01:00"}"#)
        .unwrap_err();
    assert_eq!(e.field, "range_from");
    assert!(e.rule.contains("UTC"));
}

#[test]
fn prefix_traversal_is_rejected() {
    for p in ["../x", "a/../b", "/abs", "a//b", "a/./b", "a b"] {
        let doc = format!(
            r#"{{"vendor":"carto","connection":"c","query":"SELECT 1","output_prefix":"{p}"}}"#
        );
        let e = parse(&doc).unwrap_err();
        assert_eq!(e.field, "output_prefix", "{p}: {e}");
    }
}

#[test]
fn not_json_and_not_utf8() {
    assert_eq!(RunRequest::from_json(b"{").unwrap_err().field, "$");
    assert_eq!(RunRequest::from_json(&[0xff, 0xfe]).unwrap_err().field, "$");
    assert_eq!(RunRequest::from_json(b"[]").unwrap_err().field, "$");
}

/// Issue 15: Experience Platform sandbox names are lower case; `Prod` is refused up front.
#[test]
fn adobe_sandbox_name_must_be_lower_case() {
    let doc = |sandbox: &str| {
        format!(
            r#"{{"vendor":"adobe","flow_id":"9f1a2b3c-0000-4000-8000-000000000001",
                "window_start":"2026-11-26T00:00:00Z","window_end":"2026-11-27T00:00:00Z",
                "sandbox_name":"{sandbox}"}}"#
        )
    };
    let r = parse(&doc("Prod")).and_then(|r| r.validate().map(|_| r));
    let e = r.unwrap_err();
    assert_eq!(e.field, "sandbox_name", "{e}");
    assert!(e.to_string().contains("lower case"), "{e}");
    let ok = parse(&doc("dev-2")).unwrap();
    ok.validate().unwrap();
}
