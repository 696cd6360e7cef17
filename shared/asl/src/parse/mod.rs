//! Loading a definition: `DefinitionSubstitutions`, then a strict parse of the JSON into the
//! typed model of [`crate::definition`]. Strict means every field must be one this interpreter
//! implements for that state type ([`supported_fields`]); anything else is rejected with an error
//! naming it, whether it is a typo, an ASL feature left out on purpose ([`UNSUPPORTED_FIELDS`],
//! the Parallel and Map state types) or an intrinsic function call. Field types and values, paths,
//! templates, Choice rules and the Retry/Catch shape are checked here, and so is a Task's
//! `Resource`: a plain ARN is handed to the invoker as it is, and of the optimized integrations
//! (`arn:aws:states:::service:api`) only `lambda:invoke` and `lambda:invoke.waitForTaskToken` are
//! implemented, with `FunctionName` and `Payload` as their only Parameters. The checks across
//! states (names, transitions, reachability) live in [`crate::validate`].

use crate::choice::parse_rule;
use crate::definition::{
    Catcher, ChoiceState, Definition, Dynamic, FailState, Integration, Io, PassState, Retrier,
    Seconds, State, TaskState, Transition, WaitFor, WaitState,
};
use crate::error::{names, DefinitionError};
use crate::path::JsonPath;
use crate::template::{intrinsic_name, Template, TemplateError};
use crate::validate;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Largest `TimeoutSeconds`/`Seconds`/`IntervalSeconds`/`MaxAttempts` Step Functions accepts.
mod fields;

use fields::Fields;

const MAX_SECONDS: u64 = 99_999_999;

/// Fields of the top-level object.
const TOP_LEVEL_FIELDS: &[&str] = &["Comment", "StartAt", "States", "TimeoutSeconds"];
/// Fields of a Retry entry.
const RETRIER_FIELDS: &[&str] = &[
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "MaxDelaySeconds",
    "BackoffRate",
    "JitterStrategy",
    "Comment",
];
/// Fields of a Catch entry.
const CATCHER_FIELDS: &[&str] = &["ErrorEquals", "Next", "ResultPath", "Comment"];

/// The state types this interpreter runs.
pub(crate) const SUPPORTED_STATE_TYPES: &[&str] =
    &["Task", "Pass", "Wait", "Choice", "Succeed", "Fail"];

/// The fields a state of `state_type` may have, or `None` for a type that is not supported.
pub(crate) fn supported_fields(state_type: &str) -> Option<&'static [&'static str]> {
    Some(match state_type {
        "Task" => &[
            "Type",
            "Comment",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
        ],
        "Pass" => &[
            "Type",
            "Comment",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
        ],
        "Wait" => &[
            "Type",
            "Comment",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
        ],
        "Choice" => &[
            "Type",
            "Comment",
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
        ],
        "Succeed" => &["Type", "Comment", "InputPath", "OutputPath"],
        "Fail" => &[
            "Type",
            "Comment",
            "Error",
            "ErrorPath",
            "Cause",
            "CausePath",
        ],
        _ => return None,
    })
}

/// Amazon States Language fields this interpreter deliberately does not implement (nothing in
/// `infra/` uses them), with what they are. Reported as [`DefinitionError::Unsupported`] rather
/// than as a typo.
pub(crate) const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    ("Assign", "variables (Assign)"),
    ("Arguments", "JSONata (Arguments)"),
    ("Output", "JSONata (Output)"),
    ("QueryLanguage", "QueryLanguage"),
    ("Version", "Version"),
    ("ResultSelector", "ResultSelector"),
    ("Credentials", "Task Credentials"),
    ("Timestamp", "Wait Timestamp"),
    ("TimestampPath", "Wait TimestampPath"),
];

/// The Parameters the optimized Lambda integration takes here (each also as `Name.$`). Step
/// Functions also passes `Qualifier`, `InvocationType`, `LogType` and `ClientContext` on to
/// Invoke; nothing here uses them, so they are rejected rather than ignored.
const LAMBDA_INVOKE_PARAMETERS: &[&str] = &["FunctionName", "Payload"];

