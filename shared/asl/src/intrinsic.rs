//! Intrinsic functions (`States.Format(...)` and friends) used as the value of a `.$` field.
//! Calls are parsed when the definition loads (unknown functions, wrong arity and bad literals
//! are definition errors) and evaluated against the state input and context object at run time.
//!
//! Supported: Format, StringToJson, JsonToString, Array, ArrayPartition, ArrayContains,
//! ArrayRange, ArrayGetItem, ArrayLength, ArrayUnique, Base64Encode, Base64Decode, JsonMerge,
//! MathRandom, MathAdd, StringSplit, UUID. Not supported: States.Hash (it would need hash crates
//! this library does not otherwise depend on).

use crate::error::StateError;
use crate::path::{kind_of, JsonPath};
use rand::{Rng, SeedableRng};
use serde_json::{Number, Value};

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A quoted string, kept exactly as written between the quotes (escapes unresolved) because
    /// `States.Format` must tell an escaped `\{` from a placeholder `{`.
    Str(String),
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    Path(JsonPath),
    Call(Box<Call>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "States.Format" => Self::Format,
            "States.StringToJson" => Self::StringToJson,
            "States.JsonToString" => Self::JsonToString,
            "States.Array" => Self::Array,
            "States.ArrayPartition" => Self::ArrayPartition,
            "States.ArrayContains" => Self::ArrayContains,
            "States.ArrayRange" => Self::ArrayRange,
            "States.ArrayGetItem" => Self::ArrayGetItem,
            "States.ArrayLength" => Self::ArrayLength,
            "States.ArrayUnique" => Self::ArrayUnique,
            "States.Base64Encode" => Self::Base64Encode,
            "States.Base64Decode" => Self::Base64Decode,
            "States.JsonMerge" => Self::JsonMerge,
            "States.MathRandom" => Self::MathRandom,
            "States.MathAdd" => Self::MathAdd,
            "States.StringSplit" => Self::StringSplit,
            "States.UUID" => Self::Uuid,
            _ => return None,
        })
    }

    /// Accepted argument counts (inclusive range).
    fn arity(self) -> (usize, usize) {
        match self {
            Self::Format => (1, usize::MAX),
            Self::Array => (0, usize::MAX),
            Self::StringToJson
            | Self::JsonToString
            | Self::ArrayLength
            | Self::ArrayUnique
            | Self::Base64Encode
            | Self::Base64Decode => (1, 1),
            Self::ArrayPartition
            | Self::ArrayContains
            | Self::ArrayGetItem
            | Self::MathAdd
            | Self::StringSplit => (2, 2),
            Self::ArrayRange | Self::JsonMerge => (3, 3),
            Self::MathRandom => (2, 3),
            Self::Uuid => (0, 0),
        }
    }
}

/// Longest output `States.ArrayRange` may produce, as in Step Functions.
const MAX_RANGE_ITEMS: usize = 1000;

