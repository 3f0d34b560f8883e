//! Strict JSON for request bodies: like `serde_json::from_slice::<Value>`, except that an object holding the
//! same key twice is refused, naming the key's path (`type`, `lines[0].sku`).
//!
//! serde_json keeps the last of duplicate keys, so `{"type":"stock.teleport", …, "type":"stock.return"}` would
//! be read as a return while a sender (or a proxy, or a log) reading the first key sees something else. JSON
//! (RFC 8259 §4) leaves duplicates to the receiver; ours refuses them. serde_json's parser still does the
//! lexing, escapes, number handling and its nesting limit (128); only the building of the `Value` is ours.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// At most this many characters of an input key or value are echoed back in an error.
pub const MAX_ECHO_CHARS: usize = 64;

/// `text` as echoed in an error: at most [`MAX_ECHO_CHARS`] characters, then `…`.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text.into(),
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// An object holds this key twice; `path` names it (`lines[0].sku`; clipped to 64 characters).
    DuplicateKey { path: String },
    /// Not JSON at all (serde_json's message, which never quotes the input).
    Malformed(String),
}

/// Parses one JSON document, refusing duplicate keys at any depth.
pub fn from_slice(body: &[u8]) -> Result<Value, StrictJsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = ValueSeed {
        path: &Path::Root,
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|_| v));
    match (parsed, duplicate.into_inner()) {
        (_, Some(path)) => Err(StrictJsonError::DuplicateKey { path }),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(StrictJsonError::Malformed(e.to_string())),
    }
}

/// Where a value sits, as a chain to the root: formatted only when a duplicate is found.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{}", clip(key)),
            Path::Key(parent, key) => write!(f, "{parent}.{}", clip(key)),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct ValueSeed<'a> {
    path: &'a Path<'a>,
    /// Set to the duplicate's path; the error serde_json then carries is only a signal to stop.
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never hands over a non-finite float; `Null` is what its own `Value` would do.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
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
        let mut items = Vec::new();
        loop {
            let path = Path::Index(self.path, items.len());
            let seed = ValueSeed {
                path: &path,
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = Path::Key(self.path, &key);
            if map.contains_key(&key) {
                // Clipped as a whole too: short keys nested deep make a long path.
                *self.duplicate.borrow_mut() = Some(clip(&path.to_string()).into_owned());
                return Err(A::Error::custom("duplicate key"));
            }
            let value = access.next_value_seed(ValueSeed {
                path: &path,
                duplicate: self.duplicate,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> String {
        match from_slice(text.as_bytes()) {
            Err(StrictJsonError::DuplicateKey { path }) => path,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn same_values_as_serde_json_without_duplicates() {
        for text in [
            r#"{"a":1,"b":[true,null,-3,1.5e3,"x\u0000y"],"c":{"d":{}}}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "[]",
            r#""\ud83d\ude00""#,
        ] {
            let ours = from_slice(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn duplicates_are_named_by_path_at_any_depth() {
        assert_eq!(dup(r#"{"type":"a","x":1,"type":"b"}"#), "type");
        assert_eq!(
            dup(r#"{"lines":[{"sku":"A"},{"sku":"B","quantity":1,"sku":"C"}]}"#),
            "lines[1].sku"
        );
        assert_eq!(dup(r#"[{"a":{"b":1,"b":1}}]"#), "[0].a.b");
        // Equal values are still a duplicate: the sender's intent is unclear either way.
        assert_eq!(dup(r#"{"a":1,"a":1}"#), "a");
        // Keys equal after unescaping are the same key.
        assert_eq!(dup(r#"{"a":1,"\u0061":2}"#), "a");
    }

    #[test]
    fn a_huge_duplicate_key_or_deep_path_is_clipped() {
        let key = "k".repeat(10_000);
        let path = dup(&format!(r#"{{"{key}":1,"{key}":2}}"#));
        assert_eq!(path.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(path.ends_with('…'));
        let deep = format!(
            "{}{{\"b\":1,\"b\":2}}{}",
            "{\"a\":".repeat(100),
            "}".repeat(100)
        );
        let path = dup(&deep);
        assert_eq!(path, format!("{}…", &"a.".repeat(100)[..MAX_ECHO_CHARS]));
    }

    #[test]
    fn malformed_input_is_refused_like_serde_json() {
        for text in [
            "{",
            r#"{"a":1}x"#,
            r#""\ud800""#,
            "[1,]",
            "",
            &"[".repeat(200),
        ] {
            assert!(
                matches!(
                    from_slice(text.as_bytes()),
                    Err(StrictJsonError::Malformed(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("abc"), "abc");
        let s = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(clip(&s), s);
        let longer = "é".repeat(MAX_ECHO_CHARS + 1);
        assert_eq!(clip(&longer), format!("{s}…"));
    }
}