/// Replaces `${Name}` placeholders as CloudFormation's `DefinitionSubstitutions` does: plain text
/// replacement before parsing, so a value may sit inside a string or stand alone as a number.
/// Unlike a deploy, an unknown placeholder is an error: locally it would otherwise become a
/// resource string no handler answers to.
pub(crate) fn substitute(
    definition: &str,
    substitutions: &HashMap<String, String>,
) -> Result<String, DefinitionError> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_end = after.find('}');
        let name = name_end.map(|end| &after[..end]);
        match name {
            Some(name)
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                let value = substitutions.get(name).ok_or_else(|| {
                    DefinitionError::MissingSubstitution {
                        name: name.to_string(),
                    }
                })?;
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            // Not a placeholder (e.g. `${` inside some text): keep it verbatim.
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn unsupported_intrinsic(location: String, function: &str) -> DefinitionError {
    DefinitionError::Unsupported {
        location,
        feature: format!("the intrinsic function {function}"),
    }
}

/// Parses a definition (already substituted) and validates it.
pub(crate) fn parse(text: &str) -> Result<Definition, DefinitionError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| DefinitionError::Json(e.to_string()))?;
    let top = Fields::new(&root, "top level".into())?;
    top.allow_only(TOP_LEVEL_FIELDS)?;
    let start_at = top.required_string("StartAt")?.to_string();
    let timeout_seconds = top.integer("TimeoutSeconds", 1, MAX_SECONDS)?;
    let comment = top.string("Comment")?.map(str::to_string);
    let Some(Value::Object(raw_states)) = top.get("States") else {
        return Err(top.err("States must be an object of named states"));
    };
    let mut states = BTreeMap::new();
    for (name, raw) in raw_states {
        states.insert(name.clone(), parse_state(raw, format!("state \"{name}\""))?);
    }
    let definition = Definition {
        start_at,
        states,
        timeout_seconds,
        comment,
    };
    validate::validate(&definition)?;
    Ok(definition)
}

fn parse_state(raw: &Value, loc: String) -> Result<State, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    let state_type = f.required_string("Type")?;
    let Some(fields) = supported_fields(state_type) else {
        return Err(match state_type {
            "Parallel" | "Map" => DefinitionError::Unsupported {
                location: f.loc.clone(),
                feature: format!("the {state_type} state type"),
            },
            other => f.err(format!(
                "unknown state type \"{other}\" (supported: {})",
                SUPPORTED_STATE_TYPES.join(", ")
            )),
        });
    };
    f.allow_only(fields)?;
    match state_type {
        "Task" => parse_task(&f),
        "Pass" => Ok(State::Pass(PassState {
            io: f.io()?,
            parameters: f.template("Parameters")?,
            result: f.get("Result").cloned(),
            result_path: f.result_path("ResultPath")?,
            transition: f.transition()?,
        })),
        "Wait" => parse_wait(&f),
        "Choice" => parse_choice(&f),
        "Succeed" => Ok(State::Succeed(f.io()?)),
        _ => parse_fail(&f),
    }
}

