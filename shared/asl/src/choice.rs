//! Choice rules: parsing (with the spec's structural checks) and evaluation.
//!
//! Semantics follow Step Functions: a comparison whose `Variable` has the wrong type is simply
//! false (a string is never `NumericEquals` anything), but a `Variable` path that selects nothing
//! raises `States.Runtime` unless the operator is `IsPresent`. `And`/`Or` short-circuit, so the
//! documented `And: [IsPresent, StringEquals]` guard works.

use crate::error::{DefinitionError, StateError};
use crate::path::JsonPath;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A Choice rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: JsonPath,
        op: Op,
        operand: Operand,
    },
}

/// The value a comparison compares against.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    /// The `…Path` form of an operator.
    Path(JsonPath),
}

/// Which kind of comparison; `Cmp` carries the ordering that makes it true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    String(Cmp),
    StringMatches,
    Numeric(Cmp),
    BooleanEquals,
    Timestamp(Cmp),
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Cmp {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering == Ordering::Equal,
            Cmp::Lt => ordering == Ordering::Less,
            Cmp::Gt => ordering == Ordering::Greater,
            Cmp::Le => ordering != Ordering::Greater,
            Cmp::Ge => ordering != Ordering::Less,
        }
    }
}

/// The operand type an operator's literal must have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    String,
    Number,
    Boolean,
    Timestamp,
}

fn operator(name: &str) -> Option<(Op, bool)> {
    // Returns the operator and whether this is its `…Path` form.
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let cmp = |suffix: &str| -> Option<Cmp> {
        Some(match suffix {
            "Equals" => Cmp::Eq,
            "LessThan" => Cmp::Lt,
            "GreaterThan" => Cmp::Gt,
            "LessThanEquals" => Cmp::Le,
            "GreaterThanEquals" => Cmp::Ge,
            _ => return None,
        })
    };
    let op = if let Some(s) = base.strip_prefix("String") {
        if s == "Matches" {
            if is_path {
                return None; // StringMatchesPath does not exist.
            }
            Op::StringMatches
        } else {
            Op::String(cmp(s)?)
        }
    } else if let Some(s) = base.strip_prefix("Numeric") {
        Op::Numeric(cmp(s)?)
    } else if let Some(s) = base.strip_prefix("Timestamp") {
        Op::Timestamp(cmp(s)?)
    } else if base == "BooleanEquals" {
        Op::BooleanEquals
    } else if !is_path {
        match base {
            "IsNull" => Op::IsNull,
            "IsPresent" => Op::IsPresent,
            "IsNumeric" => Op::IsNumeric,
            "IsString" => Op::IsString,
            "IsBoolean" => Op::IsBoolean,
            "IsTimestamp" => Op::IsTimestamp,
            _ => return None,
        }
    } else {
        return None;
    };
    Some((op, is_path))
}

impl Op {
    fn expect(self) -> Expect {
        match self {
            Op::String(_) | Op::StringMatches => Expect::String,
            Op::Numeric(_) => Expect::Number,
            Op::Timestamp(_) => Expect::Timestamp,
            _ => Expect::Boolean,
        }
    }
}

/// Parses a timestamp the way ASL requires: RFC 3339 with an uppercase `T` and `Z`.
pub(crate) fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    if s.contains(['t', 'z']) {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Parses one rule. `top_level` rules carry `Next` (returned alongside); nested ones must not.
pub(crate) fn parse_rule(
    value: &Value,
    location: &str,
    top_level: bool,
) -> Result<(Rule, Option<String>), DefinitionError> {
    let invalid = |m: String| DefinitionError::invalid(location, m);
    let Some(map) = value.as_object() else {
        return Err(invalid("a Choice rule must be an object".into()));
    };
    let next = match map.get("Next") {
        Some(Value::String(n)) if top_level => Some(n.clone()),
        Some(_) if top_level => return Err(invalid("Next must be a string".into())),
        Some(_) => {
            return Err(invalid(
                "Next is only allowed on top-level Choice rules, not inside And/Or/Not".into(),
            ))
        }
        None if top_level => return Err(invalid("a top-level Choice rule needs Next".into())),
        None => None,
    };
    let mut keys: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "Next" && *k != "Comment")
        .collect();
    keys.sort_unstable();
    let rule = if let Some(op) = ["And", "Or", "Not"]
        .into_iter()
        .find(|op| map.contains_key(*op))
    {
        if keys.len() != 1 {
            return Err(invalid(format!(
                "a rule using {op} must have no other fields (found {})",
                keys.join(", ")
            )));
        }
        let inner = &map[op];
        match op {
            "Not" => Rule::Not(Box::new(
                parse_rule(inner, &format!("{location}.Not"), false)?.0,
            )),
            _ => {
                let Some(items) = inner.as_array().filter(|a| !a.is_empty()) else {
                    return Err(invalid(format!("{op} must be a non-empty array of rules")));
                };
                let rules = items
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        parse_rule(r, &format!("{location}.{op}[{i}]"), false).map(|x| x.0)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if op == "And" {
                    Rule::And(rules)
                } else {
                    Rule::Or(rules)
                }
            }
        }
    } else {
        parse_comparison(map, &keys, location)?
    };
    Ok((rule, next))
}

