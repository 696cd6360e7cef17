//! [`Fields`]: one state's (or the definition's) JSON object read field by field, strictly:
//! every field it does not know is an error naming it.

use super::*;

/// Typed access to one JSON object of the definition, with its location for error messages.
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub(super) loc: String,
}

impl<'a> Fields<'a> {
    pub(super) fn new(value: &'a Value, loc: String) -> Result<Self, DefinitionError> {
        match value.as_object() {
            Some(map) => Ok(Self { map, loc }),
            None => Err(DefinitionError::invalid(loc, "must be a JSON object")),
        }
    }

    pub(super) fn err(&self, message: impl Into<String>) -> DefinitionError {
        DefinitionError::invalid(self.loc.clone(), message)
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Rejects any field outside `allowed`, naming it: an ASL feature this interpreter leaves out
    /// is [`DefinitionError::Unsupported`], anything else (a typo) is invalid and the message
    /// lists what is supported here.
    pub(super) fn allow_only(&self, allowed: &[&str]) -> Result<(), DefinitionError> {
        let Some(key) = self.map.keys().find(|key| !allowed.contains(&key.as_str())) else {
            return Ok(());
        };
        Err(
            match UNSUPPORTED_FIELDS.iter().find(|(name, _)| name == key) {
                Some((_, feature)) => DefinitionError::Unsupported {
                    location: self.loc.clone(),
                    feature: format!("field \"{key}\" ({feature})"),
                },
                None => self.err(format!(
                    "field \"{key}\" is not supported here (supported: {})",
                    allowed.join(", ")
                )),
            },
        )
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<&'a str>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(format!("{key} must be a string, got {other}"))),
        }
    }

    pub(super) fn required_string(&self, key: &str) -> Result<&'a str, DefinitionError> {
        self.string(key)?
            .ok_or_else(|| self.err(format!("{key} is required")))
    }

    pub(super) fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, DefinitionError> {
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

    /// A path field. An intrinsic function call in its place is unsupported, and named.
    pub(super) fn path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        if let Some(function) = intrinsic_name(text) {
            return Err(unsupported_intrinsic(
                format!("{} {key}", self.loc),
                function,
            ));
        }
        JsonPath::parse(text)
            .map(Some)
            .map_err(|e| self.err(format!("{key}: {e}")))
    }

    /// `TimeoutSeconds`-style pairs: a positive integer in `literal`, or a path in `path` that
    /// must select one when the state runs; not both.
    pub(super) fn seconds(
        &self,
        literal: &str,
        path: &str,
    ) -> Result<Option<Seconds>, DefinitionError> {
        match (self.has(literal), self.has(path)) {
            (true, true) => Err(self.err(format!("{literal} and {path} are mutually exclusive"))),
            (true, false) => Ok(self.integer(literal, 1, MAX_SECONDS)?.map(Seconds::Fixed)),
            (false, true) => Ok(self.path(path)?.map(Seconds::Path)),
            (false, false) => Ok(None),
        }
    }

    /// InputPath/OutputPath/ResultPath: absent means `$`, `null` means "none".
    pub(super) fn nullable_path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        match self.get(key) {
            None => Ok(Some(JsonPath::root())),
            Some(Value::Null) => Ok(None),
            Some(_) => self.path(key),
        }
    }

    pub(super) fn result_path(&self, key: &str) -> Result<Option<JsonPath>, DefinitionError> {
        let path = self.nullable_path(key)?;
        if path.as_ref().is_some_and(JsonPath::is_context) {
            return Err(self.err(format!("{key} cannot write into the context object ($$)")));
        }
        Ok(path)
    }

    pub(super) fn io(&self) -> Result<Io, DefinitionError> {
        Ok(Io {
            input_path: self.nullable_path("InputPath")?,
            output_path: self.nullable_path("OutputPath")?,
        })
    }

    pub(super) fn template(&self, key: &str) -> Result<Option<Template>, DefinitionError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        if !value.is_object() {
            return Err(self.err(format!("{key} must be a JSON object")));
        }
        Template::compile(value).map(Some).map_err(|e| match e {
            TemplateError::Invalid(message) => self.err(format!("{key}: {message}")),
            TemplateError::UnsupportedIntrinsic { field, function } => {
                unsupported_intrinsic(format!("{} {key} field \"{field}\"", self.loc), &function)
            }
        })
    }

    /// Exactly one of `Next` and `End: true`.
    pub(super) fn transition(&self) -> Result<Transition, DefinitionError> {
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

    pub(super) fn error_equals(&self) -> Result<Vec<String>, DefinitionError> {
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
