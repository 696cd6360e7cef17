//! The CARTO part of a request: [`CartoRun`] (a SQL job with parameters and an optional export
//! query) and its rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::checks::{check_id, check_sql};
use super::sql::parameter_references;
use crate::ValidationError;

/// A CARTO SQL job, typically ``CALL `project.dataset.procedure`(@a, @b)`` of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CartoRun {
    /// Connection name (path parameter).
    pub connection: String,
    /// The SQL to run as a job.
    pub query: String,
    /// Named parameters referenced as `@name` in `query`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_parameters: BTreeMap<String, serde_json::Value>,
    /// Optional query whose rows are collected as CSV after the job is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_query: Option<String>,
}

impl CartoRun {
    /// What makes two runs the same workflow: the connection, the query and the export query.
    pub fn workflow(&self) -> String {
        format!(
            "connection={};query={};export={}",
            self.connection,
            self.query.trim(),
            self.export_query.as_deref().unwrap_or("").trim()
        )
    }

    pub(super) fn validate(&self) -> Result<(), ValidationError> {
        check_id("connection", &self.connection, 128, "_-")?;
        check_sql("query", &self.query)?;
        if let Some(q) = &self.export_query {
            check_sql("export_query", q)?;
        }
        for (name, value) in &self.query_parameters {
            // BigQuery parameter names: a letter or `_` first, then letters, digits or `_`.
            let mut chars = name.chars();
            let named = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !named || name.len() > 128 {
                return Err(ValidationError::new(
                    "query_parameters",
                    "names must start with a letter or `_` and contain only letters, digits and `_` (at most 128)",
                ));
            }
            check_parameter_value(&format!("query_parameters.{name}"), value)?;
        }
        // The warehouse only finds a missing parameter once the job runs (and fails it): refuse
        // it before anything is claimed or sent. The export query is sent with the same
        // parameters.
        let queries = [
            ("query", Some(&self.query)),
            ("export_query", self.export_query.as_ref()),
        ];
        for (field, sql) in queries {
            let Some(sql) = sql else { continue };
            if let Some(name) = parameter_references(sql)
                .into_iter()
                .find(|name| !self.query_parameters.contains_key(name))
            {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "references `@{name}`, which `query_parameters` does not give; add `{name}` to `query_parameters` or remove the reference"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The largest magnitude of a whole number BigQuery takes as an `INT64` parameter.
const INT64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// A parameter value BigQuery can type, at any depth: no null (BigQuery cannot infer a type from
/// it, and an array may not hold one: `[null]` fails the job like `null`), and no whole number
/// outside `INT64` (the job fails coercing it).
fn check_parameter_value(path: &str, value: &serde_json::Value) -> Result<(), ValidationError> {
    use serde_json::Value;
    match value {
        Value::Null => Err(ValidationError::new(
            path,
            "must not be null: BigQuery cannot infer a parameter's type from null, nor hold null in an array",
        )),
        Value::Number(n) => {
            let outside = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(_), _, _) => false,
                (None, Some(_), _) => true,
                (None, None, Some(f)) => f.fract() == 0.0 && f.abs() >= INT64_LIMIT,
                (None, None, None) => false,
            };
            if outside {
                return Err(ValidationError::new(
                    path,
                    format!("{n} is outside INT64 (-9223372036854775808 to 9223372036854775807), which BigQuery cannot take as an integer; pass it as a string"),
                ));
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_parameter_value(&format!("{path}[{i}]"), v)),
        Value::Object(members) => members
            .iter()
            .try_for_each(|(k, v)| check_parameter_value(&format!("{path}.{k}"), v)),
        Value::Bool(_) | Value::String(_) => Ok(()),
    }
}
