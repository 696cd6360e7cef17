//! The `POST /v3/sql/{connection}/job` body: `{"query", "queryParameters"}`, the whole of what
//! CARTO's workflow doc sends (parameters only when the request has some).

use runbridge_core::request::sql::parameter_references;
use runbridge_core::request::CartoRun;
use runbridge_core::ResolvedRequest;

use crate::spec::run_of;
use crate::VendorError;

/// The job-creation body for a request.
pub fn create_body(request: &ResolvedRequest) -> Result<serde_json::Value, VendorError> {
    let run: &CartoRun = run_of(request)?;
    let mut body = serde_json::json!({ "query": run.query });
    if !run.query_parameters.is_empty() {
        body["queryParameters"] = serde_json::json!(run.query_parameters);
    }
    Ok(body)
}

/// The `POST /v3/sql/{connection}/query` body of an export: `q`, `format: "csv"` (the SQL API's
/// `format` option), and `queryParameters` only with the parameters the export SQL references
/// (none → no `queryParameters` at all).
pub fn export_body(
    export_query: &str,
    parameters: &std::collections::BTreeMap<String, serde_json::Value>,
) -> serde_json::Value {
    // The same reading of the SQL as `validate`'s, so what is checked is what is sent.
    let used = parameter_references(export_query);
    let mut body = serde_json::json!({ "q": export_query, "format": "csv" });
    let wanted: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .filter(|(name, _)| used.contains(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !wanted.is_empty() {
        body["queryParameters"] = serde_json::Value::Object(wanted);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_found_outside_quotes_and_comments() {
        let found = parameter_references(
            "SELECT * FROM t WHERE a = @a AND b = '@not' -- @nor\n AND c = @c_2 /* @no */ AND @@sys",
        );
        assert_eq!(found, vec!["a", "c_2"]);
    }

    #[test]
    fn the_export_body_sends_only_the_parameters_it_uses() {
        let mut parameters = std::collections::BTreeMap::new();
        parameters.insert("a".to_owned(), serde_json::json!(1));
        parameters.insert("b".to_owned(), serde_json::json!("x"));
        assert_eq!(
            export_body("SELECT * FROM t", &parameters),
            serde_json::json!({"q": "SELECT * FROM t", "format": "csv"})
        );
        assert_eq!(
            export_body("SELECT * FROM t WHERE a = @a", &parameters),
            serde_json::json!({"q": "SELECT * FROM t WHERE a = @a", "format": "csv", "queryParameters": {"a": 1}})
        );
    }
}
