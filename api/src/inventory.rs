//! `PUT|PATCH /api/devices/v1/inventory/device/attributes` (PROTOCOL.md §2).
//!
//! Success is **200** with an empty body. PUT replaces every `inventory`-scope attribute;
//! PATCH upserts the listed ones. The Go client sends PUT and falls back to PATCH on 405.

use serde::{Deserialize, Serialize};

use super::{check_len, ValidationError};

/// Route of the inventory attributes.
pub const ATTRIBUTES: &str = "/api/devices/v1/inventory/device/attributes";

/// Longest attribute name.
pub const MAX_NAME_LEN: usize = 1024;

/// Most attributes the server keeps in the `inventory` scope (`limit_attributes`); a request
/// that would store more is refused with 400.
pub const MAX_ATTRIBUTES: usize = 100;

/// One attribute: `name` (1..=1024 characters), `value`, optional `description`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: AttributeValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An attribute value: a string, a number, or a homogeneous array of strings or of numbers
/// (an empty array is fine). `null`, booleans, objects and mixed arrays are refused (400):
/// deserialising them into this type fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    String(String),
    Number(serde_json::Number),
    Strings(Vec<String>),
    Numbers(Vec<serde_json::Number>),
}

impl From<&str> for AttributeValue {
    fn from(s: &str) -> Self {
        AttributeValue::String(s.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(s: String) -> Self {
        AttributeValue::String(s)
    }
}

impl From<Vec<String>> for AttributeValue {
    fn from(v: Vec<String>) -> Self {
        AttributeValue::Strings(v)
    }
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        Attribute {
            name: name.into(),
            value: value.into(),
            description: None,
        }
    }
}

/// Checks every attribute of a request body: names 1..=1024 characters. (Value types are
/// enforced by [`AttributeValue`]'s deserialisation; the attribute limit applies to what the
/// server would store afterwards, see [`check_limit`].)
pub fn validate_attributes(attrs: &[Attribute]) -> Result<(), ValidationError> {
    for a in attrs {
        check_len("name", &a.name, MAX_NAME_LEN)?;
    }
    Ok(())
}

/// Parses a request body the way the server does: a JSON array of attributes with valid
/// values, each name valid. The error text names the first offending element.
pub fn parse_attributes(body: &[u8]) -> Result<Vec<Attribute>, ValidationError> {
    let raw: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| ValidationError::Invalid {
            field: "body",
            detail: format!("expected a JSON array of attributes: {e}"),
        })?;
    let mut attrs = Vec::with_capacity(raw.len());
    for (i, v) in raw.into_iter().enumerate() {
        let value = v.get("value").cloned();
        let a: Attribute = serde_json::from_value(v).map_err(|e| ValidationError::Invalid {
            field: "attribute",
            detail: match value {
                Some(value) => format!(
                    "element {i}: {e}; a value must be a string, a number, or an array of \
                     only strings or only numbers (got {value})"
                ),
                None => format!("element {i}: {e}"),
            },
        })?;
        attrs.push(a);
    }
    validate_attributes(&attrs)?;
    Ok(attrs)
}

/// Refuses a result of more than [`MAX_ATTRIBUTES`] stored attributes.
pub fn check_limit(count: usize) -> Result<(), ValidationError> {
    if count > MAX_ATTRIBUTES {
        return Err(ValidationError::TooManyAttributes {
            count,
            limit: MAX_ATTRIBUTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types() {
        let ok = br#"[{"name":"a","value":"x"},{"name":"b","value":1.5},{"name":"c","value":["x","y"]},
                     {"name":"d","value":[1,2]},{"name":"e","value":[]},{"name":"f","value":"","description":"d"}]"#;
        let attrs = parse_attributes(ok).unwrap();
        assert_eq!(attrs.len(), 6);
        assert_eq!(
            attrs[1].value,
            AttributeValue::Number(serde_json::Number::from_f64(1.5).unwrap())
        );
        assert_eq!(attrs[5].description.as_deref(), Some("d"));
        for bad in [
            &br#"[{"name":"a","value":null}]"#[..],
            br#"[{"name":"a","value":true}]"#,
            br#"[{"name":"a","value":{"k":1}}]"#,
            br#"[{"name":"a","value":["x",1]}]"#,
            br#"[{"name":"","value":"x"}]"#,
            br#"[{"value":"x"}]"#,
            br#"{"name":"a","value":"x"}"#,
        ] {
            assert!(
                parse_attributes(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(r#"[{{"name":"{}","value":"x"}}]"#, "n".repeat(1025));
        assert!(matches!(
            parse_attributes(long.as_bytes()),
            Err(ValidationError::TooLong { .. })
        ));
    }

    #[test]
    fn serialises_compactly() {
        let a = Attribute::new("ip", vec!["10.0.0.1".to_string()]);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"name":"ip","value":["10.0.0.1"]}"#
        );
        assert!(check_limit(100).is_ok());
        assert!(check_limit(101).is_err());
    }
}
