//! The loaded layers and their merge: which layer a value came from, and how its key is
//! written there. Every error about a value is made here, so each names its key and file.

use figment::value::Value;
use figment::Figment;

use super::error::{describe, ConfigError};
use super::layer::{Layer, Origin};

/// Layers lowest first, and figment's merge of them.
pub(crate) struct Sources {
    layers: Vec<Layer>,
    figment: Figment,
}

/// Keys whose values never appear in messages.
const SECRET_KEYS: &[&str] = &["tenant_token"];

impl Sources {
    pub fn new(layers: Vec<Layer>) -> Self {
        let figment = layers
            .iter()
            .fold(Figment::new(), |f, layer| f.merge(layer.clone()));
        Sources { layers, figment }
    }

    pub fn figment(&self) -> &Figment {
        &self.figment
    }

    /// The layer the effective value at `path` (dotted) came from, and its rank (higher
    /// wins). A path into a list is found through its nearest dictionary ancestor.
    pub fn layer_of(&self, path: &str) -> Option<(usize, &Layer)> {
        let mut p = path;
        loop {
            if let Some(meta) = self.figment.find_metadata(p) {
                return self
                    .layers
                    .iter()
                    .enumerate()
                    .find(|(_, l)| l.label == meta.name);
            }
            p = &p[..p.rfind('.')?];
        }
    }

    fn layer_named(&self, label: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.label == label)
    }

    /// The rank of the layer that set `path`, if any did.
    pub fn rank(&self, path: &str) -> Option<usize> {
        self.layer_of(path).map(|(i, _)| i)
    }

    /// `(key as written, origin)` of the effective value at `path`.
    pub fn locate(&self, path: &str) -> (String, Origin) {
        match self.layer_of(path) {
            Some((_, layer)) => (layer.display_key(path), layer.origin.clone()),
            None => (path.to_string(), Origin::Default),
        }
    }

    /// An invariant broken by the effective value at `path`.
    pub fn invalid(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let (key, origin) = self.locate(path);
        ConfigError::Invalid {
            key,
            origin,
            message: message.into(),
        }
    }

    /// Translates figment's extraction error: the key as written in the layer the bad value
    /// came from, and the problem in plain words (secret values are not repeated).
    pub fn extraction_error(&self, err: &figment::Error) -> ConfigError {
        let path = err.path.join(".");
        let layer = err
            .metadata
            .as_ref()
            .and_then(|m| self.layer_named(&m.name));
        let (key, origin) = match layer {
            Some(l) => (l.display_key(&path), l.origin.clone()),
            None => self.locate(&path),
        };
        let message = if SECRET_KEYS.contains(&path.as_str()) {
            "expected a string".to_string()
        } else {
            describe(&err.kind)
        };
        ConfigError::Invalid {
            key,
            origin,
            message,
        }
    }

    /// Refuses two keys that exclude each other when one source sets both (`single` counts
    /// as set only when it is a non-empty string, as in Go).
    pub fn check_exclusive(&self, single: &str, list: &str) -> Result<(), ConfigError> {
        for layer in &self.layers {
            let single_set = matches!(layer.dict.get(single), Some(Value::String(_, s)) if !s.is_empty())
                || matches!(layer.dict.get(single), Some(v) if !matches!(v, Value::String(..)));
            if single_set && layer.dict.contains_key(list) {
                return Err(ConfigError::Conflict {
                    first: layer.display_key(single),
                    second: layer.display_key(list),
                    origin: layer.origin.clone(),
                });
            }
        }
        Ok(())
    }

    /// Each leaf of `value` (dotted path) with a description of where it came from:
    /// `/etc/mender/mender.conf (UpdatePollIntervalSeconds)`, `the environment
    /// (MENDER_BRIDGE_DATA_DIR)`, `the built-in defaults`. `alias` maps an output key to
    /// the key it was read from.
    pub fn provenance(
        &self,
        value: &serde_json::Value,
        alias: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.walk(value, "", alias, &mut out);
        out
    }

    fn walk(
        &self,
        value: &serde_json::Value,
        path: &str,
        alias: &dyn Fn(&str) -> Option<String>,
        out: &mut Vec<(String, String)>,
    ) {
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                self.walk(v, &p, alias, out);
            }
            return;
        }
        let source_key = alias(path).unwrap_or_else(|| path.to_string());
        let described = match self.layer_of(&source_key) {
            Some((_, layer)) if layer.origin != Origin::Default => {
                format!("{} ({})", layer.origin, layer.display_key(&source_key))
            }
            _ => Origin::Default.to_string(),
        };
        out.push((path.to_string(), described));
    }
}
