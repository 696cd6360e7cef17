//! Input and output processing of one state, in spec order: InputPath, (Parameters, in
//! [`crate::template`]), ResultPath, OutputPath; plus a Fail state's `Error`/`Cause`. Every path
//! that selects nothing raises `States.Runtime`.

use crate::definition::{Dynamic, Io};
use crate::error::{names, StateError};
use crate::path::{kind_of, JsonPath};
use serde_json::{Map, Value};

/// Resolves a path that must select something, or raises States.Runtime.
pub(crate) fn select<'v>(
    path: &JsonPath,
    input: &'v Value,
    context: &'v Value,
    field: &str,
) -> Result<&'v Value, StateError> {
    path.select(input, context).ok_or_else(|| {
        StateError::runtime(format!(
            "Invalid path '{path}' in {field}: No results for path in the input '{input}'"
        ))
    })
}

/// InputPath: `null` gives `{}`; a path that selects nothing is States.Runtime.
pub(crate) fn input_path(io: &Io, raw: &Value, context: &Value) -> Result<Value, StateError> {
    match &io.input_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) => select(path, raw, context, "InputPath").cloned(),
    }
}

/// OutputPath: `null` gives `{}`; a path that selects nothing is States.Runtime.
pub(crate) fn output_path(io: &Io, output: Value, context: &Value) -> Result<Value, StateError> {
    match &io.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) if path.is_root() => Ok(output),
        Some(path) => select(path, &output, context, "OutputPath").cloned(),
    }
}

/// ResultPath: `null` keeps the raw input; otherwise the result is written into it.
pub(crate) fn result_path(
    path: Option<&JsonPath>,
    raw: &Value,
    result: Value,
) -> Result<Value, StateError> {
    match path {
        None => Ok(raw.clone()),
        Some(path) => path
            .write(raw, result)
            .map_err(|cause| StateError::new(names::RESULT_PATH_MATCH_FAILURE, cause)),
    }
}

/// A Fail state's Error/Cause value. A path must select a string.
pub(crate) fn fail_field(
    dynamic: &Dynamic,
    field: &str,
    input: &Value,
    context: &Value,
) -> Result<String, StateError> {
    let value = match dynamic {
        Dynamic::Literal(s) => return Ok(s.clone()),
        Dynamic::Path(path) => select(path, input, context, field)?.clone(),
    };
    match value {
        Value::String(s) => Ok(s),
        other => Err(StateError::runtime(format!(
            "{field} must resolve to a string, got {}",
            kind_of(&other)
        ))),
    }
}
