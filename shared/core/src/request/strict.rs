//! Strict JSON: a document is parsed into a [`serde_json::Value`] the usual way, except that an
//! object naming the same key twice is an error naming that key (serde_json keeps the last one
//! silently, so a duplicate `vendor` would be judged as the wrong vendor), and a UTF-8 byte order
//! mark gets its own message instead of "expected value".

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::ValidationError;

/// Parses `text` as JSON, refusing duplicate keys (the error names the key's path).
pub fn parse(bytes: &[u8]) -> Result<Value, ValidationError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ValidationError::new(
            "$",
            "starts with a UTF-8 byte order mark (BOM, bytes EF BB BF); save the file as UTF-8 without a BOM",
        ));
    }
    if looks_like_utf16(bytes) {
        return Err(ValidationError::new(
            "$",
            "is UTF-16 text (a byte order mark FF FE / FE FF, or a zero byte beside each character); save the file as UTF-8",
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| {
            ValidationError::new(
                "$",
                format!(
                    "body is not valid UTF-8 ({e}); save the file as UTF-8 (it may be in Latin-1 or Windows-1252)"
                ),
            )
        })?;
    let duplicate = RefCell::new(None);
    let failed_at = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        path: String::new(),
        duplicate: &duplicate,
        failed_at: &failed_at,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match (duplicate.into_inner(), failed_at.into_inner()) {
            (Some(path), _) => Err(ValidationError::new(
                path,
                "is given more than once (duplicate key); give each key once",
            )),
            // A value that broke inside the document (a number out of range such as `1e400`, a
            // bad escape): named at its own field.
            (None, Some(path)) => Err(ValidationError::new(
                path,
                format!("is not valid JSON ({e})"),
            )),
            (None, None) => Err(ValidationError::new(
                "$",
                format!("body is not valid JSON ({e})"),
            )),
        },
    }
}

/// The text of the member at `path` (object keys from the root) of the JSON document `text`,
/// exactly as written: an envelope's request (an EventBridge `detail`, a Scheduler `request`, a
/// dead letter's payload) read with the same strict, exact-number parse as any request, which a
/// `serde_json::Value` of the envelope could no longer give (it has rounded the numbers).
pub fn raw_member<'a>(text: &'a str, path: &[&str]) -> Option<&'a str> {
    use serde_json::value::RawValue;
    let mut current: &'a str = text;
    for key in path {
        let members: std::collections::HashMap<String, &'a RawValue> =
            serde_json::from_str(current).ok()?;
        current = members.get(*key)?.get();
    }
    Some(current)
}

/// The first key that the JSON object `text` names twice at its top level (`None` when there is
/// none, or `text` is no object). An envelope (an EventBridge event, a Scheduler wrapper) is read
/// member by member, which keeps the last of two `detail`s silently; its caller refuses instead.
pub fn duplicate_top_level_key(text: &str) -> Option<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut duplicate = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<de::IgnoredAny>()?;
                if !seen.insert(key.clone()) && duplicate.is_none() {
                    duplicate = Some(key);
                }
            }
            Ok(duplicate)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_map(&mut de, Keys)
        .ok()
        .flatten()
}

/// Whether `bytes` are UTF-16 (as Windows editors and PowerShell's `>` write JSON): a UTF-16
/// byte order mark, or ASCII text with a zero byte beside each character.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let head = &bytes[..bytes.len().min(64)];
    head.len() >= 4
        && (head.iter().step_by(2).all(|b| *b == 0)
            || head.iter().skip(1).step_by(2).all(|b| *b == 0))
}

struct Strict<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
    /// The innermost value whose parse failed (the first one recorded).
    failed_at: &'a RefCell<Option<String>>,
}

