//! Reads Mender's own `mender.conf` (JSON) into a layer of bridge keys.
//!
//! Keys are matched as Go's `encoding/json` matches them (exact first, then
//! case-insensitively; see [`schema::by_mender_name`]); objects keep their order and
//! repeated keys, so the last of two spellings wins as in Go, and nested objects given twice
//! merge field by field. `null` is no value (Go leaves the field alone). Unknown keys are
//! warnings; leaf types are checked later by figment, with the key named as written here.

use std::fmt;
use std::path::Path;

use figment::value::{Dict, Value};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{ConfigError, ConfigWarning};
use super::layer::{Layer, Origin};
use super::schema::{self, Field, Kind};

/// JSON as written: object members in file order, duplicates kept.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    members.push((k, v));
                }
                Ok(Json::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

impl Json {
    /// The value for figment (only leaves and values of the wrong shape get here; the
    /// latter then fail figment's type check with the key named).
    fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::from(figment::value::Empty::None),
            Json::Bool(b) => Value::from(*b),
            Json::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else {
                    Value::from(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Value::from(s.clone()),
            Json::Array(items) => Value::from(items.iter().map(Json::to_value).collect::<Vec<_>>()),
            Json::Object(members) => {
                let mut d = Dict::new();
                for (k, v) in members {
                    d.insert(k.clone(), v.to_value());
                }
                Value::from(d)
            }
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        }
    }
}

/// Parses the text of a `mender.conf` found at `path`.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    label: &'static str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Layer, ConfigError> {
    let json: Json = serde_json::from_str(text).map_err(|source| ConfigError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let Json::Object(members) = json else {
        return Err(ConfigError::NotAnObject {
            path: path.to_path_buf(),
        });
    };
    let mut layer = Layer::new(label, Origin::File(path.to_path_buf()), Dict::new());
    let mut dict = Dict::new();
    let mut ctx = Walk {
        layer: &mut layer,
        warnings,
    };
    ctx.object(schema::ROOT, &members, "", "", &mut dict)?;
    layer.dict = dict;
    Ok(layer)
}

struct Walk<'a> {
    layer: &'a mut Layer,
    warnings: &'a mut Vec<ConfigWarning>,
}