fn parse_comparison(
    map: &Map<String, Value>,
    keys: &[&str],
    location: &str,
) -> Result<Rule, DefinitionError> {
    let invalid = |m: String| DefinitionError::invalid(location, m);
    let Some(Value::String(variable)) = map.get("Variable") else {
        return Err(invalid(
            "a comparison rule needs a string Variable (or use And/Or/Not)".into(),
        ));
    };
    let variable = JsonPath::parse(variable).map_err(|e| invalid(format!("Variable: {e}")))?;
    let operators: Vec<&str> = keys.iter().copied().filter(|k| *k != "Variable").collect();
    let [name] = operators.as_slice() else {
        return Err(invalid(format!(
            "a comparison rule needs exactly one comparison operator (found: {})",
            if operators.is_empty() {
                "none".to_string()
            } else {
                operators.join(", ")
            }
        )));
    };
    let (op, is_path) =
        operator(name).ok_or_else(|| invalid(format!("unknown comparison operator {name}")))?;
    let raw = &map[*name];
    let operand = if is_path {
        let Value::String(p) = raw else {
            return Err(invalid(format!("{name} must be a path string")));
        };
        Operand::Path(JsonPath::parse(p).map_err(|e| invalid(format!("{name}: {e}")))?)
    } else {
        let ok = match op.expect() {
            Expect::String => raw.is_string(),
            Expect::Number => raw.is_number(),
            Expect::Boolean => raw.is_boolean(),
            Expect::Timestamp => raw.as_str().and_then(parse_timestamp).is_some(),
        };
        if !ok {
            let wanted = match op.expect() {
                Expect::String => "a string",
                Expect::Number => "a number",
                Expect::Boolean => "a boolean",
                Expect::Timestamp => "an RFC 3339 timestamp string",
            };
            return Err(invalid(format!("{name} must be {wanted}, got {raw}")));
        }
        Operand::Literal(raw.clone())
    };
    Ok(Rule::Compare {
        variable,
        op,
        operand,
    })
}

impl Rule {
    /// Evaluates the rule against the Choice state's effective input.
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<bool, StateError> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.evaluate(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.evaluate(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.evaluate(input, context)?),
            Rule::Compare {
                variable,
                op,
                operand,
            } => {
                let value = variable.select(input, context);
                if *op == Op::IsPresent {
                    return Ok(value.is_some() == (operand_literal(operand) == &Value::Bool(true)));
                }
                let value = value.ok_or_else(|| invalid_path(variable, input))?;
                let expected = match operand {
                    Operand::Literal(v) => v,
                    Operand::Path(p) => p
                        .select(input, context)
                        .ok_or_else(|| invalid_path(p, input))?,
                };
                Ok(compare(*op, value, expected))
            }
        }
    }
}

fn operand_literal(operand: &Operand) -> &Value {
    match operand {
        Operand::Literal(v) => v,
        Operand::Path(_) => &Value::Null,
    }
}

fn invalid_path(path: &JsonPath, input: &Value) -> StateError {
    StateError::runtime(format!(
        "Invalid path '{path}': The choice state's condition path references an invalid value. \
         Input: {input}"
    ))
}

fn compare(op: Op, value: &Value, expected: &Value) -> bool {
    match op {
        Op::String(cmp) => match (value, expected) {
            (Value::String(a), Value::String(b)) => cmp.holds(a.as_str().cmp(b.as_str())),
            _ => false,
        },
        Op::StringMatches => match (value, expected) {
            (Value::String(a), Value::String(pattern)) => glob_match(pattern, a),
            _ => false,
        },
        Op::Numeric(cmp) => match (value, expected) {
            (Value::Number(a), Value::Number(b)) => {
                let ordering = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => Some(x.cmp(&y)),
                    _ => a.as_f64().partial_cmp(&b.as_f64()),
                };
                ordering.is_some_and(|o| cmp.holds(o))
            }
            _ => false,
        },
        Op::BooleanEquals => match (value, expected) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        },
        Op::Timestamp(cmp) => {
            match (
                value.as_str().and_then(parse_timestamp),
                expected.as_str().and_then(parse_timestamp),
            ) {
                (Some(a), Some(b)) => cmp.holds(a.cmp(&b)),
                _ => false,
            }
        }
        Op::IsNull => value.is_null() == (expected == &Value::Bool(true)),
        Op::IsNumeric => value.is_number() == (expected == &Value::Bool(true)),
        Op::IsString => value.is_string() == (expected == &Value::Bool(true)),
        Op::IsBoolean => value.is_boolean() == (expected == &Value::Bool(true)),
        Op::IsTimestamp => {
            value.as_str().and_then(parse_timestamp).is_some() == (expected == &Value::Bool(true))
        }
        Op::IsPresent => unreachable!("handled before the value is resolved"),
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Char(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic greedy wildcard matching with backtracking to the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("log-*.txt", "log-2024.txt"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b", "aXXc"));
        assert!(glob_match(r"a\*", "a*"));
        assert!(!glob_match(r"a\*", "ab"));
    }

    #[test]
    fn operator_names() {
        assert_eq!(
            operator("NumericLessThanEqualsPath"),
            Some((Op::Numeric(Cmp::Le), true))
        );
        assert_eq!(operator("StringMatches"), Some((Op::StringMatches, false)));
        assert_eq!(operator("StringMatchesPath"), None);
        assert_eq!(operator("IsNullPath"), None);
        assert_eq!(operator("NumericEqual"), None);
    }
}
