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
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ValidationError::new("$", format!("body is not valid UTF-8 ({e})")))?;
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match duplicate.into_inner() {
            Some(path) => Err(ValidationError::new(
                path,
                "is given more than once (duplicate key); give each key once",
            )),
            None => Err(ValidationError::new(
                "$",
                format!("body is not valid JSON ({e})"),
            )),
        },
    }
}

struct Strict<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
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
        while let Some(v) = seq.next_element_seed(Strict {
            path: format!("{}[{i}]", self.path),
            duplicate: self.duplicate,
        })? {
            out.push(v);
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
            let value = map.next_value_seed(self.child(&key))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_bom_is_named() {
        let e = parse(b"\xEF\xBB\xBF{}").unwrap_err();
        assert!(e.rule.contains("byte order mark"), "{e}");
    }
}
