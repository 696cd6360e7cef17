//! No panic on any request (issue 25): requests of every vendor written as raw text, each field
//! given a hostile value — numbers past every integer and float limit (`1e400`, 400 digits,
//! `-0`, `5e-324`), dates at and past the calendar's ends and in odd spellings, unicode, escapes
//! and lone surrogates, nesting past the depth limit, the wrong JSON type — are accepted or
//! refused naming a field, never a panic; and an accepted request reads back as itself from its
//! own JSON, is keyed, fingerprinted and resolved at any anchor the calendar holds.
//!
//! Bounded (a few hundred cases per property) so it runs in every `cargo test` within seconds.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use runbridge_core::{
    Fingerprint, IdempotencyKey, LedgerEntry, OffsetDateTime, RunRequest, COMMON_FIELDS,
};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A number as JSON text: ordinary, at the limits of `u64`, `i64` and `f64`, and past them.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1E2",
            "1e-2",
            "0.10",
            "2.0",
            "3600.0",
            "1e400",
            "-1e400",
            "1e-400",
            "5e-324",
            "1.7976931348623157e308",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
        ])
        .prop_map(str::to_owned),
        (1usize..400).prop_map(|n| "9".repeat(n)),
        (1usize..400).prop_map(|n| format!("0.{}1", "0".repeat(n))),
    ]
}

/// A timestamp or date string: valid, at the calendar's ends, impossible, oddly spelled.
fn date() -> impl Strategy<Value = String> {
    let spelled = prop::sample::select(vec![
        "2026-11-26",
        "2026-11-26T00:00:00Z",
        "2026-11-26t00:00:00z",
        "2026-11-26 00:00:00Z",
        "2026-11-26T00:00:00+00:00",
        "2026-11-26T00:00:00-00:00",
        "2026-11-26T00:00:00.5Z",
        "2026-11-26T23:59:60Z",
        "2026-02-29",
        "2024-02-29T00:00:00Z",
        "2026-13-01",
        "0000-01-01T00:00:00Z",
        "0000-01-01",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31",
        "+10000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "２０２６-１１-２６",
        "2026-11-26T00:00:00.999999999999Z",
        "",
    ])
    .prop_map(str::to_owned);
    let generated = (0i32..=9999, 0u8..14, 0u8..33, 0u8..25, 0u8..61)
        .prop_map(|(y, m, d, h, s)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:{s:02}Z"));
    prop_oneof![spelled, generated]
}

/// Any text, as a JSON string literal (escapes, and lone surrogates written as escapes).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[a-z0-9_.-]{0,70}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::sample::select(vec![
            r#""\ud800""#,
            r#""\udfff\ud800""#,
            r#""\u0000""#,
            r#""é\u00e9\n\t""#,
            r#""../x""#,
            r#""SELECT @p""#,
        ])
        .prop_map(str::to_owned),
    ]
}

