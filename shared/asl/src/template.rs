//! Payload templates: the `Parameters` objects. Fields whose names end in `.$` take their value
//! from a path (the suffix is dropped); everything else is copied literally, at any depth,
//! including objects inside arrays. Intrinsic functions (`States.Format(...)` and friends) are not
//! implemented: the deployed definition uses none, so a `.$` value calling one is rejected when
//! the definition loads ([`TemplateError::UnsupportedIntrinsic`]).

use crate::error::StateError;
use crate::path::JsonPath;
use serde_json::{Map, Value};

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// `"name.$": "$.path"`; `field` keeps the original key for error messages.
    Path {
        field: String,
        path: JsonPath,
    },
}

/// Why a template does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// The template breaks an ASL rule; the message says which.
    Invalid(String),
    /// A `.$` field calls an intrinsic function (named here, e.g. `States.Format`).
    UnsupportedIntrinsic {
        /// The template key, e.g. `message.$`.
        field: String,
        /// The function name, e.g. `States.Format`.
        function: String,
    },
}

/// The name of the intrinsic function `text` calls, if it is a call (`States.Name(...)`).
pub(crate) fn intrinsic_name(text: &str) -> Option<&str> {
    let text = text.trim();
    if !text.starts_with("States.") {
        return None;
    }
    let end = text.find('(').unwrap_or(text.len());
    Some(text[..end].trim_end())
}

impl Template {
    /// Compiles a template.
    pub fn compile(value: &Value) -> Result<Self, TemplateError> {
        match value {
            Value::Object(map) => {
                let mut fields: Vec<(String, Template)> = Vec::with_capacity(map.len());
                for (key, v) in map {
                    let (name, template) = match key.strip_suffix(".$") {
                        Some(name) => (name.to_string(), Self::dynamic(key, v)?),
                        None => (key.clone(), Self::compile(v)?),
                    };
                    if fields.iter().any(|(existing, _)| *existing == name) {
                        return Err(TemplateError::Invalid(format!(
                            "fields \"{name}\" and \"{name}.$\" would both produce \"{name}\""
                        )));
                    }
                    fields.push((name, template));
                }
                Ok(Self::Object(fields))
            }
            Value::Array(items) => Ok(Self::Array(
                items.iter().map(Self::compile).collect::<Result<_, _>>()?,
            )),
            other => Ok(Self::Literal(other.clone())),
        }
    }

    fn dynamic(key: &str, value: &Value) -> Result<Self, TemplateError> {
        let Some(text) = value.as_str() else {
            return Err(TemplateError::Invalid(format!(
                "the value of \"{key}\" must be a string holding a JSONPath"
            )));
        };
        let text = text.trim();
        if let Some(function) = intrinsic_name(text) {
            return Err(TemplateError::UnsupportedIntrinsic {
                field: key.to_string(),
                function: function.to_string(),
            });
        }
        if !text.starts_with('$') {
            return Err(TemplateError::Invalid(format!(
                "field \"{key}\" is not a JSONPath expression: \"{text}\""
            )));
        }
        let path = JsonPath::parse(text)
            .map_err(|e| TemplateError::Invalid(format!("field \"{key}\": {e}")))?;
        Ok(Self::Path {
            field: key.to_string(),
            path,
        })
    }

    /// The string a top-level field `name` holds literally, if it does.
    pub fn literal_field(&self, name: &str) -> Option<&str> {
        let Self::Object(fields) = self else {
            return None;
        };
        fields.iter().find_map(|(field, template)| match template {
            Self::Literal(Value::String(s)) if field == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// Builds the payload from `input` (what `$` means) and the context object (`$$`).
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, StateError> {
        match self {
            Self::Literal(v) => Ok(v.clone()),
            Self::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (name, template) in fields {
                    out.insert(name.clone(), template.evaluate(input, context)?);
                }
                Ok(Value::Object(out))
            }
            Self::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|t| t.evaluate(input, context))
                    .collect::<Result<_, _>>()?,
            )),
            // A path that selects nothing is States.Runtime, the error Step Functions raises with
            // this same wording.
            Self::Path { field, path } => path.select(input, context).cloned().ok_or_else(|| {
                StateError::runtime(format!(
                    "The JSONPath '{path}' specified for the field '{field}' could not be found \
                     in the input '{}'",
                    if path.is_context() { context } else { input }
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_nested_and_array_fields() {
        let t = Template::compile(&json!({
            "a.$": "$.x",
            "lit": "$.x",
            "list": [{"v.$": "$.y[1]"}, 3],
            "name.$": "$$.Execution.Name"
        }))
        .unwrap();
        let out = t
            .evaluate(
                &json!({"x": 1, "y": [0, "two"]}),
                &json!({"Execution": {"Name": "run-1"}}),
            )
            .unwrap();
        assert_eq!(
            out,
            json!({"a": 1, "lit": "$.x", "list": [{"v": "two"}, 3], "name": "run-1"})
        );
    }

    #[test]
    fn rejects_bad_dynamic_values() {
        assert!(Template::compile(&json!({"a.$": "nonpath"})).is_err());
        assert!(Template::compile(&json!({"a.$": 5})).is_err());
        assert!(Template::compile(&json!({"a.$": "$.x", "a": 1})).is_err());
    }

    #[test]
    fn intrinsic_calls_are_unsupported_and_named() {
        assert_eq!(
            Template::compile(&json!({"n": [{"m.$": "States.Format('{}', $.x)"}]})),
            Err(TemplateError::UnsupportedIntrinsic {
                field: "m.$".into(),
                function: "States.Format".into()
            })
        );
        assert_eq!(intrinsic_name(" States.UUID() "), Some("States.UUID"));
        assert_eq!(intrinsic_name("$.States"), None);
    }
}
