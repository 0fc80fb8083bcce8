//! `MENDER_BRIDGE_…` environment variables as a layer: `MENDER_BRIDGE_SERVER_URL` sets
//! `server_url`, `__` descends into a table (`MENDER_BRIDGE_ARTIFACT__DECODER_MEMORY_MIB`).
//! Names are matched case-insensitively. String keys take the value verbatim (a numeric
//! tenant token stays a string); other keys parse it as figment does (`true`, `60`,
//! `["a", "b"]`, `[{server_url = "https://a"}]`). Unknown variables with the prefix are
//! warnings naming the variable.

use std::str::FromStr;

use figment::value::{Dict, Value};

use super::error::ConfigWarning;
use super::layer::{Layer, Origin};
use super::schema::{self, Field, Kind};

/// The prefix of the bridge's environment variables.
pub const PREFIX: &str = "MENDER_BRIDGE_";

/// Builds the layer from `vars` (the process environment, or a test's list).
pub(crate) fn layer(
    vars: impl IntoIterator<Item = (String, String)>,
    label: &'static str,
    warnings: &mut Vec<ConfigWarning>,
) -> Layer {
    let mut layer = Layer::new(label, Origin::Environment, Dict::new());
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.len() >= PREFIX.len()
                && name.is_char_boundary(PREFIX.len())
                && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        })
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let parts: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        let Some(field) = resolve(&parts) else {
            warnings.push(ConfigWarning::UnknownKey {
                key: name,
                origin: Origin::Environment,
            });
            continue;
        };
        let value = match field.kind {
            Kind::Str => Value::from(raw),
            _ => Value::from_str(&raw).unwrap_or_else(|never| match never {}),
        };
        insert(&mut layer.dict, &parts, value);
        layer.names.insert(parts.join("."), name);
    }
    layer
}

/// The field named by the lowercased path parts, descending through tables only.
fn resolve(parts: &[String]) -> Option<&'static Field> {
    let mut fields: &'static [Field] = schema::ROOT;
    let (last, init) = parts.split_last()?;
    for part in init {
        match schema::by_key(fields, part)?.kind {
            Kind::Table(sub) => fields = sub,
            _ => return None,
        }
    }
    schema::by_key(fields, last)
}

fn insert(dict: &mut Dict, parts: &[String], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nested_typed_and_unknown() {
        let mut w = Vec::new();
        let l = layer(
            vars(&[
                ("MENDER_BRIDGE_TENANT_TOKEN", "12345"),
                ("MENDER_BRIDGE_ARTIFACT__DECODER_MEMORY_MIB", "64"),
                ("mender_bridge_skip_verify", "true"),
                ("MENDER_BRIDGE_NOPE", "1"),
                ("MENDER_BRIDGE_SERVER_URL__X", "1"),
                ("PATH", "/bin"),
            ]),
            "env",
            &mut w,
        );
        assert_eq!(
            l.dict.get("tenant_token").and_then(|v| v.as_str()),
            Some("12345")
        );
        let mib = l
            .dict
            .get("artifact")
            .and_then(|v| v.as_dict())
            .and_then(|d| d.get("decoder_memory_mib"))
            .and_then(|v| v.to_u128());
        assert_eq!(mib, Some(64));
        assert_eq!(
            l.dict.get("skip_verify").and_then(|v| v.to_bool()),
            Some(true)
        );
        assert_eq!(
            l.display_key("artifact.decoder_memory_mib"),
            "MENDER_BRIDGE_ARTIFACT__DECODER_MEMORY_MIB"
        );
        let unknown: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            unknown,
            [
                "unknown key MENDER_BRIDGE_NOPE in the environment, ignored",
                "unknown key MENDER_BRIDGE_SERVER_URL__X in the environment, ignored"
            ]
        );
    }

    #[test]
    fn lists_parse() {
        let mut w = Vec::new();
        let l = layer(
            vars(&[("MENDER_BRIDGE_SERVERS", r#"[{server_url = "https://a"}]"#)]),
            "env",
            &mut w,
        );
        let first = l
            .dict
            .get("servers")
            .and_then(|v| v.as_array())
            .and_then(|a| a.first())
            .and_then(|v| v.as_dict())
            .and_then(|d| d.get("server_url"))
            .and_then(|v| v.as_str());
        assert_eq!(first, Some("https://a"));
    }
}