impl Call {
    /// Parses a whole expression such as `States.Format('{}', $.a)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parser = Parser { text, pos: 0 };
        let call = parser.call()?;
        parser.skip_ws();
        if parser.pos != text.len() {
            return Err(format!(
                "unexpected \"{}\" after the intrinsic function call",
                &text[parser.pos..]
            ));
        }
        Ok(call)
    }

    /// Evaluates the call. Paths that select nothing raise `States.Runtime` (as a missing
    /// Parameters path does); bad argument values raise `States.IntrinsicFailure`.
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, StateError> {
        let args = self
            .args
            .iter()
            .map(|arg| arg.evaluate(input, context))
            .collect::<Result<Vec<_>, _>>()?;
        match self.func {
            Func::Format => format(&self.args[0], &args),
            Func::StringToJson => {
                let s = expect_str(&args[0], "States.StringToJson")?;
                serde_json::from_str(s).map_err(|e| {
                    StateError::intrinsic(format!("States.StringToJson: invalid JSON: {e}"))
                })
            }
            Func::JsonToString => Ok(Value::String(args[0].to_string())),
            Func::Array => Ok(Value::Array(args)),
            Func::ArrayPartition => {
                let items = expect_array(&args[0], "States.ArrayPartition")?;
                let size = expect_int(&args[1], "States.ArrayPartition")?;
                if size <= 0 {
                    return Err(StateError::intrinsic(
                        "States.ArrayPartition: chunk size must be a positive integer",
                    ));
                }
                Ok(Value::Array(
                    items
                        .chunks(size as usize)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            Func::ArrayContains => {
                let items = expect_array(&args[0], "States.ArrayContains")?;
                Ok(Value::Bool(items.contains(&args[1])))
            }
            Func::ArrayRange => array_range(&args),
            Func::ArrayGetItem => {
                let items = expect_array(&args[0], "States.ArrayGetItem")?;
                let index = expect_int(&args[1], "States.ArrayGetItem")?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        StateError::intrinsic(format!(
                            "States.ArrayGetItem: index {index} is out of bounds for an array of \
                             {} items",
                            items.len()
                        ))
                    })
            }
            Func::ArrayLength => Ok(Value::from(
                expect_array(&args[0], "States.ArrayLength")?.len(),
            )),
            Func::ArrayUnique => {
                let items = expect_array(&args[0], "States.ArrayUnique")?;
                let mut unique: Vec<Value> = Vec::new();
                for item in items {
                    if !unique.contains(item) {
                        unique.push(item.clone());
                    }
                }
                Ok(Value::Array(unique))
            }
            Func::Base64Encode => Ok(Value::String(base64_encode(
                expect_str(&args[0], "States.Base64Encode")?.as_bytes(),
            ))),
            Func::Base64Decode => {
                let s = expect_str(&args[0], "States.Base64Decode")?;
                let bytes = base64_decode(s).ok_or_else(|| {
                    StateError::intrinsic("States.Base64Decode: input is not valid base64")
                })?;
                String::from_utf8(bytes).map(Value::String).map_err(|_| {
                    StateError::intrinsic("States.Base64Decode: decoded bytes are not UTF-8")
                })
            }
            Func::JsonMerge => json_merge(&args),
            Func::MathRandom => math_random(&args),
            Func::MathAdd => math_add(&args[0], &args[1]),
            Func::StringSplit => {
                let s = expect_str(&args[0], "States.StringSplit")?;
                let delimiters = expect_str(&args[1], "States.StringSplit")?;
                // Every character of the second argument is a delimiter and empty pieces are
                // dropped: `("a.b+c", ".+")` gives `["a","b","c"]`.
                Ok(Value::Array(
                    s.split(|c| delimiters.contains(c))
                        .filter(|piece| !piece.is_empty())
                        .map(|piece| Value::String(piece.to_string()))
                        .collect(),
                ))
            }
            Func::Uuid => Ok(Value::String(uuid_v4())),
        }
    }
}

impl Arg {
    fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, StateError> {
        match self {
            Arg::Str(raw) => Ok(Value::String(unescape(raw))),
            Arg::Literal(v) => Ok(v.clone()),
            Arg::Path(path) => path.select(input, context).cloned().ok_or_else(|| {
                StateError::runtime(format!(
                    "The JSONPath '{path}' in an intrinsic function argument could not be found \
                     in the input '{input}'"
                ))
            }),
            Arg::Call(call) => call.evaluate(input, context),
        }
    }
}

/// Resolves `\'`, `\{`, `\}` and `\\` to the character after the backslash.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Counts `{}` placeholders in a Format template, skipping escaped braces.
fn count_placeholders(template: &str) -> usize {
    let mut count = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                count += 1;
            }
            _ => {}
        }
    }
    count
}

fn format(template_arg: &Arg, args: &[Value]) -> Result<Value, StateError> {
    // A literal template keeps its escapes so `\{}` prints braces; a template read from a path has
    // no escapes to honour.
    let template = match template_arg {
        Arg::Str(raw) => raw.clone(),
        _ => expect_str(&args[0], "States.Format")?.to_string(),
    };
    let values = &args[1..];
    if count_placeholders(&template) != values.len() {
        return Err(StateError::intrinsic(format!(
            "States.Format: the template has {} placeholders but {} arguments were given",
            count_placeholders(&template),
            values.len()
        )));
    }
    let mut out = String::new();
    let mut next = values.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match next.next() {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        out.push_str(&v.to_string())
                    }
                    Some(v) => {
                        return Err(StateError::intrinsic(format!(
                            "States.Format: arguments must be strings, numbers, booleans or \
                             null, got {}",
                            kind_of(v)
                        )))
                    }
                    None => unreachable!("placeholder count checked above"),
                }
            }
            c => out.push(c),
        }
    }
    Ok(Value::String(out))
}

