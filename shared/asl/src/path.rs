//! The JSONPath subset ASL paths use here: `$` (state input) or `$$` (context object), followed
//! by `.name`, `['name']` / `["name"]` and `[index]` steps. Parsing happens when the definition
//! is loaded, so an unsupported expression (wildcards, filters, slices, `..`) is a definition
//! error rather than a surprise mid-execution. This module also owns `ResultPath` writing.

use serde_json::{Map, Value};
use std::fmt;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Field(String),
    Index(usize),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    text: String,
    context: bool,
    segments: Vec<Segment>,
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Characters that would make a dotted name mean something other than a plain key in full
/// JSONPath (wildcards, filters, functions, unions). Rejected rather than read literally.
const FORBIDDEN_IN_NAME: &[char] = &['*', '?', '@', '(', ')', ',', '\'', '"', ']', '$'];

impl JsonPath {
    /// The root path `$`.
    pub fn root() -> Self {
        Self {
            text: "$".into(),
            context: false,
            segments: Vec::new(),
        }
    }

    /// Parses `text`, returning a message saying what is wrong on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (false, r)
        } else {
            return Err(format!("path \"{text}\" must start with '$' or '$$'"));
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if rest.starts_with("..") {
                return Err(format!(
                    "path \"{text}\": recursive descent '..' is not supported"
                ));
            }
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(format!("path \"{text}\": empty field name"));
                }
                if name.contains(FORBIDDEN_IN_NAME) || name.contains(char::is_whitespace) {
                    return Err(format!(
                        "path \"{text}\": field \"{name}\" uses JSONPath syntax that is not \
                         supported (only $, .name, ['name'] and [index])"
                    ));
                }
                segments.push(Segment::Field(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let (segment, consumed) = parse_subscript(r).ok_or_else(|| {
                    format!(
                        "path \"{text}\": unsupported subscript (only ['name'] and [index] \
                             are supported)"
                    )
                })?;
                segments.push(segment);
                rest = &r[consumed..];
            } else {
                return Err(format!(
                    "path \"{text}\": unexpected \"{rest}\" (expected '.name', ['name'] or [index])"
                ));
            }
        }
        Ok(Self {
            text: text.to_string(),
            context,
            segments,
        })
    }

    /// True for `$$…` paths, which read the context object.
    pub fn is_context(&self) -> bool {
        self.context
    }

    /// True for plain `$`.
    pub fn is_root(&self) -> bool {
        !self.context && self.segments.is_empty()
    }

    /// Selects the node the path names, or `None` when nothing is there.
    pub fn select<'v>(&self, input: &'v Value, context: &'v Value) -> Option<&'v Value> {
        let mut current = if self.context { context } else { input };
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Field(name), Value::Object(map)) => map.get(name)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// Writes `result` into a copy of `input` at this path, as `ResultPath` does: missing
    /// intermediate objects are created, existing siblings are kept. Fails (with a message) when
    /// the path runs through something that is not an object (or, for `[index]`, not an array
    /// long enough), which Step Functions reports as `States.ResultPathMatchFailure`.
    pub fn write(&self, input: &Value, result: Value) -> Result<Value, String> {
        let Some((last, parents)) = self.segments.split_last() else {
            return Ok(result);
        };
        let mut output = input.clone();
        let mut current = &mut output;
        for segment in parents {
            current = match segment {
                Segment::Field(name) => match current {
                    Value::Object(map) => map
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Map::new())),
                    other => return Err(self.write_error(name, other)),
                },
                Segment::Index(i) => {
                    if current.as_array().is_none_or(|items| *i >= items.len()) {
                        return Err(self.write_error(&format!("[{i}]"), current));
                    }
                    &mut current[*i]
                }
            };
        }
        match last {
            Segment::Field(name) => match current {
                Value::Object(map) => {
                    map.insert(name.clone(), result);
                }
                other => return Err(self.write_error(name, other)),
            },
            Segment::Index(i) => {
                if current.as_array().is_none_or(|items| *i >= items.len()) {
                    return Err(self.write_error(&format!("[{i}]"), current));
                }
                current[*i] = result;
            }
        }
        Ok(output)
    }

    fn write_error(&self, step: &str, found: &Value) -> String {
        format!(
            "Unable to apply ResultPath \"{}\": cannot set \"{step}\" inside {}",
            self.text,
            kind_of(found)
        )
    }
}

/// Parses what follows a `[`; returns the segment and how many bytes (including the closing
/// `]`) were consumed.
fn parse_subscript(r: &str) -> Option<(Segment, usize)> {
    let mut chars = r.char_indices();
    let (_, first) = chars.next()?;
    if first == '\'' || first == '"' {
        let mut name = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                name.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == first {
                let after = &r[i + c.len_utf8()..];
                return after
                    .starts_with(']')
                    .then(|| (Segment::Field(name), i + c.len_utf8() + 1));
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = r.find(']')?;
        let digits = &r[..end];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((Segment::Index(digits.parse().ok()?), end + 1))
    }
}

/// A short description of a JSON value's type, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_supported_forms() {
        let p = JsonPath::parse("$.a['b c'][2].d").unwrap();
        assert_eq!(
            p.segments,
            vec![
                Segment::Field("a".into()),
                Segment::Field("b c".into()),
                Segment::Index(2),
                Segment::Field("d".into())
            ]
        );
        assert!(JsonPath::parse("$$.Execution.Name").unwrap().is_context());
        assert!(JsonPath::parse("$").unwrap().is_root());
    }

    #[test]
    fn rejects_unsupported_forms() {
        for bad in [
            "a.b",
            "$..a",
            "$.a[*]",
            "$.a[?(@.x)]",
            "$.a[1:2]",
            "$.",
            "$a",
            "$.len()",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn write_merges_and_fails_through_scalars() {
        let p = JsonPath::parse("$.a.b").unwrap();
        assert_eq!(
            p.write(&json!({"x": 1}), json!(2)).unwrap(),
            json!({"x": 1, "a": {"b": 2}})
        );
        assert!(p.write(&json!({"a": 5}), json!(2)).is_err());
        assert!(p.write(&json!("str"), json!(2)).is_err());
    }
}
