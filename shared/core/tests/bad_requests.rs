//! The bad-request catalogue: every entry is rejected with an error naming its field, and no
//! input whatsoever makes the parser panic.
//!
//! `data/bad-requests.json` holds the named cases; each asserts the field and the rule of its
//! rejection and carries a class. At commit `20045d5` it had 177 cases, 26 of them marked
//! `beyond_schema` (with the reason no JSON Schema can state their rule):
//!
//! | class | cases | what |
//! |---|---|---|
//! | windows | 53 | non-UTC, `-00:00`, leap seconds (`:60`), fractional seconds for AMC and Adobe, impossible dates, reversed or equal windows, EXPLICIT rules |
//! | ids and vendor rules | 28 | id alphabets and lengths, Amperity prefixes and tenant case, Adobe `flow_id` UUID, courier-group-only fields, `delta_column` on a first run only |
//! | sql | 22 | empty, oversized, NUL; AMC single-line rules: comment-only, unterminated quote or comment, line break or tab inside a literal or quoted identifier |
//! | output_prefix | 17 | traversal, absolute, empty segments, and the layout's own segments (`vendor=`, `date=`, `run=`, any `_…` folder such as `_staging`, `_ledger`) |
//! | common fields | 17 | `request_id` alphabet and length, `deadline_seconds` range and whole seconds, `profile` name (case, length, `.`, leading `-`, type) |
//! | document | 16 | bytes that are not a request: not JSON, not UTF-8, a UTF-8 BOM, not an object, duplicate keys (named by path) |
//! | parameters | 14 | parameter names, AMC value types (no null, list or object) |
//! | shape | 10 | missing or unknown vendor, unknown fields (per vendor, closed objects) |

use runbridge_core::RunRequest;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    /// The class of mistake (the module doc lists the classes and their counts).
    class: String,
    #[serde(default)]
    json: Option<serde_json::Value>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    hex: Option<String>,
    field: String,
    rule: String,
    /// Why JSON Schema cannot state this rule (a comparison of two fields, SQL lexing, a
    /// calendar, duplicate keys, bytes that are not JSON); absent when the schema must refuse it.
    #[serde(default)]
    beyond_schema: Option<String>,
}

impl Case {
    fn body(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.as_bytes().to_vec();
        }
        if let Some(h) = &self.hex {
            return hex::decode(h).expect("catalogue hex is valid");
        }
        serde_json::to_vec(self.json.as_ref().expect("a case has json, raw or hex")).unwrap()
    }
}

fn catalogue() -> Vec<Case> {
    serde_json::from_slice(include_bytes!("data/bad-requests.json")).expect("catalogue parses")
}

#[test]
fn every_bad_request_is_rejected_naming_its_field() {
    let cases = catalogue();
    assert!(
        cases.len() >= 150,
        "the catalogue keeps at least 150 cases, has {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        if case.class.trim().is_empty() {
            failures.push(format!("{}: has no class", case.name));
        }
        match RunRequest::from_json(&case.body()) {
            Ok(r) => failures.push(format!("{}: accepted as {r:?}", case.name)),
            Err(e) if e.field != case.field => failures.push(format!(
                "{}: field `{}`, expected `{}` ({e})",
                case.name, e.field, case.field
            )),
            Err(e) if !e.rule.contains(&case.rule) => failures.push(format!(
                "{}: rule {:?} lacks {:?}",
                case.name, e.rule, case.rule
            )),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_examples_are_valid() {
    for (name, body) in [
        ("amc", include_str!("../../../examples/amc.json")),
        ("amc-na", include_str!("../../../examples/amc-na.json")),
        ("amc-eu", include_str!("../../../examples/amc-eu.json")),
        ("amperity", include_str!("../../../examples/amperity.json")),
        (
            "amperity-b",
            include_str!("../../../examples/amperity-b.json"),
        ),
        ("adobe", include_str!("../../../examples/adobe.json")),
        ("carto", include_str!("../../../examples/carto.json")),
        (
            "scheduled-amperity",
            include_str!("../../../examples/scheduled-amperity.json"),
        ),
    ] {
        RunRequest::from_json(body.as_bytes())
            .unwrap_or_else(|e| panic!("examples/{name}.json: {e}"));
    }
}

/// The published schema and the validator agree: every example passes both; every catalogue case
/// the validator refuses is refused by the schema too, unless the case says why no JSON Schema
/// can state its rule — and then the schema must indeed let it through (so the marks stay true).
#[test]
fn the_schema_agrees_with_the_validator() {
    let schema = runbridge_core::request::schema::request_schema();
    let checker = jsonschema::validator_for(&schema).expect("the schema compiles");
    for (name, body) in examples() {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        let errors: Vec<String> = checker.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "examples/{name}.json fails the schema: {errors:?}"
        );
    }
    let mut disagreements = Vec::new();
    let cases = catalogue();
    for case in &cases {
        let schema_accepts = serde_json::from_slice::<serde_json::Value>(&case.body())
            .is_ok_and(|v| checker.is_valid(&v));
        match (&case.beyond_schema, schema_accepts) {
            (None, true) => disagreements.push(format!(
                "{}: the schema accepts what the validator refuses ({} {})",
                case.name, case.field, case.rule
            )),
            (Some(_), false) => disagreements.push(format!(
                "{}: marked beyond_schema but the schema refuses it: drop the mark",
                case.name
            )),
            _ => {}
        }
    }
    let beyond = cases.iter().filter(|c| c.beyond_schema.is_some()).count();
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree ({beyond} marked beyond_schema):\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

fn examples() -> [(&'static str, &'static str); 8] {
    [
        ("amc", include_str!("../../../examples/amc.json")),
        ("amc-na", include_str!("../../../examples/amc-na.json")),
        ("amc-eu", include_str!("../../../examples/amc-eu.json")),
        ("amperity", include_str!("../../../examples/amperity.json")),
        (
            "amperity-b",
            include_str!("../../../examples/amperity-b.json"),
        ),
        ("adobe", include_str!("../../../examples/adobe.json")),
        ("carto", include_str!("../../../examples/carto.json")),
        (
            "scheduled-amperity",
            include_str!("../../../examples/scheduled-amperity.json"),
        ),
    ]
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn valid_bodies() -> Vec<Vec<u8>> {
        [
            include_str!("../../../examples/amc.json"),
            include_str!("../../../examples/amperity.json"),
            include_str!("../../../examples/adobe.json"),
            include_str!("../../../examples/carto.json"),
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = RunRequest::from_json(&bytes);
        }

        #[test]
        fn mutated_valid_requests(which in 0usize..4, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut body = valid_bodies()[which].clone();
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if let Err(e) = RunRequest::from_json(&body) {
                prop_assert!(!e.field.is_empty());
                prop_assert!(!e.rule.is_empty());
            }
        }

        #[test]
        fn arbitrary_json_values(value in arb_json()) {
            let _ = RunRequest::from_value(value);
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z_]{0,12}".prop_map(serde_json::Value::from),
            prop_oneof![Just("amc"), Just("amperity"), Just("adobe"), Just("carto")]
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("vendor".to_owned()),
                        Just("request_id".to_owned()),
                        Just("config_id".to_owned()),
                        Just("range_from".to_owned()),
                        Just("sql_query".to_owned()),
                        "[a-z_]{1,10}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
