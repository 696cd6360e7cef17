//! The published JSON Schema of a request, generated from the types and then given the same
//! constraints [`RunRequest::validate`](super::RunRequest::validate) enforces, from the same
//! constants: closed objects per vendor, the id alphabets and lengths, the deadline range, UTC
//! timestamps, safe output prefixes without the layout's own segments, Adobe UUIDs, AMC
//! parameter value types and the window rules that one document can state.
//!
//! What no JSON Schema can state is left to the validator and listed by the catalogue test
//! (cases marked `beyond_schema`): one field compared with another (`end` after `start`),
//! SQL lexing, impossible calendar dates, duplicate keys, and bytes that are not JSON.

use serde_json::{json, Map, Value};

use super::{RunRequest, MAX_PROFILE_CHARS, MAX_REQUEST_BYTES, MAX_REQUEST_DEPTH, MAX_SQL_CHARS};
use crate::reserved::KEY_SEGMENTS;

/// `^` + alphanumeric first, then alphanumerics and `extra` (regex-escaped by the caller).
fn id(extra: &str, max: usize) -> Value {
    json!({
        "type": "string",
        "maxLength": max,
        "pattern": format!("^[A-Za-z0-9][A-Za-z0-9{extra}]*$"),
    })
}

fn nullable(mut schema: Value) -> Value {
    let ty = schema["type"].clone();
    schema["type"] = json!([ty, "null"]);
    schema
}

fn sql() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_SQL_CHARS,
        "allOf": [{"pattern": "\\S"}, {"pattern": "^[^\\u0000]*$"}],
    })
}

/// A UTC timestamp as [`crate::parse_utc`] takes it (a date, or RFC 3339 with `Z` or `+00:00`),
/// without a leap second; `whole_seconds` refuses a fraction (AMC, Adobe).
fn utc(whole_seconds: bool) -> Value {
    utc_from("[0-9]{4}", whole_seconds)
}

/// [`utc`] with the year written as `year` (a regex): Adobe's bounds are unix seconds, which
/// start in 1970.
fn utc_from(year: &str, whole_seconds: bool) -> Value {
    let fraction = if whole_seconds { "" } else { "(\\.[0-9]+)?" };
    json!({
        "type": ["string", "null"],
        "pattern": format!(
            "^{year}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{fraction}([Zz]|\\+00:00))?$"
        ),
    })
}

/// A year from 1970 on, as a regex.
const FROM_1970: &str = "(19[7-9][0-9]|[2-9][0-9]{3})";

/// A CARTO parameter value at any depth: never null, a whole number within `INT64`.
fn carto_value() -> Value {
    json!({
        "anyOf": [
            {"type": ["string", "boolean"]},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
            {"type": "array", "items": {"$ref": "#/$defs/CartoParameter"}},
            {"type": "object", "additionalProperties": {"$ref": "#/$defs/CartoParameter"}},
        ],
    })
}

/// One segment of an output prefix: the id alphabet, and not one of the layout's `name=`
/// segments (any case).
fn prefix() -> Value {
    let reserved: Vec<String> = KEY_SEGMENTS
        .iter()
        .map(|k| {
            let any_case: String = k
                .chars()
                .map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()))
                .collect();
            format!("{any_case}=")
        })
        .collect();
    let segment = format!("(?!(?:{}))[A-Za-z0-9][A-Za-z0-9._=-]*", reserved.join("|"));
    json!({
        "type": ["string", "null"],
        "maxLength": 200,
        "pattern": format!("^{segment}(/{segment})*$"),
    })
}

