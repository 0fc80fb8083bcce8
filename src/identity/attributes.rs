//! `key=value` output of identity and inventory scripts, and the attribute set it becomes.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Attributes in key order, each with one or more values (a repeated key keeps every value,
/// in order). Serialises as a JSON object: one value as a string, several as an array of
/// strings, keys sorted bytewise (as Go sorts map keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, Vec<String>>);

impl Attributes {
    pub fn new() -> Self {
        Attributes::default()
    }

    /// Adds a value; a key seen before becomes (or stays) a list.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.entry(key.into()).or_default().push(value.into());
    }

    /// Adds every value of `other` after this set's own (as the official client merges
    /// inventory scripts: repeated keys become arrays).
    pub fn merge(&mut self, other: Attributes) {
        for (k, values) in other.0 {
            self.0.entry(k).or_default().extend(values);
        }
    }

    /// The values of `key`, in the order they were added.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// Every key with its values, keys sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As a JSON object (keys sorted): one value as a string, several as an array.
    pub fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.iter()
            .map(|(k, values)| (k.to_string(), json_value(values)))
            .collect()
    }

    /// As inventory attributes for the device API (one value a string, several an array).
    pub fn to_inventory(&self) -> Vec<mender_api::inventory::Attribute> {
        self.iter()
            .map(|(k, values)| {
                let value = match values {
                    [one] => mender_api::inventory::AttributeValue::String(one.clone()),
                    many => mender_api::inventory::AttributeValue::Strings(many.to_vec()),
                };
                mender_api::inventory::Attribute {
                    name: k.to_string(),
                    value,
                    description: None,
                }
            })
            .collect()
    }
}

fn json_value(values: &[String]) -> serde_json::Value {
    match values {
        [one] => serde_json::Value::String(one.clone()),
        many => serde_json::Value::Array(
            many.iter()
                .map(|v| serde_json::Value::String(v.clone()))
                .collect(),
        ),
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, values) in &self.0 {
            match values.as_slice() {
                [one] => map.serialize_entry(k, one)?,
                many => map.serialize_entry(k, many)?,
            }
        }
        map.end()
    }
}

/// A line of script output that is not `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: no '=' in {text:?}")]
    NoEquals { line: usize, text: String },
    #[error("line {line}: empty key in {text:?}")]
    EmptyKey { line: usize, text: String },
}

/// Parses script output: one `key=value` per line, split at the first `=` (the value may
/// contain more), blank lines skipped, a trailing `\r` dropped; keys and values are
/// otherwise taken as they are (no trimming, as the official clients do). A line without `=`
/// or with an empty key is an error naming the line (1-based) and showing it (cut at 100
/// characters).
pub fn parse_key_values(text: &str) -> Result<Attributes, ParseError> {
    let mut attrs = Attributes::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let shown = || Shown(line).to_string();
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::NoEquals {
                line: i + 1,
                text: shown(),
            });
        };
        if key.is_empty() {
            return Err(ParseError::EmptyKey {
                line: i + 1,
                text: shown(),
            });
        }
        attrs.push(key, value);
    }
    Ok(attrs)
}

/// A line cut for messages.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 100;
        match self.0.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{}…", &self.0[..cut]),
            None => f.write_str(self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_repeats() {
        let a = parse_key_values(
            "mac=02:00:00:00:00:01\n\nserial=SN1\r\nserial=SN2\nurl=a=b\nempty=\n  \n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.get("mac"), Some(&["02:00:00:00:00:01".to_string()][..]));
        assert_eq!(
            a.get("serial"),
            Some(&["SN1".to_string(), "SN2".to_string()][..])
        );
        assert_eq!(a.get("url"), Some(&["a=b".to_string()][..]));
        assert_eq!(a.get("empty"), Some(&[String::new()][..]));
        assert_eq!(a.len(), 4);
        assert!(parse_key_values("").is_ok_and(|a| a.is_empty()));
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            parse_key_values("a=1\nnot a pair\n").map_err(|e| e.to_string()),
            Err("line 2: no '=' in \"not a pair\"".to_string())
        );
        assert_eq!(
            parse_key_values("\n=x").map_err(|e| e.to_string()),
            Err("line 2: empty key in \"=x\"".to_string())
        );
        let long = "x".repeat(300);
        let err = parse_key_values(&long)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.ends_with("…\"") && err.len() < 130, "{err}");
    }

    #[test]
    fn serialises_single_values_as_strings_and_repeats_as_arrays() {
        let a = parse_key_values("serial=SN1\nmac=02:00:00:00:00:01\nserial=SN2\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&a).ok().as_deref(),
            Some(r#"{"mac":"02:00:00:00:00:01","serial":["SN1","SN2"]}"#)
        );
        assert_eq!(
            serde_json::Value::Object(a.to_json_map()).to_string(),
            r#"{"mac":"02:00:00:00:00:01","serial":["SN1","SN2"]}"#
        );
        let inv = a.to_inventory();
        assert_eq!(
            serde_json::to_string(&inv).ok().as_deref(),
            Some(
                r#"[{"name":"mac","value":"02:00:00:00:00:01"},{"name":"serial","value":["SN1","SN2"]}]"#
            )
        );
    }

    #[test]
    fn merge_appends() {
        let mut a = parse_key_values("k=1\nx=y").unwrap_or_default();
        a.merge(parse_key_values("k=2\nz=w").unwrap_or_default());
        assert_eq!(a.get("k"), Some(&["1".to_string(), "2".to_string()][..]));
        assert_eq!(a.len(), 3);
    }
}
