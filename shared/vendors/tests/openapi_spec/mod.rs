//! Checks recorded simulator exchanges against a vendor's own OpenAPI 3.0 document.
//!
//! The specs are not copied into the repository: they live in `shared/vendor-docs/openapi/`,
//! which CI lays beside the repository clone (`/work/shared` beside `/work/main`), so the tests
//! always check against the very files the vendor modules were written from.
//!
//! For each exchange: the method and path must match an operation (path templates, under the
//! path of the spec's first server), every query parameter must be one the operation declares,
//! the JSON request body must validate against the operation's request schema, and the JSON
//! response body against the schema of the response declared for that status (or `default`).
//!
//! Schemas are validated as JSON Schema draft 4 (what OpenAPI 3.0's schema object extends),
//! against a root document that is the whole spec with a `$ref` to the schema in question, so
//! `#/components/...` references resolve inside the same document. OpenAPI 3.0's `nullable: true`
//! has no JSON Schema meaning and is rewritten into a type union first.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use runbridge_sim::Exchange;
use serde_json::{Map, Value};

/// Why a spec cannot be used at all (as opposed to an exchange that does not conform).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec directory or file is missing.
    #[error(
        "vendor OpenAPI spec {path} cannot be read ({source}); the conformance tests expect \
         `shared/vendor-docs/openapi/` beside the repository clone (CI lays `shared/` next to it)"
    )]
    Unreadable {
        /// The file looked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path} is not JSON: {source}")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A `$ref` inside the spec points nowhere, or an object is not shaped as OpenAPI says.
    #[error("{file}: {pointer}: {problem}")]
    Malformed {
        /// The spec's file name.
        file: String,
        /// Where in the spec.
        pointer: String,
        /// What is wrong.
        problem: String,
    },
    /// A schema of the spec is not a valid JSON Schema.
    #[error("{file}: schema {pointer} does not compile: {message}")]
    Schema {
        /// The spec's file name.
        file: String,
        /// The schema's JSON pointer.
        pointer: String,
        /// The compiler's message.
        message: String,
    },
}

/// Which body of an exchange a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the client sent (body, query string, method and path).
    Request,
    /// What the simulator answered.
    Response,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Request => "request",
            Direction::Response => "response",
        })
    }
}

/// What kind of departure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// No operation matches the method and path.
    UnknownRoute,
    /// A query parameter the operation does not declare.
    UndeclaredQueryParameter,
    /// A body missing where required, or present where none is declared.
    BodyPresence,
    /// A body breaks its schema (type, enum, required, format, …).
    SchemaViolation,
    /// A body carries a property its schema does not declare. OpenAPI 3.0 schemas allow extra
    /// properties unless they say otherwise, so this is not invalid, but a body whose fields the
    /// spec does not know is a sign of a different shape (a wrapper, a renamed field).
    UndeclaredProperty,
    /// The response status is not declared for the operation (and there is no `default`).
    UndeclaredStatus,
}

/// One way an exchange departs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The operation id, or `METHOD path` when no operation matched.
    pub operation: String,
    /// Request or response.
    pub direction: Direction,
    /// JSON pointer into the body (`?name` for a query parameter, empty for the whole exchange).
    pub pointer: String,
    /// What kind of departure.
    pub kind: FindingKind,
    /// What is wrong.
    pub problem: String,
    /// The exchange's status, for the report.
    pub status: u16,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{} {}] {:?} at `{}`: {}",
            self.operation, self.direction, self.status, self.kind, self.pointer, self.problem
        )
    }
}

/// A deviation from the spec that is known and judged acceptable: one judgement, for the
/// operations and pointers it applies to. Kept in the tests, small and commented, so every
/// exception is visible where it is made.
#[derive(Debug, Clone, Copy)]
pub struct Exception {
    /// Operation ids (or labels given to [`Spec::check_body`]).
    pub operations: &'static [&'static str],
    /// Request or response.
    pub direction: Direction,
    /// What kind of departure it is.
    pub kind: FindingKind,
    /// JSON pointers of the findings; a `*` segment matches any one segment (array indexes,
    /// or every property of an object).
    pub pointers: &'static [&'static str],
    /// Text the finding's problem must contain (`""` for any): narrows a schema exception to
    /// the one value it is about, so other errors at the same place still fail.
    pub problem_contains: &'static str,
    /// Why the deviation is right (or unavoidable).
    pub reason: &'static str,
}

