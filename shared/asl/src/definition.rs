//! Loading a definition: `DefinitionSubstitutions`, JSON parsing, and validation into the typed
//! model the executor runs. Everything that can be checked without input is checked here (field
//! names and types per state type, transitions, reachability, paths, templates, intrinsic calls,
//! Choice rules, Retry/Catch shape), so a definition that loads is one Step Functions would also
//! accept, and a typo fails at load time rather than hours into a poll loop.

use crate::choice::{parse_rule, parse_timestamp, Rule};
use crate::error::{names, DefinitionError};
use crate::history::StateType;
use crate::intrinsic::Call;
use crate::path::JsonPath;
use crate::template::Template;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use time::OffsetDateTime;

/// Longest state name Step Functions accepts.
const MAX_STATE_NAME: usize = 80;
/// Largest `TimeoutSeconds`/`Seconds`/`IntervalSeconds`/`MaxAttempts` Step Functions accepts.
const MAX_SECONDS: u64 = 99_999_999;

/// A validated definition.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub timeout_seconds: Option<u64>,
    pub comment: Option<String>,
}

/// Where a non-terminal state goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

/// `InputPath`/`OutputPath`: `None` is JSON `null` (which selects `{}`); absent means `$`.
#[derive(Debug, Clone)]
pub(crate) struct Io {
    pub input_path: Option<JsonPath>,
    pub output_path: Option<JsonPath>,
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    Task(TaskState),
    Pass(PassState),
    Wait(WaitState),
    Choice(ChoiceState),
    Succeed(Io),
    Fail(FailState),
}

impl State {
    pub fn state_type(&self) -> StateType {
        match self {
            State::Task(_) => StateType::Task,
            State::Pass(_) => StateType::Pass,
            State::Wait(_) => StateType::Wait,
            State::Choice(_) => StateType::Choice,
            State::Succeed(_) => StateType::Succeed,
            State::Fail(_) => StateType::Fail,
        }
    }