fn expect_str<'a>(v: &'a Value, func: &str) -> Result<&'a str, StateError> {
    v.as_str().ok_or_else(|| {
        StateError::intrinsic(format!("{func}: expected a string, got {}", kind_of(v)))
    })
}

fn expect_array<'a>(v: &'a Value, func: &str) -> Result<&'a Vec<Value>, StateError> {
    v.as_array().ok_or_else(|| {
        StateError::intrinsic(format!("{func}: expected an array, got {}", kind_of(v)))
    })
}

/// Accepts integers, and floats with no fractional part (JSON has one number type).
fn expect_int(v: &Value, func: &str) -> Result<i64, StateError> {
    let err = || StateError::intrinsic(format!("{func}: expected an integer, got {v}"));
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(err),
        _ => Err(err()),
    }
}

fn array_range(args: &[Value]) -> Result<Value, StateError> {
    let start = expect_int(&args[0], "States.ArrayRange")?;
    let end = expect_int(&args[1], "States.ArrayRange")?;
    let step = expect_int(&args[2], "States.ArrayRange")?;
    if step == 0 {
        return Err(StateError::intrinsic(
            "States.ArrayRange: step must not be 0",
        ));
    }
    let mut items = Vec::new();
    let mut i = start;
    while (step > 0 && i <= end) || (step < 0 && i >= end) {
        if items.len() == MAX_RANGE_ITEMS {
            return Err(StateError::intrinsic(format!(
                "States.ArrayRange: the range has more than {MAX_RANGE_ITEMS} items"
            )));
        }
        items.push(Value::from(i));
        i = match i.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(Value::Array(items))
}

fn json_merge(args: &[Value]) -> Result<Value, StateError> {
    let (Some(left), Some(right)) = (args[0].as_object(), args[1].as_object()) else {
        return Err(StateError::intrinsic(
            "States.JsonMerge: both arguments must be objects",
        ));
    };
    if args[2] != Value::Bool(false) {
        // Step Functions only implements the shallow merge.
        return Err(StateError::intrinsic(
            "States.JsonMerge: the third argument must be false (deep merge is not supported)",
        ));
    }
    let mut merged = left.clone();
    for (k, v) in right {
        merged.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(merged))
}

fn math_random(args: &[Value]) -> Result<Value, StateError> {
    let start = expect_int(&args[0], "States.MathRandom")?;
    let end = expect_int(&args[1], "States.MathRandom")?;
    if end <= start {
        return Err(StateError::intrinsic(
            "States.MathRandom: end must be greater than start",
        ));
    }
    // Start inclusive, end exclusive; a seed makes the draw repeatable.
    let value = match args.get(2) {
        Some(seed) => {
            let seed = expect_int(seed, "States.MathRandom")?;
            rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
        }
        None => rand::rng().random_range(start..end),
    };
    Ok(Value::from(value))
}

fn math_add(a: &Value, b: &Value) -> Result<Value, StateError> {
    let (Value::Number(x), Value::Number(y)) = (a, b) else {
        return Err(StateError::intrinsic(format!(
            "States.MathAdd: both arguments must be numbers, got {a} and {b}"
        )));
    };
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x
            .checked_add(y)
            .map(Value::from)
            .ok_or_else(|| StateError::intrinsic("States.MathAdd: integer overflow"));
    }
    let sum = x.as_f64().unwrap_or(f64::NAN) + y.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum)
        .map(Value::Number)
        .ok_or_else(|| StateError::intrinsic("States.MathAdd: result is not a finite number"))
}

fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &chunk[..4 - padding] {
            let v = BASE64.iter().position(|&c| c == b)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

/// A hand-written recursive-descent parser: the grammar is tiny and this keeps the crate free of
/// parser dependencies.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn call(&mut self) -> Result<Call, String> {
        self.skip_ws();
        let name_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..name_len];
        let func = Func::from_name(name).ok_or_else(|| {
            if name == "States.Hash" {
                "States.Hash is unsupported by the local runner".to_string()
            } else {
                format!("\"{name}\" is not a known intrinsic function")
            }
        })?;
        self.pos += name_len;
        self.skip_ws();
        if !self.rest().starts_with('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.rest().starts_with(')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.skip_ws();
                if self.rest().starts_with(',') {
                    self.pos += 1;
                } else if self.rest().starts_with(')') {
                    self.pos += 1;
                    break;
                } else {
                    return Err(format!("expected ',' or ')' in the arguments of {name}"));
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            return Err(format!(
                "{name} takes {} arguments, {} given",
                if min == max {
                    min.to_string()
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                },
                args.len()
            ));
        }
        if func == Func::Format {
            if let Arg::Str(template) = &args[0] {
                let wanted = count_placeholders(template);
                if wanted != args.len() - 1 {
                    return Err(format!(
                        "States.Format template has {wanted} placeholders but {} arguments \
                         follow it",
                        args.len() - 1
                    ));
                }
            }
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with('\'') {
            return self.string();
        }
        if rest.starts_with('$') {
            let len = path_len(rest);
            let path = JsonPath::parse(rest[..len].trim_end())?;
            self.pos += len;
            return Ok(Arg::Path(path));
        }
        if rest.starts_with("States.") {
            return Ok(Arg::Call(Box::new(self.call()?)));
        }
        let len = rest
            .find(|c: char| c == ',' || c == ')' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..len];
        let value = match token {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ => match serde_json::from_str::<Value>(token) {
                Ok(v @ Value::Number(_)) => v,
                _ => {
                    return Err(format!(
                        "\"{token}\" is not a valid intrinsic function argument"
                    ))
                }
            },
        };
        self.pos += len;
        Ok(Arg::Literal(value))
    }

    fn string(&mut self) -> Result<Arg, String> {
        // Skip the opening quote; the raw text up to the closing unescaped quote is kept.
        let body = &self.rest()[1..];
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '\'' {
                let raw = body[..i].to_string();
                self.pos += 1 + i + 1;
                return Ok(Arg::Str(raw));
            }
        }
        Err("unterminated string literal".into())
    }
}

/// Length of a path argument: up to the first `,` or `)` that is not inside brackets or quotes.
fn path_len(text: &str) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' | ')' if depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, input: Value) -> Result<Value, StateError> {
        Call::parse(expr).unwrap().evaluate(&input, &json!({}))
    }

    #[test]
    fn format_with_escapes_and_nested_calls() {
        let out = eval(
            r"States.Format('\{{}\} {} {}', $.name, States.MathAdd($.n, 1), States.JsonToString($.o))",
            json!({"name": "x", "n": 41, "o": {"a": [1]}}),
        )
        .unwrap();
        assert_eq!(out, json!(r#"{x} 42 {"a":[1]}"#));
    }

    #[test]
    fn arity_and_placeholder_count_checked_at_parse() {
        assert!(Call::parse("States.Format('{} {}', $.a)").is_err());
        assert!(Call::parse("States.MathAdd(1)").is_err());
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Hash($.a, 'SHA-1')").is_err());
    }

    #[test]
    fn array_functions() {
        assert_eq!(
            eval("States.ArrayRange(1, 9, 4)", json!({})).unwrap(),
            json!([1, 5, 9])
        );
        assert_eq!(
            eval("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3]})).unwrap(),
            json!([[1, 2], [3]])
        );
        assert_eq!(
            eval(
                "States.ArrayGetItem(States.StringSplit('a.b+c', '.+'), 2)",
                json!({})
            )
            .unwrap(),
            json!("c")
        );
        assert_eq!(
            eval(
                "States.ArrayUnique(States.Array(1, 1, 'x', null))",
                json!({})
            )
            .unwrap(),
            json!([1, "x", null])
        );
        assert_eq!(
            eval("States.ArrayGetItem($.a, 5)", json!({"a": []}))
                .unwrap_err()
                .error,
            "States.IntrinsicFailure"
        );
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&encoded).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn missing_path_is_runtime() {
        assert_eq!(
            eval("States.JsonToString($.missing)", json!({}))
                .unwrap_err()
                .error,
            "States.Runtime"
        );
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