impl Walk<'_> {
    fn origin(&self) -> Origin {
        self.layer.origin.clone()
    }

    /// Maps the members of one JSON object onto `fields`, into `out`.
    /// `key_prefix` is the dotted bridge path so far, `name_prefix` the path as written.
    fn object(
        &mut self,
        fields: &'static [Field],
        members: &[(String, Json)],
        key_prefix: &str,
        name_prefix: &str,
        out: &mut Dict,
    ) -> Result<(), ConfigError> {
        let mut seen: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in members {
            let shown = format!("{name_prefix}{name}");
            let Some(field) = schema::by_mender_name(fields, name) else {
                self.warnings.push(ConfigWarning::UnknownKey {
                    key: shown,
                    origin: self.origin(),
                });
                continue;
            };
            if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == field.key) {
                self.warnings.push(ConfigWarning::DuplicateKey {
                    key: shown.clone(),
                    earlier: earlier.clone(),
                    origin: self.origin(),
                });
            }
            seen.push((field.key, shown.clone()));
            if matches!(value, Json::Null) {
                continue;
            }
            let key_path = format!("{key_prefix}{}", field.key);
            self.layer.names.insert(key_path.clone(), shown.clone());
            match field.kind {
                Kind::Table(sub) => {
                    let Json::Object(inner) = value else {
                        return Err(self.shape_error(&shown, "an object", value));
                    };
                    // A second object for the same key merges into the first, as Go
                    // decodes into the same struct.
                    let mut dict = match out.remove(field.key) {
                        Some(Value::Dict(_, d)) => d,
                        _ => Dict::new(),
                    };
                    self.object(
                        sub,
                        inner,
                        &format!("{key_path}."),
                        &format!("{shown}."),
                        &mut dict,
                    )?;
                    out.insert(field.key.to_string(), Value::from(dict));
                }
                Kind::TableList(sub) => {
                    let Json::Array(items) = value else {
                        return Err(self.shape_error(&shown, "a list", value));
                    };
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let item_shown = format!("{shown}[{i}]");
                        let Json::Object(inner) = item else {
                            return Err(self.shape_error(&item_shown, "an object", item));
                        };
                        let mut dict = Dict::new();
                        self.object(
                            sub,
                            inner,
                            &format!("{key_path}.{i}."),
                            &format!("{item_shown}."),
                            &mut dict,
                        )?;
                        list.push(Value::from(dict));
                    }
                    out.insert(field.key.to_string(), Value::from(list));
                }
                _ => {
                    out.insert(field.key.to_string(), value.to_value());
                }
            }
        }
        Ok(())
    }

    fn shape_error(&self, shown: &str, expected: &str, found: &Json) -> ConfigError {
        ConfigError::Invalid {
            key: shown.to_string(),
            origin: self.origin(),
            message: format!("expected {expected}, found {}", found.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> (Layer, Vec<ConfigWarning>) {
        let mut w = Vec::new();
        let layer = parse(text, Path::new("/x/mender.conf"), "mender.conf", &mut w)
            .unwrap_or_else(|e| panic!("{e}"));
        (layer, w)
    }

    #[test]
    fn keys_map_case_insensitively_and_last_wins() {
        let (layer, w) = parse_ok(
            r#"{"serverurl":"https://a","ServerURL":"https://b","httpsclient":{"certificate":"/c"},
                "HttpsClient":{"Key":"/k"},"Foo":1,"Security":{"Bar":2,"AuthPrivateKey":null}}"#,
        );
        assert_eq!(
            layer.dict.get("server_url").and_then(|v| v.as_str()),
            Some("https://b")
        );
        let hc = layer.dict.get("https_client").and_then(|v| v.as_dict());
        assert_eq!(
            hc.and_then(|d| d.get("certificate"))
                .and_then(|v| v.as_str()),
            Some("/c")
        );
        assert_eq!(
            hc.and_then(|d| d.get("key")).and_then(|v| v.as_str()),
            Some("/k")
        );
        assert_eq!(layer.display_key("https_client.key"), "HttpsClient.Key");
        let unknown: Vec<_> = w
            .iter()
            .filter_map(|w| match w {
                ConfigWarning::UnknownKey { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(unknown, ["Foo", "Security.Bar"]);
        assert_eq!(
            w.iter()
                .filter(|w| matches!(w, ConfigWarning::DuplicateKey { .. }))
                .count(),
            2
        );
        let sec = layer.dict.get("security").and_then(|v| v.as_dict());
        assert!(sec.is_some_and(|d| d.is_empty()), "null is no value");
    }

    #[test]
    fn servers_list_and_shapes() {
        let (layer, _) =
            parse_ok(r#"{"Servers":[{"serverURL":"https://a"},{"ServerURL":"https://b"}]}"#);
        assert_eq!(
            layer.display_key("servers.1.server_url"),
            "Servers[1].ServerURL"
        );
        let mut w = Vec::new();
        let err = parse(
            r#"{"Servers":[{"ServerURL":"https://a"},"https://b"]}"#,
            Path::new("/x/mender.conf"),
            "mender.conf",
            &mut w,
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Servers[1] in /x/mender.conf: expected an object, found a string")
        );
        let err = parse("[1]", Path::new("/x/m"), "mender.conf", &mut w).err();
        assert!(matches!(err, Some(ConfigError::NotAnObject { .. })));
        let err = parse("{\"a\":", Path::new("/x/m"), "mender.conf", &mut w).err();
        assert!(matches!(err, Some(ConfigError::Json { .. })));
    }
}
