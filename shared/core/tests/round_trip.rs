//! Whatever validation accepts reads back unchanged from every store it passes through: the
//! queue message (the request's own JSON), the ledger entry, the run handle and the manifest.
//! Requests are generated as raw text (nested `query_parameters` up to far past the depth
//! limit, numbers written as `1E2`, `-0`, `0.10` or 30 digits, escaped strings); a request that
//! would not read back must be refused by validation, naming a field, before anything is claimed.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use runbridge_core::request::MAX_REQUEST_DEPTH;
use runbridge_core::{
    Fingerprint, IdempotencyKey, LedgerEntry, Manifest, OffsetDateTime, RunHandle, RunRequest,
    RunState,
};

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-0".to_owned()),
        Just("1E2".to_owned()),
        Just("0.10".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("-1.5e-7".to_owned()),
        Just("18446744073709551615".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        number(),
        Just("true".to_owned()),
        Just("null".to_owned()),
        "[a-z0-9 é\u{1F600}]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#""\u00e9\n\"\\\/""#.to_owned()),
    ]
}

/// A JSON value as text: a tree of arrays and objects, or a plain chain nested `depth` deep.
fn value() -> impl Strategy<Value = String> {
    let tree = scalar().prop_recursive(12, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4).prop_map(|m| {
                let members: Vec<String> =
                    m.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    let chain = (1usize..140, scalar(), any::<bool>()).prop_map(|(depth, leaf, objects)| {
        if objects {
            format!("{}{leaf}{}", "{\"k\":".repeat(depth), "}".repeat(depth))
        } else {
            format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth))
        }
    });
    prop_oneof![tree, chain]
}

/// How deep `value` nests (a scalar is 0).
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every store the accepted `request` passes through gives it back unchanged.
fn stores_read_back(request: &RunRequest) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    // The queue message and a rerun's body: the request's own JSON, read by the strict parse.
    let text = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let back = RunRequest::from_json(&text).map_err(|e| format!("queue message: {e}"))?;
    if &back != request {
        return Err("queue message reads back differently".into());
    }
    let resolved = request.resolve(now);
    let key = IdempotencyKey::for_request(&resolved, None);
    let entry = LedgerEntry::claimed(
        key.clone(),
        resolved.clone(),
        Fingerprint::of(request),
        now,
        now + time::Duration::minutes(1),
    );
    let stored = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
    let read: LedgerEntry =
        serde_json::from_str(&stored).map_err(|e| format!("ledger entry: {e}"))?;
    if read != entry {
        return Err("ledger entry reads back differently".into());
    }
    let handle = RunHandle::new(key, resolved, "run-1".into(), now);
    let stored = serde_json::to_string(&handle).map_err(|e| e.to_string())?;
    let read: RunHandle = serde_json::from_str(&stored).map_err(|e| format!("handle: {e}"))?;
    if read != handle {
        return Err("handle reads back differently".into());
    }
    let manifest = Manifest::new(&handle, RunState::Succeeded, None, None, Vec::new(), now);
    let stored = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    let read: Manifest = serde_json::from_str(&stored).map_err(|e| format!("manifest: {e}"))?;
    if read != manifest {
        return Err("manifest reads back differently".into());
    }
    Ok(())
}

#[test]
fn every_accepted_request_round_trips_through_every_store() {
    let mut runner = TestRunner::new(Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::cell::RefCell::new((0u32, 0u32));
    runner
        .run(&value(), |parameter| {
            let doc = format!(
                r#"{{"vendor":"carto","connection":"c","query":"SELECT @p","query_parameters":{{"p":{parameter}}}}}"#
            );
            match RunRequest::from_json(doc.as_bytes()) {
                Ok(request) => {
                    counts.borrow_mut().0 += 1;
                    let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
                    // The document is level 1, `query_parameters` 2, `p`'s value 3.
                    let nesting = 2 + depth(&parsed["query_parameters"]["p"]);
                    prop_assert!(nesting <= MAX_REQUEST_DEPTH, "accepted at depth {nesting}");
                    stores_read_back(&request).map_err(TestCaseError::fail)?;
                }
                Err(e) => {
                    counts.borrow_mut().1 += 1;
                    prop_assert!(!e.field.is_empty() && !e.rule.is_empty(), "{e:?}");
                }
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused) = *counts.borrow();
    assert!(
        accepted > 100 && refused > 50,
        "{accepted} accepted, {refused} refused"
    );
}

/// The finding: parameters nested about 125 deep passed validation, the vendor job was created,
/// and the ledger entry could not be read back. Now refused before anything, at the field.
#[test]
fn the_deep_request_is_refused_naming_the_field() {
    for depth in [MAX_REQUEST_DEPTH, 125, 127, 200] {
        let doc = format!(
            r#"{{"vendor":"carto","connection":"c","query":"SELECT @p","query_parameters":{{"p":{}1{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let e = RunRequest::from_json(doc.as_bytes()).unwrap_err();
        assert!(e.field.starts_with("query_parameters.p"), "{depth}: {e}");
    }
    // At the limit it is accepted and reads back.
    let deepest = MAX_REQUEST_DEPTH - 2;
    let doc = format!(
        r#"{{"vendor":"carto","connection":"c","query":"SELECT @p","query_parameters":{{"p":{}1{}}}}}"#,
        "[".repeat(deepest),
        "]".repeat(deepest)
    );
    let request = RunRequest::from_json(doc.as_bytes()).unwrap();
    stores_read_back(&request).unwrap();
}