/// A value nested `depth` deep around `leaf`.
fn nested() -> impl Strategy<Value = String> {
    (1usize..200, any::<bool>()).prop_map(|(depth, objects)| {
        if objects {
            format!("{}1{}", r#"{"k":"#.repeat(depth), "}".repeat(depth))
        } else {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
        }
    })
}

/// Any hostile value for a field: one of the above, or the wrong type.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => number(),
        3 => date().prop_map(|d| serde_json::to_string(&d).unwrap()),
        2 => text(),
        1 => nested(),
        1 => prop::sample::select(vec!["null", "true", "[]", "{}", "[null]", r#"{"a":null}"#])
            .prop_map(str::to_owned),
        1 => prop::collection::vec(number(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
    ]
}

/// A valid request of each vendor, as (field, value text) pairs.
fn base(vendor: usize) -> Vec<(&'static str, String)> {
    let s = |v: &str| serde_json::to_string(v).unwrap();
    let mut fields = vec![
        ("request_id", s("r-1")),
        ("deadline_seconds", "3600".into()),
    ];
    fields.extend(match vendor {
        0 => vec![
            ("vendor", s("amc")),
            ("instance_id", s("amcabc123def")),
            ("advertiser_id", s("ENTITY1ABC")),
            ("marketplace_id", s("ATVPDKIKX0DER")),
            ("sql_query", s("SELECT 1")),
            ("time_window_type", s("EXPLICIT")),
            ("time_window_start", s("2026-11-26T00:00:00Z")),
            ("time_window_end", s("2026-11-27T00:00:00Z")),
            ("parameter_values", r#"{"a":1}"#.into()),
        ],
        1 => vec![
            ("vendor", s("amperity")),
            ("tenant", s("acme")),
            ("config_id", s("cg-1")),
            ("range_from", s("2026-11-26T00:00:00Z")),
            ("range_to", s("2026-11-27T00:00:00Z")),
        ],
        2 => vec![
            ("vendor", s("adobe")),
            ("flow_id", s("3abea21c-7e36-4be1-bec1-d3bad0e3e0de")),
            ("sandbox_name", s("prod")),
            ("start_time", s("2026-11-27T00:00:00Z")),
            ("window_start", s("2026-11-26T00:00:00Z")),
            ("window_end", s("2026-11-27T00:00:00Z")),
        ],
        _ => vec![
            ("vendor", s("carto")),
            ("connection", s("carto_dw")),
            ("query", s("SELECT @a")),
            ("query_parameters", r#"{"a":1}"#.into()),
        ],
    });
    fields
}

/// A request of `vendor` with `edits` applied: each replaces (or adds) a field, by index into
/// the vendor's own fields and the common ones; a parameter edit puts the value inside
/// `parameter_values` / `query_parameters`.
fn document(vendor: usize, edits: &[(prop::sample::Index, u8, String)]) -> String {
    let mut fields = base(vendor);
    for (at, how, value) in edits {
        let names: Vec<&'static str> = fields
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| *k != "vendor")
            .chain(COMMON_FIELDS)
            .collect();
        let name = names[at.index(names.len())];
        let value = match (how % 3, vendor) {
            (0, 0) => format!(r#"{{"a":{value}}}"#),
            (0, 3) => format!(r#"{{"a":{value}}}"#),
            (1, _) if name == "poll" => {
                format!(r#"{{"first_seconds":{value},"factor":0.5,"max_seconds":600}}"#)
            }
            _ => value.clone(),
        };
        let name = match (how % 3, vendor) {
            (0, 0) => "parameter_values",
            (0, 3) => "query_parameters",
            _ => name,
        };
        match fields.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => fields.push((name, value)),
        }
    }
    let members: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", members.join(","))
}

/// What an accepted request must survive: its own JSON read back, its key, fingerprint and
/// workflow name, its resolution at `anchor`, and the ledger entry holding it.
fn accepted_holds(request: &RunRequest, anchor: OffsetDateTime) -> Result<(), TestCaseError> {
    let text = serde_json::to_vec(request).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = RunRequest::from_json(&text)
        .map_err(|e| TestCaseError::fail(format!("accepted, then refused read back: {e}")))?;
    prop_assert_eq!(&back, request, "reads back differently");
    let resolved = request.resolve(anchor);
    let key = IdempotencyKey::for_request(&resolved, Some(anchor));
    let _ = request.workflow_key();
    let entry = LedgerEntry::claimed(key, resolved, Fingerprint::of(request), anchor, anchor);
    let stored = serde_json::to_string(&entry).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let read: LedgerEntry = serde_json::from_str(&stored)
        .map_err(|e| TestCaseError::fail(format!("ledger entry does not read back: {e}")))?;
    prop_assert_eq!(read, entry);
    Ok(())
}

/// An anchor anywhere in years 1 to 9998 (a schedule time or a backfill window's end).
fn anchor() -> impl Strategy<Value = OffsetDateTime> {
    // 0001-01-01 to 9998-12-31 in unix seconds.
    (-62_135_596_800i64..253_370_764_800)
        .prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
}

#[test]
fn hostile_fields_are_refused_or_round_trip_never_a_panic() {
    let mut runner = TestRunner::new(config(1_500));
    let counts = std::cell::Cell::new((0u32, 0u32));
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), hostile()), 1..4);
    runner
        .run(&(0usize..4, edits, anchor()), |(vendor, edits, anchor)| {
            let doc = document(vendor, &edits);
            match RunRequest::from_json(doc.as_bytes()) {
                Ok(request) => {
                    let (a, r) = counts.get();
                    counts.set((a + 1, r));
                    accepted_holds(&request, anchor)?;
                }
                Err(e) => {
                    let (a, r) = counts.get();
                    counts.set((a, r + 1));
                    prop_assert!(!e.field.is_empty() && !e.rule.is_empty(), "{e:?} for {doc}");
                }
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused) = counts.get();
    // Both outcomes are exercised: a generator that only made garbage would prove nothing.
    assert!(
        accepted > 50 && refused > 500,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn every_valid_base_request_is_accepted() {
    for vendor in 0..4 {
        let doc = document(vendor, &[]);
        RunRequest::from_json(doc.as_bytes()).unwrap_or_else(|e| panic!("{doc}: {e}"));
    }
}

#[test]
fn arbitrary_json_text_never_panics() {
    // Any JSON-ish text built from the hostile pieces at the top level, and truncations of it.
    let mut runner = TestRunner::new(config(500));
    let doc = prop::collection::vec(("[a-z_]{1,16}", hostile()), 0..8).prop_map(|members| {
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    });
    runner
        .run(&(doc, any::<prop::sample::Index>()), |(doc, cut)| {
            let _ = RunRequest::from_json(doc.as_bytes());
            let bytes = doc.as_bytes();
            let _ = RunRequest::from_json(&bytes[..cut.index(bytes.len() + 1)]);
            Ok(())
        })
        .unwrap();
}