impl Exception {
    /// Whether this exception covers `finding`.
    pub fn covers(&self, finding: &Finding) -> bool {
        self.operations.contains(&finding.operation.as_str())
            && self.direction == finding.direction
            && self.kind == finding.kind
            && finding.problem.contains(self.problem_contains)
            && self
                .pointers
                .iter()
                .any(|pattern| pointer_matches(pattern, &finding.pointer))
    }
}

fn pointer_matches(pattern: &str, pointer: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let pointer: Vec<&str> = pointer.split('/').collect();
    pattern.len() == pointer.len()
        && pattern
            .iter()
            .zip(&pointer)
            .all(|(p, s)| *p == "*" || p == s)
}

/// What checking a set of exchanges found.
#[derive(Debug, Default)]
pub struct Report {
    /// Departures from the spec.
    pub findings: Vec<Finding>,
    /// Operation ids that were exercised (with the number of exchanges).
    pub operations_seen: HashMap<String, usize>,
    /// Bodies validated against a schema.
    pub bodies_validated: usize,
    /// JSON bodies for which the spec declares no schema (e.g. Adobe's and Amperity's error
    /// responses without content): seen but not checkable.
    pub bodies_without_schema: usize,
}

/// The directory holding the vendors' OpenAPI specs: `../shared/vendor-docs/openapi` relative to
/// the repository root, found by walking up from this crate to the directory holding
/// `Cargo.lock` (the workspace root).
pub fn spec_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo_root = crate_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file() || dir.join(".git").exists())
        .unwrap_or_else(|| panic!("no repository root above {}", crate_dir.display()));
    repo_root.join("../shared/vendor-docs/openapi")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

#[derive(Debug)]
struct Operation {
    id: String,
    method: String,
    segments: Vec<Segment>,
    /// JSON pointer of the operation object.
    pointer: String,
    /// JSON pointer of its path item (for path-level parameters).
    path_item_pointer: String,
}

/// A loaded spec.
pub struct Spec {
    file: String,
    document: Value,
    operations: Vec<Operation>,
    validators: HashMap<String, jsonschema::Validator>,
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: characters a fragment may not hold (the `{`, `}` of path
/// templates, spaces) are percent-encoded.
fn uri_fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for byte in pointer.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn split_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The path part of a server URL (`https://app.amperity.com/api` → `/api`,
/// `//{environment}.adobe.io/data/foundation/flowservice` → `/data/foundation/flowservice`).
fn server_base_path(document: &Value) -> String {
    let Some(url) = document.pointer("/servers/0/url").and_then(Value::as_str) else {
        return String::new();
    };
    let without_scheme = url.split_once("//").map_or(url, |(_, rest)| rest);
    without_scheme
        .find('/')
        .map(|i| without_scheme[i..].trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Rewrites OpenAPI 3.0 `nullable: true` into JSON Schema: a `type` becomes a union with
/// `"null"`, an `enum` gains `null`, and a schema without `type` (a `$ref` or a combinator) is
/// wrapped in `anyOf [schema, {"type": "null"}]`.
pub fn convert_nullable(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        Value::Object(map) => {
            map.values_mut().for_each(convert_nullable);
            if map.get("nullable") != Some(&Value::Bool(true)) {
                return;
            }
            map.remove("nullable");
            if let Some(Value::Array(options)) = map.get_mut("enum") {
                if !options.contains(&Value::Null) {
                    options.push(Value::Null);
                }
            }
            match map.get_mut("type") {
                Some(Value::String(t)) => {
                    let single = std::mem::take(t);
                    map.insert("type".into(), Value::from(vec![single, "null".to_owned()]));
                }
                Some(Value::Array(types)) => {
                    if !types.contains(&Value::from("null")) {
                        types.push(Value::from("null"));
                    }
                }
                _ => {
                    let inner = Value::Object(std::mem::take(map));
                    let mut wrapper = Map::new();
                    wrapper.insert(
                        "anyOf".into(),
                        Value::from(vec![inner, serde_json::json!({"type": "null"})]),
                    );
                    *map = wrapper;
                }
            }
        }
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

impl Spec {
    /// Loads `file_name` from [`spec_dir`].
    pub fn load(file_name: &str) -> Result<Self, SpecError> {
        let path = spec_dir().join(file_name);
        let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let document: Value =
            serde_json::from_str(&text).map_err(|source| SpecError::NotJson { path, source })?;
        Ok(Self::from_document(file_name, document))
    }

    /// A spec from an already parsed document.
    pub fn from_document(file_name: &str, mut document: Value) -> Self {
        convert_nullable(&mut document);
        let base = server_base_path(&document);
        let mut operations = Vec::new();
        if let Some(paths) = document.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let path_item_pointer = format!("/paths/{}", escape_pointer(template));
                for method in METHODS {
                    let Some(op) = item.get(method) else { continue };
                    let segments = split_path(&base)
                        .into_iter()
                        .chain(split_path(template))
                        .map(|s| {
                            if s.starts_with('{') && s.ends_with('}') {
                                Segment::Parameter
                            } else {
                                Segment::Literal(s.to_owned())
                            }
                        })
                        .collect();
                    operations.push(Operation {
                        id: op
                            .get("operationId")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("{method} {template}"), str::to_owned),
                        method: method.to_ascii_uppercase(),
                        segments,
                        pointer: format!("{path_item_pointer}/{method}"),
                        path_item_pointer: path_item_pointer.clone(),
                    });
                }
            }
        }
        Self {
            file: file_name.to_owned(),
            document,
            operations,
            validators: HashMap::new(),
        }
    }

    /// The operation `method path` matches: the one with the most literal segments, so
    /// `/flows/search` wins over `/flows/{FLOW_ID}`.
    fn operation_for(&self, method: &str, path: &str) -> Option<&Operation> {
        let parts = split_path(path);
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method) && op.segments.len() == parts.len())
            .filter(|op| {
                op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                    Segment::Literal(l) => l == part,
                    Segment::Parameter => !part.is_empty(),
                })
            })
            .max_by_key(|op| {
                op.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
    }

    /// Follows a local `$ref` (`#/components/...`), returning the target and its pointer.
    fn resolve<'a>(
        &'a self,
        value: &'a Value,
        pointer: String,
    ) -> Result<(&'a Value, String), SpecError> {
        let mut current = (value, pointer);
        // References can chain; a spec with a cycle of bare references is malformed.
        for _ in 0..16 {
            let Some(reference) = current.0.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            let target = reference
                .strip_prefix('#')
                .ok_or_else(|| self.malformed(&current.1, format!("non-local $ref {reference}")))?;
            let resolved = self.document.pointer(target).ok_or_else(|| {
                self.malformed(&current.1, format!("$ref {reference} points nowhere"))
            })?;
            current = (resolved, target.to_owned());
        }
        Err(self.malformed(&current.1, "$ref chain too long".to_owned()))
    }

