//! Choice rules: parsing and evaluation of the two rule forms the deployed definition uses,
//! `{"Variable": "$.path", "BooleanEquals": true|false, "Next": "…"}` and
//! `{"Variable": "$.path", "IsPresent": true|false, "Next": "…"}`.
//!
//! Semantics follow Step Functions: a `Variable` that is not a boolean is simply not equal, but a
//! `Variable` path that selects nothing raises `States.Runtime` (except under `IsPresent`, which
//! asks exactly that). Every other comparison operator (String…, Numeric…, Timestamp…, the other
//! Is…, the `…Path` forms) and the `And`/`Or`/`Not` combinators are rejected at load time as
//! unsupported, naming the operator.

use crate::error::{DefinitionError, StateError};
use crate::path::JsonPath;
use serde_json::Value;

/// A Choice rule: `Variable` `BooleanEquals` (or `IsPresent`) `expected`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    variable: JsonPath,
    test: Test,
    expected: bool,
}

/// What a rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// The value is this boolean.
    BooleanEquals,
    /// The path selects something (or, with `false`, nothing).
    IsPresent,
}

/// The fields a Choice rule may have.
const RULE_FIELDS: &[&str] = &["Variable", "BooleanEquals", "IsPresent", "Next", "Comment"];

/// Parses one top-level rule; returns it with its `Next`.
pub(crate) fn parse_rule(value: &Value, location: &str) -> Result<(Rule, String), DefinitionError> {
    let invalid = |m: String| DefinitionError::invalid(location, m);
    let Some(map) = value.as_object() else {
        return Err(invalid("a Choice rule must be an object".into()));
    };
    if let Some(key) = map.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
        return Err(DefinitionError::Unsupported {
            location: location.to_string(),
            feature: format!(
                "the Choice rule field \"{key}\" (supported: {})",
                RULE_FIELDS.join(", ")
            ),
        });
    }
    let next = match map.get("Next") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(invalid("Next must be a string".into())),
        None => return Err(invalid("a Choice rule needs Next".into())),
    };
    let Some(Value::String(variable)) = map.get("Variable") else {
        return Err(invalid("a Choice rule needs a string Variable".into()));
    };
    let variable = JsonPath::parse(variable).map_err(|e| invalid(format!("Variable: {e}")))?;
    let (test, name) = match (map.get("BooleanEquals"), map.get("IsPresent")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "a Choice rule has one operator: BooleanEquals or IsPresent".into(),
            ))
        }
        (Some(_), None) => (Test::BooleanEquals, "BooleanEquals"),
        (None, Some(_)) => (Test::IsPresent, "IsPresent"),
        (None, None) => {
            return Err(invalid(
                "a Choice rule needs BooleanEquals or IsPresent".into(),
            ))
        }
    };
    let expected = match &map[name] {
        Value::Bool(b) => *b,
        other => return Err(invalid(format!("{name} must be a boolean, got {other}"))),
    };
    Ok((
        Rule {
            variable,
            test,
            expected,
        },
        next,
    ))
}

impl Rule {
    /// Evaluates the rule against the Choice state's effective input.
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<bool, StateError> {
        let selected = self.variable.select(input, context);
        if self.test == Test::IsPresent {
            return Ok(selected.is_some() == self.expected);
        }
        let value = selected.ok_or_else(|| {
            StateError::runtime(format!(
                "Invalid path '{}': The choice state's condition path references an invalid \
                 value. Input: {input}",
                self.variable
            ))
        })?;
        Ok(value.as_bool() == Some(self.expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: Value) -> Result<Rule, DefinitionError> {
        parse_rule(&value, "rule").map(|(rule, _)| rule)
    }

    #[test]
    fn boolean_equals_compares_only_booleans() {
        let r = rule(json!({"Variable": "$.done", "BooleanEquals": true, "Next": "N"})).unwrap();
        let ctx = json!({});
        assert_eq!(r.evaluate(&json!({"done": true}), &ctx), Ok(true));
        assert_eq!(r.evaluate(&json!({"done": false}), &ctx), Ok(false));
        assert_eq!(r.evaluate(&json!({"done": "true"}), &ctx), Ok(false));
        assert!(r.evaluate(&json!({}), &ctx).unwrap_err().is_terminal());
    }

    #[test]
    fn is_present_asks_whether_the_path_selects_anything() {
        let r = rule(json!({"Variable": "$.queued", "IsPresent": true, "Next": "N"})).unwrap();
        let ctx = json!({});
        assert_eq!(r.evaluate(&json!({"queued": false}), &ctx), Ok(true));
        assert_eq!(r.evaluate(&json!({"handle": {}}), &ctx), Ok(false));
        let absent =
            rule(json!({"Variable": "$.queued", "IsPresent": false, "Next": "N"})).unwrap();
        assert_eq!(absent.evaluate(&json!({}), &ctx), Ok(true));
        assert!(rule(
            json!({"Variable": "$.q", "IsPresent": true, "BooleanEquals": true, "Next": "N"})
        )
        .is_err());
        assert!(rule(json!({"Variable": "$.q", "IsPresent": "yes", "Next": "N"})).is_err());
    }

    #[test]
    fn other_operators_and_combinators_are_unsupported_and_named() {
        for (value, named) in [
            (
                json!({"Variable": "$.s", "StringEquals": "x", "Next": "N"}),
                "StringEquals",
            ),
            (
                json!({"Variable": "$.b", "BooleanEqualsPath": "$.c", "Next": "N"}),
                "BooleanEqualsPath",
            ),
            (json!({"And": [], "Next": "N"}), "And"),
        ] {
            let err = rule(value).unwrap_err();
            assert!(matches!(err, DefinitionError::Unsupported { .. }), "{err}");
            assert!(err.to_string().contains(named), "{err}");
        }
    }
}