fn parse_task(f: &Fields<'_>) -> Result<State, DefinitionError> {
    let resource = f.required_string("Resource")?;
    if resource.is_empty() {
        return Err(f.err("Resource must not be empty"));
    }
    let retry = match f.get("Retry") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, r)| parse_retrier(r, format!("{} Retry[{i}]", f.loc), i + 1 == items.len()))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(f.err("Retry must be an array")),
    };
    let catch = match f.get("Catch") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, c)| parse_catcher(c, format!("{} Catch[{i}]", f.loc), i + 1 == items.len()))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(f.err("Catch must be an array")),
    };
    let integration = parse_integration(f, resource)?;
    let timeout = f.seconds("TimeoutSeconds", "TimeoutSecondsPath")?;
    let heartbeat = f.seconds("HeartbeatSeconds", "HeartbeatSecondsPath")?;
    if heartbeat.is_some() && !integration.waits_for_task_token() {
        let field = if f.has("HeartbeatSeconds") {
            "HeartbeatSeconds"
        } else {
            "HeartbeatSecondsPath"
        };
        // Only a callback task can be sent heartbeats; a Lambda or activity heartbeat is not
        // modelled, so rather than ignore the field, say so.
        return Err(DefinitionError::Unsupported {
            location: f.loc.clone(),
            feature: format!(
                "field \"{field}\" on a task that does not wait for a task token (Task \
                 heartbeats are implemented for .waitForTaskToken resources only)"
            ),
        });
    }
    if let (Some(Seconds::Fixed(beat)), Some(Seconds::Fixed(limit))) = (&heartbeat, &timeout) {
        if beat >= limit {
            return Err(f.err(format!(
                "HeartbeatSeconds ({beat}) must be smaller than TimeoutSeconds ({limit})"
            )));
        }
    }
    Ok(State::Task(TaskState {
        resource: resource.to_string(),
        integration,
        io: f.io()?,
        parameters: f.template("Parameters")?,
        result_path: f.result_path("ResultPath")?,
        retry,
        catch,
        transition: f.transition()?,
        timeout,
        heartbeat,
    }))
}

/// How a Task's resource is called. `arn:<partition>:states:::<service>:<api>` names an optimized
/// integration (only Lambda's Invoke is implemented, and its Parameters are checked); anything
/// else goes to the invoker as it is.
fn parse_integration(f: &Fields<'_>, resource: &str) -> Result<Integration, DefinitionError> {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    let [arn, _partition, service, region, account, integrated, api] = parts[..] else {
        return Ok(Integration::Resource);
    };
    if arn != "arn" || service != "states" || !region.is_empty() || !account.is_empty() {
        return Ok(Integration::Resource);
    }
    let integration = match (integrated, api) {
        ("lambda", "invoke") => Integration::LambdaInvoke {
            wait_for_task_token: false,
        },
        ("lambda", "invoke.waitForTaskToken") => Integration::LambdaInvoke {
            wait_for_task_token: true,
        },
        _ => {
            return Err(DefinitionError::Unsupported {
                location: f.loc.clone(),
                feature: format!(
                    "the service integration \"{integrated}:{api}\" (implemented: lambda:invoke, \
                     lambda:invoke.waitForTaskToken)"
                ),
            })
        }
    };
    let Some(Value::Object(parameters)) = f.get("Parameters") else {
        return Err(f.err(format!(
            "Parameters must be an object with a FunctionName for {integrated}:{api}"
        )));
    };
    for key in parameters.keys() {
        let name = key.strip_suffix(".$").unwrap_or(key);
        if !LAMBDA_INVOKE_PARAMETERS.contains(&name) {
            return Err(DefinitionError::Unsupported {
                location: format!("{} Parameters", f.loc),
                feature: format!(
                    "the {integrated}:{api} parameter \"{key}\" (implemented: {})",
                    LAMBDA_INVOKE_PARAMETERS.join(", ")
                ),
            });
        }
    }
    if !parameters.contains_key("FunctionName") && !parameters.contains_key("FunctionName.$") {
        return Err(f.err(format!(
            "Parameters must name the function (FunctionName) for {integrated}:{api}"
        )));
    }
    Ok(integration)
}

fn parse_retrier(raw: &Value, loc: String, last: bool) -> Result<Retrier, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    f.allow_only(RETRIER_FIELDS)?;
    let error_equals = f.error_equals()?;
    if !last && error_equals.iter().any(|e| e == names::ALL) {
        return Err(f.err("a Retrier using States.ALL must be the last one"));
    }
    let backoff_rate = match f.get("BackoffRate") {
        None => 2.0,
        Some(v) => match v.as_f64() {
            Some(rate) if rate >= 1.0 && rate.is_finite() => rate,
            _ => return Err(f.err(format!("BackoffRate must be a number >= 1.0, got {v}"))),
        },
    };
    let full_jitter = match f.string("JitterStrategy")? {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            return Err(f.err(format!(
                "JitterStrategy must be \"FULL\" or \"NONE\", got \"{other}\""
            )))
        }
    };
    Ok(Retrier {
        error_equals,
        interval_seconds: f.integer("IntervalSeconds", 1, MAX_SECONDS)?.unwrap_or(1),
        max_attempts: f.integer("MaxAttempts", 0, MAX_SECONDS)?.unwrap_or(3),
        backoff_rate,
        full_jitter,
        // The ASL spec's bound for MaxDelaySeconds: a year (31,622,400 s).
        max_delay_seconds: f.integer("MaxDelaySeconds", 1, 31_622_400)?,
    })
}

