//! `show-config` output: the effective configuration as TOML (loadable as a
//! `mender-bridge.toml`) or JSON, with where each value came from. The tenant token is
//! redacted by [`super::Secret`]'s serialisation.

use super::Loaded;

impl Loaded {
    /// The configuration as TOML, then one comment line per key naming its source.
    pub fn to_toml(&self) -> Result<String, String> {
        let mut out = toml::to_string(&self.config).map_err(|e| e.to_string())?;
        out.push_str("\n# Where each value came from:\n");
        for (key, origin) in &self.sources {
            out.push_str(&format!("#   {key}: {origin}\n"));
        }
        Ok(out)
    }

    /// `{"config": {...}, "sources": {"key": "origin", ...}}`, pretty-printed.
    pub fn to_json(&self) -> Result<String, String> {
        let sources: serde_json::Map<String, serde_json::Value> = self
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let doc = serde_json::json!({ "config": &self.config, "sources": sources });
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
    }
}
