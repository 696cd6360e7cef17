//! Query parameters, as the job and query routes check them: BigQuery parameter names with
//! non-null values, and the `@name` references of a query that `queryParameters` does not define
//! (found outside strings, quoted identifiers and comments, with BigQuery's line and column).

use serde_json::{Map, Value};

/// BigQuery parameter names: a letter or `_`, then letters, digits or `_`; values must have a
/// type, so `null` is refused.
pub(super) fn check_parameters(parameters: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in parameters {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("Invalid query parameter name '{name}'"));
        }
        if value.is_null() {
            return Err(format!(
                "Query parameter '{name}' has no value; its type cannot be inferred from null"
            ));
        }
    }
    Ok(())
}

/// A `@name` the query uses but `queryParameters` does not define.
pub(super) struct MissingParameter {
    name: String,
    line: usize,
    column: usize,
}

impl MissingParameter {
    /// BigQuery's words for it.
    pub(super) fn message(&self) -> String {
        format!(
            "Query error: Query parameter '{}' not found at [{}:{}]",
            self.name, self.line, self.column
        )
    }
}

/// The `@name` references of `query` (outside strings, quoted identifiers and comments; `@@`
/// system variables excluded) missing from `parameters`, in order.
pub(super) fn missing_parameters(
    query: &str,
    parameters: &Map<String, Value>,
) -> Vec<MissingParameter> {
    let chars: Vec<char> = query.chars().collect();
    let (mut line, mut column) = (1, 1);
    let mut missing: Vec<MissingParameter> = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment: Option<&str> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let mut step = 1;
        match (quote, comment) {
            (Some(q), _) => {
                if c == '\\' {
                    step = 2;
                } else if c == q {
                    quote = None;
                }
            }
            (_, Some("line")) => {
                if c == '\n' {
                    comment = None;
                }
            }
            (_, Some(_)) => {
                if c == '*' && next == Some('/') {
                    comment = None;
                    step = 2;
                }
            }
            (None, None) => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '#' => comment = Some("line"),
                '-' if next == Some('-') => comment = Some("line"),
                '/' if next == Some('*') => {
                    comment = Some("block");
                    step = 2;
                }
                '@' if next == Some('@') => step = 2,
                '@' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    let known =
                        parameters.contains_key(&name) || missing.iter().any(|m| m.name == name);
                    if !name.is_empty() && !known {
                        missing.push(MissingParameter {
                            name: name.clone(),
                            line,
                            column,
                        });
                    }
                    step = 1 + name.chars().count();
                }
                _ => {}
            },
        }
        for &skipped in &chars[i..(i + step).min(chars.len())] {
            if skipped == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        i += step;
    }
    missing
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(names: &[&str]) -> Map<String, Value> {
        names.iter().map(|n| ((*n).to_owned(), json!(1))).collect()
    }

    #[test]
    fn finds_missing_parameters_outside_quotes_and_comments() {
        let q = "CALL `p.d.proc`(@a,@b) -- @c\n/* @d */ SELECT '@e', @@version, @f";
        let missing = missing_parameters(q, &params(&["a"]));
        let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["b", "f"]);
        assert_eq!((missing[0].line, missing[0].column), (1, 20));
        assert_eq!(missing[1].line, 2);
        assert!(missing_parameters(q, &params(&["a", "b", "f"])).is_empty());
    }
}