    fn malformed(&self, pointer: &str, problem: String) -> SpecError {
        SpecError::Malformed {
            file: self.file.clone(),
            pointer: pointer.to_owned(),
            problem,
        }
    }

    fn at(&self, pointer: &str) -> Result<&Value, SpecError> {
        self.document
            .pointer(pointer)
            .ok_or_else(|| self.malformed(pointer, "missing".to_owned()))
    }

    /// The JSON pointer of the schema of the first JSON media type in `content` (at `pointer`).
    fn json_schema_pointer(content: &Value, pointer: &str) -> Option<String> {
        content.as_object()?.iter().find_map(|(media_type, entry)| {
            (media_type.contains("json") && entry.get("schema").is_some())
                .then(|| format!("{pointer}/{}/schema", escape_pointer(media_type)))
        })
    }

    /// Query parameter names the operation (and its path item) declares.
    fn query_parameters(&self, op: &Operation) -> Result<Vec<String>, SpecError> {
        let mut names = Vec::new();
        for owner in [&op.path_item_pointer, &op.pointer] {
            let Some(list) = self.at(owner)?.get("parameters").and_then(Value::as_array) else {
                continue;
            };
            for (i, parameter) in list.iter().enumerate() {
                let (parameter, _) = self.resolve(parameter, format!("{owner}/parameters/{i}"))?;
                if parameter.get("in").and_then(Value::as_str) == Some("query") {
                    if let Some(name) = parameter.get("name").and_then(Value::as_str) {
                        names.push(name.to_owned());
                    }
                }
            }
        }
        Ok(names)
    }