fn params(values: Value) -> Value {
    json!({
        "type": "object",
        "propertyNames": {"maxLength": 128, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": values,
    })
}

/// The request schema.
pub fn request_schema() -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(RunRequest)).expect("schema serialises");
    let common = schema
        .as_object_mut()
        .and_then(|o| o.remove("properties"))
        .unwrap_or_default();
    let mut common = common.as_object().cloned().unwrap_or_default();
    set(&mut common, "request_id", nullable(id("._-", 64)));
    set(
        &mut common,
        "deadline_seconds",
        json!({"type": ["integer", "null"], "minimum": 60, "maximum": 604_800}),
    );
    set(&mut common, "output_prefix", prefix());
    set(
        &mut common,
        "profile",
        json!({
            "type": ["string", "null"],
            "maxLength": MAX_PROFILE_CHARS,
            "pattern": "^[a-z0-9][a-z0-9-]*$",
        }),
    );
    schema["required"] = json!(["vendor"]);
    // What a JSON Schema cannot express, stated for readers (the validator enforces both).
    let description = schema["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    schema["description"] = json!(format!(
        "{description}\n\nLimits: the document is at most {MAX_REQUEST_BYTES} bytes and nests at most {MAX_REQUEST_DEPTH} levels of objects and arrays (the document itself is level 1), so that it reads back unchanged from the ledger, the execution payload and the queue message."
    ).trim_start().to_owned());
    schema["x-runbridge-limits"] = json!({
        "maxBytes": MAX_REQUEST_BYTES,
        "maxDepth": MAX_REQUEST_DEPTH,
    });
    schema["$defs"]["CartoParameter"] = carto_value();
    let variants = schema["oneOf"]
        .as_array_mut()
        .expect("one variant per vendor");
    for variant in variants {
        let vendor = variant["properties"]["vendor"]["const"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let props = variant["properties"].as_object_mut().expect("properties");
        for (k, v) in &common {
            props.insert(k.clone(), v.clone());
        }
        match vendor.as_str() {
            "amc" => {
                set(props, "instance_id", id("_-", 64));
                set(props, "advertiser_id", id("_-", 64));
                set(props, "marketplace_id", id("_-", 32));
                set(props, "sql_query", nullable(sql()));
                set(props, "workflow_id", nullable(id("_.-", 128)));
                set(props, "time_window_start", utc(true));
                set(props, "time_window_end", utc(true));
                set(
                    props,
                    "parameter_values",
                    params(json!({"type": ["string", "number", "boolean"]})),
                );
                variant["oneOf"] = json!([
                    {"required": ["sql_query"], "not": {"required": ["workflow_id"]}},
                    {"required": ["workflow_id"], "not": {"required": ["sql_query"]}},
                ]);
                variant["dependentRequired"] = json!({
                    "time_window_start": ["time_window_end"],
                    "time_window_end": ["time_window_start"],
                });
                variant["if"] = json!({"properties": {"time_window_type": {"const": "EXPLICIT"}}});
                variant["then"] = json!({"oneOf": [
                    {"required": ["time_window_start"], "not": {"required": ["relative_window"]}},
                    {"required": ["relative_window"], "not": {"required": ["time_window_start"]}},
                ]});
                variant["else"] = json!({"not": {"anyOf": [
                    {"required": ["time_window_start"]},
                    {"required": ["time_window_end"]},
                    {"required": ["relative_window"]},
                ]}});
            }
            "amperity" => {
                set(
                    props,
                    "tenant",
                    json!({"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"}),
                );
                set(
                    props,
                    "config_id",
                    json!({"type": "string", "maxLength": 64, "pattern": "^(cg|og|cc)-[A-Za-z0-9-]+$"}),
                );
                set(props, "range_from", utc(false));
                set(props, "range_to", utc(false));
                variant["dependentRequired"] = json!({"range_to": ["range_from"]});
                variant["not"] = json!({"required": ["range_from", "relative_window"]});
                variant["if"] = json!({"properties": {"config_id": {"pattern": "^cg-"}}});
                variant["else"] = json!({"not": {"anyOf": [
                    {"required": ["range_from"]},
                    {"required": ["range_to"]},
                    {"required": ["relative_window"]},
                    {"required": ["run_mode"]},
                ]}});
            }
            "adobe" => {
                set(
                    props,
                    "flow_id",
                    json!({"type": "string", "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"}),
                );
                set(
                    props,
                    "sandbox_name",
                    json!({"type": ["string", "null"], "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9-]*$"}),
                );
                set(props, "start_time", utc_from(FROM_1970, true));
                set(props, "window_start", utc_from(FROM_1970, true));
                set(props, "window_end", utc_from(FROM_1970, true));
                set(props, "delta_column", nullable(id("_.", 128)));
                variant["dependentRequired"] = json!({
                    "window_start": ["window_end"],
                    "window_end": ["window_start"],
                });
                variant["dependentSchemas"] = json!({
                    "delta_column": {"required": ["first_run"], "properties": {"first_run": {"const": true}}},
                });
                variant["oneOf"] = json!([
                    {"required": ["window_start"], "not": {"required": ["relative_window"]}},
                    {"required": ["relative_window"], "not": {"required": ["window_start"]}},
                ]);
            }
            "carto" => {
                set(props, "connection", id("_-", 128));
                set(props, "query", sql());
                set(props, "export_query", nullable(sql()));
                set(
                    props,
                    "query_parameters",
                    json!({
                        "type": "object",
                        "propertyNames": {"maxLength": 128, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                        "additionalProperties": {"$ref": "#/$defs/CartoParameter"},
                    }),
                );
            }
            _ => {}
        }
        variant["additionalProperties"] = json!(false);
    }
    schema
}

/// Replaces the constraints of `name`, keeping its description.
fn set(props: &mut Map<String, Value>, name: &str, constraints: Value) {
    let description = props.get(name).and_then(|p| p.get("description")).cloned();
    let mut value = constraints;
    if let Some(d) = description {
        value["description"] = d;
    }
    props.insert(name.to_owned(), value);
}