fn parse_catcher(raw: &Value, loc: String, last: bool) -> Result<Catcher, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    f.allow_only(CATCHER_FIELDS)?;
    let error_equals = f.error_equals()?;
    if !last && error_equals.iter().any(|e| e == names::ALL) {
        return Err(f.err("a Catcher using States.ALL must be the last one"));
    }
    Ok(Catcher {
        error_equals,
        next: f.required_string("Next")?.to_string(),
        result_path: f.result_path("ResultPath")?,
    })
}

fn parse_wait(f: &Fields<'_>) -> Result<State, DefinitionError> {
    let wait = match (f.has("Seconds"), f.has("SecondsPath")) {
        (true, false) => WaitFor::Seconds(f.integer("Seconds", 0, MAX_SECONDS)?.unwrap_or(0)),
        (false, true) => WaitFor::SecondsPath(f.path("SecondsPath")?.expect("present")),
        (true, true) => return Err(f.err("Seconds and SecondsPath are mutually exclusive")),
        (false, false) => return Err(f.err("needs exactly one of Seconds or SecondsPath")),
    };
    Ok(State::Wait(WaitState {
        io: f.io()?,
        wait,
        transition: f.transition()?,
    }))
}

fn parse_choice(f: &Fields<'_>) -> Result<State, DefinitionError> {
    let Some(Value::Array(rules)) = f.get("Choices") else {
        return Err(f.err("Choices must be a non-empty array of rules"));
    };
    if rules.is_empty() {
        return Err(f.err("Choices must be a non-empty array of rules"));
    }
    let choices = rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(r, &format!("{} Choices[{i}]", f.loc)))
        .collect::<Result<_, _>>()?;
    Ok(State::Choice(ChoiceState {
        io: f.io()?,
        choices,
        default: f.string("Default")?.map(str::to_string),
    }))
}

fn parse_fail(f: &Fields<'_>) -> Result<State, DefinitionError> {
    let dynamic = |literal: &str, path: &str| -> Result<Option<Dynamic>, DefinitionError> {
        if f.has(literal) && f.has(path) {
            return Err(f.err(format!("{literal} and {path} are mutually exclusive")));
        }
        if let Some(s) = f.string(literal)? {
            return Ok(Some(Dynamic::Literal(s.to_string())));
        }
        Ok(f.path(path)?.map(Dynamic::Path))
    };
    Ok(State::Fail(FailState {
        error: dynamic("Error", "ErrorPath")?,
        cause: dynamic("Cause", "CausePath")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_replaces_known_and_rejects_unknown() {
        let subs = HashMap::from([("Fn".to_string(), "arn:x".to_string())]);
        assert_eq!(
            substitute(r#"{"R":"${Fn}","N":"${ not a placeholder"}"#, &subs).unwrap(),
            r#"{"R":"arn:x","N":"${ not a placeholder"}"#
        );
        assert_eq!(
            substitute("${Other}", &subs),
            Err(DefinitionError::MissingSubstitution {
                name: "Other".into()
            })
        );
    }

    #[test]
    fn every_supported_state_type_has_a_field_list_and_no_unsupported_field_is_listed() {
        for state_type in SUPPORTED_STATE_TYPES {
            let fields = supported_fields(state_type).expect("listed type has fields");
            assert!(fields.contains(&"Type"), "{state_type}");
            for field in fields {
                assert!(
                    !UNSUPPORTED_FIELDS.iter().any(|(name, _)| name == field),
                    "{state_type}.{field} is both supported and unsupported"
                );
            }
        }
        assert_eq!(supported_fields("Map"), None);
    }
}