    /// Validates `instance` against the schema at `schema_pointer`, as findings.
    fn validate(
        &mut self,
        schema_pointer: &str,
        instance: &Value,
    ) -> Result<Vec<(String, String)>, SpecError> {
        if !self.validators.contains_key(schema_pointer) {
            let mut root = self.document.clone();
            root.as_object_mut()
                .ok_or_else(|| self.malformed("", "spec is not an object".to_owned()))?
                .insert(
                    "$ref".into(),
                    Value::from(format!("#{}", uri_fragment(schema_pointer))),
                );
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .build(&root)
                .map_err(|e| SpecError::Schema {
                    file: self.file.clone(),
                    pointer: schema_pointer.to_owned(),
                    message: e.to_string(),
                })?;
            self.validators.insert(schema_pointer.to_owned(), validator);
        }
        let validator = &self.validators[schema_pointer];
        Ok(validator
            .iter_errors(instance)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect())
    }

    /// Schema violations and undeclared properties of `instance` against the schema at
    /// `schema_pointer`.
    fn body_findings(
        &mut self,
        schema_pointer: &str,
        instance: &Value,
    ) -> Result<Vec<(FindingKind, String, String)>, SpecError> {
        let mut out: Vec<_> = self
            .validate(schema_pointer, instance)?
            .into_iter()
            .map(|(pointer, problem)| (FindingKind::SchemaViolation, pointer, problem))
            .collect();
        let schema = self.at(schema_pointer)?;
        let mut undeclared = Vec::new();
        self.undeclared_properties(schema, schema_pointer, instance, "", &mut undeclared)?;
        out.extend(undeclared.into_iter().map(|pointer| {
            (
                FindingKind::UndeclaredProperty,
                pointer,
                "property not declared by the schema".to_owned(),
            )
        }));
        Ok(out)
    }

    /// The schema and its `allOf`/`anyOf`/`oneOf` members, references followed.
    fn branches<'a>(
        &'a self,
        schema: &'a Value,
        pointer: &str,
        out: &mut Vec<(&'a Value, String)>,
    ) -> Result<(), SpecError> {
        let (schema, pointer) = self.resolve(schema, pointer.to_owned())?;
        for combinator in ["allOf", "anyOf", "oneOf"] {
            if let Some(members) = schema.get(combinator).and_then(Value::as_array) {
                for (i, member) in members.iter().enumerate() {
                    self.branches(member, &format!("{pointer}/{combinator}/{i}"), out)?;
                }
            }
        }
        out.push((schema, pointer));
        Ok(())
    }

