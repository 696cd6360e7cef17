//! `schema`: the JSON Schema of a run request, of `manifest.json` or of the event detail,
//! generated from the types.

use crate::output::Output;

/// The documents `schema` describes.
pub const DOCUMENTS: [&str; 3] = ["request", "manifest", "event"];

/// `schema OF`: the schema is the report, as text and as JSON alike.
pub fn schema(of: &str) -> Output {
    let schema = match of {
        "manifest" => crate::manifest_schema(),
        "event" => crate::event_detail_schema(),
        _ => crate::request_schema(),
    };
    let text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
    Output::ok(schema, text)
}