    /// Every transition target with the field it came from, for validation.
    fn targets(&self) -> Vec<(String, &str)> {
        fn next(t: &Transition) -> Vec<(String, &str)> {
            match t {
                Transition::Next(n) => vec![("Next".to_string(), n.as_str())],
                Transition::End => vec![],
            }
        }
        match self {
            State::Task(t) => {
                let mut out = next(&t.transition);
                out.extend(
                    t.catch
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (format!("Catch[{i}].Next"), c.next.as_str())),
                );
                out
            }
            State::Pass(p) => next(&p.transition),
            State::Wait(w) => next(&w.transition),
            State::Choice(c) => {
                let mut out: Vec<(String, &str)> = c
                    .choices
                    .iter()
                    .enumerate()
                    .map(|(i, (_, n))| (format!("Choices[{i}].Next"), n.as_str()))
                    .collect();
                if let Some(d) = &c.default {
                    out.push(("Default".to_string(), d.as_str()));
                }
                out
            }
            State::Succeed(_) | State::Fail(_) => vec![],
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub resource: String,
    pub io: Io,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None` is `ResultPath: null` (discard the result).
    pub result_path: Option<JsonPath>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub timeout: Option<Seconds>,
    pub transition: Transition,
}

/// A number of seconds given literally or by a path into the effective input.
#[derive(Debug, Clone)]
pub(crate) enum Seconds {
    Fixed(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub full_jitter: bool,
}

impl Retrier {
    /// The delay before retry number `attempt` (0-based) of this Retrier, before jitter:
    /// `IntervalSeconds × BackoffRate^attempt`, capped by `MaxDelaySeconds`.
    pub fn base_delay(&self, attempt: u64) -> f64 {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let delay = self.interval_seconds as f64 * self.backoff_rate.powi(exponent);
        match self.max_delay_seconds {
            Some(max) => delay.min(max as f64),
            None => delay,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: Option<JsonPath>,
}

/// Whether an `ErrorEquals` list matches `error`. Terminal errors never reach this.
pub(crate) fn error_matches(error_equals: &[String], error: &str) -> bool {
    error_equals.iter().any(|e| {
        e == error || e == names::ALL || (e == names::TASK_FAILED && error != names::TIMEOUT)
    })
}

#[derive(Debug, Clone)]
pub(crate) struct PassState {
    pub io: Io,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: Option<JsonPath>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) struct WaitState {
    pub io: Io,
    pub wait: WaitFor,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(OffsetDateTime),
    TimestampPath(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceState {
    pub io: Io,
    pub choices: Vec<(Rule, String)>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct FailState {
    pub error: Option<Dynamic>,
    pub cause: Option<Dynamic>,
}

/// A Fail state's `Error`/`Cause` (literal) or `ErrorPath`/`CausePath` (path or intrinsic).
#[derive(Debug, Clone)]
pub(crate) enum Dynamic {
    Literal(String),
    Path(JsonPath),
    Call(Call),
}

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

/// Typed access to one JSON object of the definition, with its location for error messages.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    loc: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, loc: String) -> Result<Self, DefinitionError> {
        match value.as_object() {
            Some(map) => Ok(Self { map, loc }),
            None => Err(DefinitionError::invalid(loc, "must be a JSON object")),
        }
    }

    fn err(&self, message: impl Into<String>) -> DefinitionError {
        DefinitionError::invalid(self.loc.clone(), message)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Rejects any field outside `allowed`, naming the unsupported features explicitly.
    fn allow_only(&self, allowed: &[&str]) -> Result<(), DefinitionError> {
        for key in self.map.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let feature = match key.as_str() {
                "Assign" => Some("variables (Assign)"),
                "Arguments" | "Output" => Some("JSONata (Arguments/Output)"),
                _ => None,
            };
            return Err(match feature {
                Some(feature) => DefinitionError::Unsupported {
                    location: self.loc.clone(),
                    feature: feature.into(),
                },
                None => self.err(format!("field \"{key}\" is not allowed here")),
            });
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(format!("{key} must be a string, got {other}"))),
        }
    }

    fn required_string(&self, key: &str) -> Result<&'a str, DefinitionError> {
        self.string(key)?
            .ok_or_else(|| self.err(format!("{key} is required")))
    }

    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.err(format!(
                    "{key} must be an integer from {min} to {max}, got {v}"
                ))),
            },
        }
    }

    fn path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        self.string(key)?
            .map(|p| JsonPath::parse(p).map_err(|e| self.err(format!("{key}: {e}"))))
            .transpose()
    }

    /// InputPath/OutputPath/ResultPath: absent means `$`, `null` means "none".
    fn nullable_path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        match self.get(key) {
            None => Ok(Some(JsonPath::root())),
            Some(Value::Null) => Ok(None),
            Some(_) => self.path(key),
        }
    }

    fn result_path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        let path = self.nullable_path(key)?;
        if path.as_ref().is_some_and(JsonPath::is_context) {
            return Err(self.err(format!("{key} cannot write into the context object ($$)")));
        }
        Ok(path)
    }

    fn io(&self) -> Result<Io, DefinitionError> {
        Ok(Io {
            input_path: self.nullable_path("InputPath")?,
            output_path: self.nullable_path("OutputPath")?,
        })
    }

    fn template(&self, key: &str) -> Result<Option<Template>, DefinitionError> {
        self.get(key)
            .map(|v| {
                if !v.is_object() {
                    return Err(self.err(format!("{key} must be a JSON object")));
                }
                Template::compile(v).map_err(|e| self.err(format!("{key}: {e}")))
            })
            .transpose()
    }

    /// Exactly one of `Next` and `End: true`.
    fn transition(&self) -> Result<Transition, DefinitionError> {
        let end = match self.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(self.err(format!("End must be a boolean, got {other}"))),
        };
        match (self.string("Next")?, end) {
            (Some(next), false) => Ok(Transition::Next(next.to_string())),
            (None, true) => Ok(Transition::End),
            (Some(_), true) => Err(self.err("has both Next and End; exactly one is allowed")),
            (None, false) => Err(self.err("needs exactly one of Next or \"End\": true")),
        }
    }

    fn error_equals(&self) -> Result<Vec<String>, DefinitionError> {
        let Some(Value::Array(items)) = self.get("ErrorEquals") else {
            return Err(self.err("ErrorEquals must be a non-empty array of error names"));
        };
        let names: Vec<String> = items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .filter(|n: &Vec<String>| !n.is_empty())
            .ok_or_else(|| self.err("ErrorEquals must be a non-empty array of error names"))?;
        if names.iter().any(|n| n == names::ALL) && names.len() > 1 {
            return Err(self.err("States.ALL must appear alone in ErrorEquals"));
        }
        Ok(names)
    }
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

fn allowed(extra: &[&'static str]) -> Vec<&'static str> {
    COMMON.iter().chain(extra).copied().collect()
}

/// Parses and validates a definition (already substituted).
pub(crate) fn parse(text: &str) -> Result<Definition, DefinitionError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| DefinitionError::Json(e.to_string()))?;
    let top = Fields::new(&root, "top level".into())?;
    top.allow_only(&[
        "Comment",
        "StartAt",
        "States",
        "TimeoutSeconds",
        "Version",
        "QueryLanguage",
    ])?;
    query_language(&top)?;
    let start_at = top.required_string("StartAt")?.to_string();
    let timeout_seconds = top.integer("TimeoutSeconds", 1, MAX_SECONDS)?;
    let comment = top.string("Comment")?.map(str::to_string);
    let Some(Value::Object(raw_states)) = top.get("States") else {
        return Err(top.err("States must be an object of named states"));
    };
    if raw_states.is_empty() {
        return Err(top.err("States must not be empty"));
    }
    let mut states = BTreeMap::new();
    for (name, raw) in raw_states {
        let loc = format!("state \"{name}\"");
        if name.is_empty() || name.chars().count() > MAX_STATE_NAME {
            return Err(DefinitionError::invalid(
                loc,
                format!("state names must be 1 to {MAX_STATE_NAME} characters"),
            ));
        }
        states.insert(name.clone(), parse_state(raw, loc)?);
    }
    if !states.contains_key(&start_at) {
        return Err(DefinitionError::MissingTarget {
            location: "top level".into(),
            field: "StartAt".into(),
            target: start_at,
        });
    }
    for (name, state) in &states {
        for (field, target) in state.targets() {
            if !states.contains_key(target) {
                return Err(DefinitionError::MissingTarget {
                    location: format!("state \"{name}\""),
                    field,
                    target: target.to_string(),
                });
            }
        }
    }
    // Step Functions rejects states nothing transitions to; so do we, since one usually means a
    // misspelt Next elsewhere.
    let mut reached: HashSet<&str> = HashSet::from([start_at.as_str()]);
    let mut queue = VecDeque::from([start_at.as_str()]);
    while let Some(name) = queue.pop_front() {
        for (_, target) in states[name].targets() {
            if reached.insert(target) {
                queue.push_back(target);
            }
        }
    }
    if let Some(orphan) = states.keys().find(|n| !reached.contains(n.as_str())) {
        return Err(DefinitionError::invalid(
            format!("state \"{orphan}\""),
            "is not reachable from StartAt",
        ));
    }
    Ok(Definition {
        start_at,
        states,
        timeout_seconds,
        comment,
    })
}

fn query_language(fields: &Fields<'_>) -> Result<(), DefinitionError> {
    match fields.string("QueryLanguage")? {
        None | Some("JSONPath") => Ok(()),
        Some("JSONata") => Err(DefinitionError::Unsupported {
            location: fields.loc.clone(),
            feature: "QueryLanguage JSONata".into(),
        }),
        Some(other) => Err(fields.err(format!("unknown QueryLanguage \"{other}\""))),
    }
}

fn parse_state(raw: &Value, loc: String) -> Result<State, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    query_language(&f)?;
    let state_type = f.required_string("Type")?;
    match state_type {
        "Task" => parse_task(&f),
        "Pass" => {
            f.allow_only(&allowed(&[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "Result",
            ]))?;
            Ok(State::Pass(PassState {
                io: f.io()?,
                parameters: f.template("Parameters")?,
                result: f.get("Result").cloned(),
                result_path: f.result_path("ResultPath")?,
                transition: f.transition()?,
            }))
        }
        "Wait" => parse_wait(&f),
        "Choice" => parse_choice(&f),
        "Succeed" => {
            f.allow_only(&allowed(&["InputPath", "OutputPath"]))?;
            Ok(State::Succeed(f.io()?))
        }
        "Fail" => parse_fail(&f),
        "Parallel" | "Map" => Err(DefinitionError::Unsupported {
            location: f.loc.clone(),
            feature: format!("the {state_type} state type"),
        }),
        other => Err(f.err(format!("unknown state type \"{other}\""))),
    }
}

fn parse_task(f: &Fields<'_>) -> Result<State, DefinitionError> {
    f.allow_only(&allowed(&[
        "Next",
        "End",
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Retry",
        "Catch",
        "Resource",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        // Accepted and ignored: local invocations run with the caller's own permissions.
        "Credentials",
    ]))?;
    let resource = f.required_string("Resource")?;
    if resource.is_empty() {
        return Err(f.err("Resource must not be empty"));
    }
    if f.has("TimeoutSeconds") && f.has("TimeoutSecondsPath") {
        return Err(f.err("TimeoutSeconds and TimeoutSecondsPath are mutually exclusive"));
    }
    if f.has("HeartbeatSeconds") && f.has("HeartbeatSecondsPath") {
        return Err(f.err("HeartbeatSeconds and HeartbeatSecondsPath are mutually exclusive"));
    }
    let timeout = match (
        f.integer("TimeoutSeconds", 1, MAX_SECONDS)?,
        f.path("TimeoutSecondsPath")?,
    ) {
        (Some(n), _) => Some(Seconds::Fixed(n)),
        (None, Some(p)) => Some(Seconds::Path(p)),
        (None, None) => None,
    };
    // Heartbeats are validated but not enforced: a local handler is called directly and cannot
    // send heartbeats.
    let heartbeat = f.integer("HeartbeatSeconds", 1, MAX_SECONDS)?;
    f.path("HeartbeatSecondsPath")?;
    if let (Some(h), Some(Seconds::Fixed(t))) = (heartbeat, &timeout) {
        if h >= *t {
            return Err(f.err("HeartbeatSeconds must be smaller than TimeoutSeconds"));
        }
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
    Ok(State::Task(TaskState {
        resource: resource.to_string(),
        io: f.io()?,
        parameters: f.template("Parameters")?,
        result_selector: f.template("ResultSelector")?,
        result_path: f.result_path("ResultPath")?,
        retry,
        catch,
        timeout,
        transition: f.transition()?,
    }))
}

fn parse_retrier(raw: &Value, loc: String, last: bool) -> Result<Retrier, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    f.allow_only(&[
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    ])?;
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
        max_delay_seconds: f.integer("MaxDelaySeconds", 1, 31_622_400)?,
        full_jitter,
    })
}

fn parse_catcher(raw: &Value, loc: String, last: bool) -> Result<Catcher, DefinitionError> {
    let f = Fields::new(raw, loc)?;
    f.allow_only(&["ErrorEquals", "Next", "ResultPath", "Comment"])?;
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
    f.allow_only(&allowed(&[
        "Next",
        "End",
        "InputPath",
        "OutputPath",
        "Seconds",
        "SecondsPath",
        "Timestamp",
        "TimestampPath",
    ]))?;
    let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    if given.len() != 1 {
        return Err(f.err(format!(
            "needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath (found {})",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            }
        )));
    }
    let wait = match given[0] {
        "Seconds" => WaitFor::Seconds(f.integer("Seconds", 0, MAX_SECONDS)?.unwrap_or(0)),
        "SecondsPath" => WaitFor::SecondsPath(f.path("SecondsPath")?.expect("present")),
        "Timestamp" => {
            let text = f.required_string("Timestamp")?;
            WaitFor::Timestamp(parse_timestamp(text).ok_or_else(|| {
                f.err(format!(
                    "Timestamp \"{text}\" is not an RFC 3339 timestamp (uppercase T and Z)"
                ))
            })?)
        }
        _ => WaitFor::TimestampPath(f.path("TimestampPath")?.expect("present")),
    };
    Ok(State::Wait(WaitState {
        io: f.io()?,
        wait,
        transition: f.transition()?,
    }))
}

fn parse_choice(f: &Fields<'_>) -> Result<State, DefinitionError> {
    f.allow_only(&allowed(&["InputPath", "OutputPath", "Choices", "Default"]))?;
    let Some(Value::Array(rules)) = f.get("Choices") else {
        return Err(f.err("Choices must be a non-empty array of rules"));
    };
    if rules.is_empty() {
        return Err(f.err("Choices must be a non-empty array of rules"));
    }
    let choices = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            parse_rule(r, &format!("{} Choices[{i}]", f.loc), true)
                .map(|(rule, next)| (rule, next.expect("top-level rules carry Next")))
        })
        .collect::<Result<_, _>>()?;
    Ok(State::Choice(ChoiceState {
        io: f.io()?,
        choices,
        default: f.string("Default")?.map(str::to_string),
    }))
}

fn parse_fail(f: &Fields<'_>) -> Result<State, DefinitionError> {
    f.allow_only(&allowed(&["Error", "ErrorPath", "Cause", "CausePath"]))?;
    let dynamic = |literal: &str, path: &str| -> Result<Option<Dynamic>, DefinitionError> {
        if f.has(literal) && f.has(path) {
            return Err(f.err(format!("{literal} and {path} are mutually exclusive")));
        }
        if let Some(s) = f.string(literal)? {
            return Ok(Some(Dynamic::Literal(s.to_string())));
        }
        let Some(expr) = f.string(path)? else {
            return Ok(None);
        };
        let expr = expr.trim();
        if expr.starts_with("States.") {
            Call::parse(expr)
                .map(|c| Some(Dynamic::Call(c)))
                .map_err(|e| f.err(format!("{path}: {e}")))
        } else {
            JsonPath::parse(expr)
                .map(|p| Some(Dynamic::Path(p)))
                .map_err(|e| f.err(format!("{path}: {e}")))
        }
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
    fn retrier_delays() {
        let r = Retrier {
            error_equals: vec![],
            interval_seconds: 2,
            max_attempts: 5,
            backoff_rate: 3.0,
            max_delay_seconds: Some(30),
            full_jitter: false,
        };
        let delays: Vec<f64> = (0..4).map(|a| r.base_delay(a)).collect();
        assert_eq!(delays, vec![2.0, 6.0, 18.0, 30.0]);
    }

    #[test]
    fn task_failed_wildcard_excludes_timeout() {
        let list = vec![names::TASK_FAILED.to_string()];
        assert!(error_matches(&list, "Boom"));
        assert!(!error_matches(&list, names::TIMEOUT));
        assert!(error_matches(&[names::ALL.to_string()], names::TIMEOUT));
    }
}