    /// Collects pointers of object properties in `instance` that no branch of `schema` declares,
    /// where the schema declares properties and does not allow others explicitly.
    fn undeclared_properties(
        &self,
        schema: &Value,
        schema_pointer: &str,
        instance: &Value,
        instance_pointer: &str,
        out: &mut Vec<String>,
    ) -> Result<(), SpecError> {
        let mut branches = Vec::new();
        self.branches(schema, schema_pointer, &mut branches)?;
        match instance {
            Value::Object(fields) => {
                let declares = branches.iter().any(|(b, _)| b.get("properties").is_some());
                let open = branches.iter().any(|(b, _)| {
                    b.get("additionalProperties")
                        .is_some_and(|a| a != &Value::Bool(false))
                });
                for (name, value) in fields {
                    let escaped = escape_pointer(name);
                    let field_pointer = format!("{instance_pointer}/{escaped}");
                    let declared = branches.iter().find_map(|(b, p)| {
                        b.pointer(&format!("/properties/{escaped}"))
                            .map(|s| (s, format!("{p}/properties/{escaped}")))
                    });
                    match declared {
                        Some((property, property_pointer)) => self.undeclared_properties(
                            property,
                            &property_pointer,
                            value,
                            &field_pointer,
                            out,
                        )?,
                        None if declares && !open => out.push(field_pointer),
                        None => {}
                    }
                }
            }
            Value::Array(items) => {
                let item_schema = branches
                    .iter()
                    .find_map(|(b, p)| b.get("items").map(|s| (s, format!("{p}/items"))));
                if let Some((item_schema, item_pointer)) = item_schema {
                    for (i, item) in items.iter().enumerate() {
                        self.undeclared_properties(
                            item_schema,
                            &item_pointer,
                            item,
                            &format!("{instance_pointer}/{i}"),
                            out,
                        )?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks `body` against the schema at `schema_pointer` (e.g. `/components/schemas/X`),
    /// reporting findings under `label`: for bodies the spec types elsewhere than at their
    /// operation (AMC's flat execution object is the spec's wrapped `WorkflowExecution`).
    pub fn check_body(
        &mut self,
        label: &str,
        direction: Direction,
        status: u16,
        schema_pointer: &str,
        body: &Value,
        report: &mut Report,
    ) -> Result<(), SpecError> {
        report.bodies_validated += 1;
        for (kind, pointer, problem) in self.body_findings(schema_pointer, body)? {
            report.findings.push(Finding {
                operation: label.to_owned(),
                direction,
                pointer,
                kind,
                problem,
                status,
            });
        }
        Ok(())
    }

    /// Checks one exchange, adding to `report`.
    pub fn check(&mut self, exchange: &Exchange, report: &mut Report) -> Result<(), SpecError> {
        let finding = |operation: &str, direction, kind, pointer: &str, problem: String| Finding {
            operation: operation.to_owned(),
            direction,
            pointer: pointer.to_owned(),
            kind,
            problem,
            status: exchange.status,
        };
        let Some(op) = self.operation_for(&exchange.method, &exchange.path) else {
            report.findings.push(finding(
                &format!("{} {}", exchange.method, exchange.path),
                Direction::Request,
                FindingKind::UnknownRoute,
                "",
                format!("no operation of {} matches this method and path", self.file),
            ));
            return Ok(());
        };
        let operation_id = op.id.clone();
        let op_pointer = op.pointer.clone();
        *report
            .operations_seen
            .entry(operation_id.clone())
            .or_default() += 1;

        let declared = self.query_parameters(op)?;
        for pair in exchange.query.as_deref().unwrap_or("").split('&') {
            let name = pair.split('=').next().unwrap_or("");
            if !name.is_empty() && !declared.iter().any(|d| d == name) {
                report.findings.push(finding(
                    &operation_id,
                    Direction::Request,
                    FindingKind::UndeclaredQueryParameter,
                    &format!("?{name}"),
                    format!("query parameter `{name}` is not declared (declared: {declared:?})"),
                ));
            }
        }

        let op_value = self.at(&op_pointer)?.clone();
        match (op_value.get("requestBody"), &exchange.request) {
            (Some(body), Some(request)) => {
                let (body, body_pointer) =
                    self.resolve(body, format!("{op_pointer}/requestBody"))?;
                let schema = body
                    .get("content")
                    .and_then(|c| Self::json_schema_pointer(c, &format!("{body_pointer}/content")));
                match schema {
                    Some(schema) => {
                        report.bodies_validated += 1;
                        for (kind, pointer, problem) in self.body_findings(&schema, request)? {
                            report.findings.push(finding(
                                &operation_id,
                                Direction::Request,
                                kind,
                                &pointer,
                                problem,
                            ));
                        }
                    }
                    None => report.bodies_without_schema += 1,
                }
            }
            (Some(body), None) => {
                let (body, _) = self.resolve(body, format!("{op_pointer}/requestBody"))?;
                if body.get("required") == Some(&Value::Bool(true)) {
                    report.findings.push(finding(
                        &operation_id,
                        Direction::Request,
                        FindingKind::BodyPresence,
                        "",
                        "the operation requires a JSON request body and none was sent".to_owned(),
                    ));
                }
            }
            (None, Some(_)) => report.findings.push(finding(
                &operation_id,
                Direction::Request,
                FindingKind::BodyPresence,
                "",
                "a request body was sent to an operation that declares none".to_owned(),
            )),
            (None, None) => {}
        }

        let responses_pointer = format!("{op_pointer}/responses");
        let status = exchange.status.to_string();
        let declared_response = ["status", "default"].iter().find_map(|key| {
            let key = if *key == "status" {
                status.as_str()
            } else {
                key
            };
            op_value
                .pointer(&format!("/responses/{key}"))
                .map(|r| (r.clone(), format!("{responses_pointer}/{key}")))
        });
        let Some((response, response_pointer)) = declared_response else {
            report.findings.push(finding(
                &operation_id,
                Direction::Response,
                FindingKind::UndeclaredStatus,
                "",
                format!("status {status} is not a declared response (nor is `default`)"),
            ));
            return Ok(());
        };
        let Some(body) = &exchange.response else {
            return Ok(());
        };
        let (response, response_pointer) = self.resolve(&response, response_pointer)?;
        let schema = response
            .get("content")
            .and_then(|c| Self::json_schema_pointer(c, &format!("{response_pointer}/content")));
        match schema {
            Some(schema) => {
                report.bodies_validated += 1;
                for (kind, pointer, problem) in self.body_findings(&schema, body)? {
                    report.findings.push(finding(
                        &operation_id,
                        Direction::Response,
                        kind,
                        &pointer,
                        problem,
                    ));
                }
            }
            None => report.bodies_without_schema += 1,
        }
        Ok(())
    }
}