impl Strict<'_> {
    fn child(&self, name: &str) -> Self {
        Strict {
            path: if self.path.is_empty() {
                name.to_owned()
            } else {
                format!("{}.{name}", self.path)
            },
            duplicate: self.duplicate,
            failed_at: self.failed_at,
        }
    }

    /// Records `path` as where the parse failed, unless an inner value already was.
    fn failed(&self, path: &str) {
        let mut at = self.failed_at.borrow_mut();
        if at.is_none() && !path.is_empty() {
            *at = Some(path.to_owned());
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            let next = seq.next_element_seed(Strict {
                path: path.clone(),
                duplicate: self.duplicate,
                failed_at: self.failed_at,
            });
            match next {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(e) => {
                    self.failed(&path);
                    return Err(e);
                }
            }
            i += 1;
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let path = self.child(&key).path;
                let message = format!("duplicate key `{path}`");
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(message));
            }
            let child = self.child(&key);
            let path = child.path.clone();
            let value = map
                .next_value_seed(child)
                .inspect_err(|_| self.failed(&path))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Keeps parameter values exactly as written. A JSON number only survives parsing as an `f64`,
/// `u64` or `i64`, so `123456789012345678901234567890`, `1e2` and `-0` would reach the vendor as
/// `1.2345678901234568e+29`, `100.0` and `-0.0`. The document's own text of each value decides:
///
/// - AMC `parameter_values` are strings on the wire, so a number becomes the string of exactly
///   the digits written (`1e2` is sent as `"1e2"`);
/// - CARTO `query_parameters` are typed JSON, so a number (at any depth) must be one that parses
///   back to the same text; otherwise it is refused, naming the form it would have become.
///
/// Only what `parse` accepted reaches here, and shape errors are left to validation.
pub fn exact_parameters(bytes: &[u8], value: &mut Value) -> Result<(), ValidationError> {
    use serde_json::value::RawValue;
    let Ok(raw) = serde_json::from_slice::<std::collections::BTreeMap<String, &RawValue>>(bytes)
    else {
        return Ok(());
    };
    let vendor = value
        .get("vendor")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let field = match vendor.as_str() {
        "amc" => "parameter_values",
        "carto" => "query_parameters",
        _ => return Ok(()),
    };
    let Some(params) = raw.get(field) else {
        return Ok(());
    };
    let Ok(params) =
        serde_json::from_str::<std::collections::BTreeMap<String, &RawValue>>(params.get())
    else {
        return Ok(());
    };
    for (name, text) in params {
        let path = format!("{field}.{name}");
        if vendor == "amc" {
            let text = text.get().trim();
            if is_number(text) {
                if let Some(slot) = value.get_mut(field).and_then(|m| m.get_mut(&name)) {
                    *slot = Value::String(text.to_owned());
                }
            }
        } else {
            check_exact(&path, text)?;
        }
    }
    Ok(())
}

