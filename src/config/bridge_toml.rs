//! Reads `mender-bridge.toml` into a layer. Its keys are the bridge's snake_case names
//! (exactly; TOML is case-sensitive); it may set any key `mender.conf` has as well as the
//! bridge's own. Unknown keys are warnings.

use std::path::Path;

use figment::value::{Dict, Value};

use super::error::{ConfigError, ConfigWarning};
use super::layer::{Layer, Origin};
use super::schema::{self, Field, Kind};

/// Parses the text of a `mender-bridge.toml` found at `path`.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    label: &'static str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Layer, ConfigError> {
    // The message and position only: toml's full text quotes the line, which may hold the
    // tenant token.
    let dict: Dict = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| {
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        ConfigError::Toml {
            path: path.to_path_buf(),
            message: format!("{}{at}", e.message().trim_end().replace('\n', "; ")),
        }
    })?;
    let origin = Origin::File(path.to_path_buf());
    check_keys(schema::ROOT, &dict, "", &origin, warnings);
    Ok(Layer::new(label, origin, dict))
}

/// Warns about every key of `dict` (recursively) that `fields` does not have. Values of
/// the wrong shape are left for figment's type check.
fn check_keys(
    fields: &'static [Field],
    dict: &Dict,
    prefix: &str,
    origin: &Origin,
    warnings: &mut Vec<ConfigWarning>,
) {
    for (key, value) in dict {
        let path = format!("{prefix}{key}");
        let Some(field) = schema::by_key(fields, key) else {
            warnings.push(ConfigWarning::UnknownKey {
                key: path,
                origin: origin.clone(),
            });
            continue;
        };
        match (field.kind, value) {
            (Kind::Table(sub), Value::Dict(_, inner)) => {
                check_keys(sub, inner, &format!("{path}."), origin, warnings)
            }
            (Kind::TableList(sub), Value::Array(_, items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Dict(_, inner) = item {
                        check_keys(sub, inner, &format!("{path}.{i}."), origin, warnings);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let mut w = Vec::new();
        let text = "data_dir = \"/d\"\nServerURL = \"x\"\n[artifact]\ndecoder_memory_mib = 64\nbogus = 1\n\
                    [[servers]]\nserver_url = \"https://a\"\nurl = \"b\"\n";
        let layer =
            parse(text, Path::new("/e/b.toml"), "toml", &mut w).unwrap_or_else(|e| panic!("{e}"));
        assert!(layer.dict.contains_key("data_dir"));
        let keys: Vec<String> = w
            .iter()
            .map(|w| match w {
                ConfigWarning::UnknownKey { key, .. } => key.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(keys, ["ServerURL", "artifact.bogus", "servers.0.url"]);
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let mut w = Vec::new();
        let err = parse("data_dir = ", Path::new("/e/b.toml"), "toml", &mut w)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("/e/b.toml: not valid TOML:"), "{err}");
        assert!(err.ends_with("at line 1, column 12"), "{err}");
        let err = parse(
            "data_dir = \"/d\"\ntenant_token = \"sekrit\n",
            Path::new("/e/b.toml"),
            "toml",
            &mut w,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(!err.contains("sekrit") && err.contains("line 2"), "{err}");
    }
}