fn is_number(text: &str) -> bool {
    text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// Every number in `raw` (at any depth) reads back as the text written.
fn check_exact(path: &str, raw: &serde_json::value::RawValue) -> Result<(), ValidationError> {
    use serde_json::value::RawValue;
    let text = raw.get().trim();
    if text.starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
            for (i, item) in items.into_iter().enumerate() {
                check_exact(&format!("{path}[{i}]"), item)?;
            }
        }
    } else if text.starts_with('{') {
        if let Ok(items) =
            serde_json::from_str::<std::collections::BTreeMap<String, &RawValue>>(text)
        {
            for (k, item) in items {
                check_exact(&format!("{path}.{k}"), item)?;
            }
        }
    } else if is_number(text) {
        let parsed: Value = serde_json::from_str(text)
            .map_err(|e| ValidationError::new(path, format!("is not a JSON number ({e})")))?;
        let became = parsed.to_string();
        if became != text {
            return Err(ValidationError::new(
                path,
                format!(
                    "the number `{text}` cannot be sent exactly (it would reach the vendor as `{became}`); \
                     write `{became}` if that is meant, or pass the value as a string"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_top_level_key_given_twice_is_named() {
        let twice = r#"{"detail": {"a": 1}, "time": "t", "detail": {"a": 2}}"#;
        assert_eq!(duplicate_top_level_key(twice).as_deref(), Some("detail"));
        // Only the top level: a nested duplicate is the nested document's parse to refuse.
        assert_eq!(
            duplicate_top_level_key(r#"{"detail": {"a": 1, "a": 2}}"#),
            None
        );
        assert_eq!(duplicate_top_level_key("[1, 1]"), None);
        assert_eq!(duplicate_top_level_key("not json"), None);
    }
    use super::*;

    #[test]
    fn amc_numbers_become_their_exact_text() {
        let doc = br#"{"vendor":"amc","parameter_values":{"big":123456789012345678901234567890,"e":1e2,"z":-0,"s":"x","b":true}}"#;
        let mut v = parse(doc).unwrap();
        exact_parameters(doc, &mut v).unwrap();
        assert_eq!(
            v["parameter_values"],
            serde_json::json!({"big":"123456789012345678901234567890","e":"1e2","z":"-0","s":"x","b":true})
        );
    }

    #[test]
    fn carto_numbers_must_read_back_exactly() {
        for bad in [
            "123456789012345678901234567890",
            "1e2",
            "-0",
            "1.50",
            "[1, 1e0]",
            "{\"a\": 1E3}",
        ] {
            let doc = format!(r#"{{"vendor":"carto","query_parameters":{{"p":{bad}}}}}"#);
            let mut v = parse(doc.as_bytes()).unwrap();
            let e = exact_parameters(doc.as_bytes(), &mut v).unwrap_err();
            assert!(e.field.starts_with("query_parameters.p"), "{bad}: {e}");
            assert!(e.rule.contains("cannot be sent exactly"), "{bad}: {e}");
        }
        for good in [
            "2",
            "-7",
            "0.5",
            "18446744073709551615",
            "[1, 2]",
            "\"1e2\"",
        ] {
            let doc = format!(r#"{{"vendor":"carto","query_parameters":{{"p":{good}}}}}"#);
            let mut v = parse(doc.as_bytes()).unwrap();
            exact_parameters(doc.as_bytes(), &mut v).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn duplicates_are_named_at_any_depth() {
        let e = parse(br#"{"vendor":"amc","vendor":"carto"}"#).unwrap_err();
        assert_eq!(e.field, "vendor");
        assert!(e.rule.contains("duplicate key"), "{e}");
        let e = parse(br#"{"a":{"b":1,"c":[{"d":1,"d":2}]}}"#).unwrap_err();
        assert_eq!(e.field, "a.c[0].d");
    }

    #[test]
    fn ordinary_documents_parse_as_serde_json_does() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(parse(b"{} x").unwrap_err().rule.contains("not valid JSON"));
    }

    #[test]
    fn a_number_out_of_range_is_named_at_its_field() {
        let e = parse(br#"{"vendor":"carto","query_parameters":{"p":[1,1e400]}}"#).unwrap_err();
        assert_eq!(e.field, "query_parameters.p[1]", "{e}");
        let e = parse(br#"{"deadline_seconds":-1e999}"#).unwrap_err();
        assert_eq!(e.field, "deadline_seconds", "{e}");
        assert_eq!(parse(b"{").unwrap_err().field, "$");
    }

    #[test]
    fn a_member_is_read_as_written() {
        let text = r#"{"detail-type":"x","detail":{"vendor":"amc","p":{"n":1E2, "z": -0}}}"#;
        assert_eq!(
            raw_member(text, &["detail"]),
            Some(r#"{"vendor":"amc","p":{"n":1E2, "z": -0}}"#)
        );
        assert_eq!(raw_member(text, &["detail", "p", "n"]), Some("1E2"));
        assert_eq!(raw_member(text, &["missing"]), None);
        assert_eq!(raw_member("[1]", &["a"]), None);
    }

    #[test]
    fn utf16_gets_a_hint() {
        let utf16: Vec<u8> = "{\"vendor\":\"amc\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for doc in [utf16.clone(), [&[0xFF, 0xFE][..], &utf16].concat()] {
            let e = parse(&doc).unwrap_err();
            assert!(e.rule.contains("UTF-16"), "{e}");
        }
    }

    #[test]
    fn a_bom_is_named() {
        let e = parse(b"\xEF\xBB\xBF{}").unwrap_err();
        assert!(e.rule.contains("byte order mark"), "{e}");
    }
}
