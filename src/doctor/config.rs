//! The configuration check: which files are read (or absent), and the loader's own
//! verdict — [`Config::load_from`], whose errors and warnings already name the file and
//! the key. Nothing is re-validated here.

use crate::config::{Config, ConfigError, ConfigPaths};

use super::{Check, Sink};

const NAME: &str = "config";

/// Reports the files and every warning; returns the configuration when it loads.
pub fn check(
    paths: &ConfigPaths,
    env: Vec<(String, String)>,
    out: &mut dyn Sink,
) -> Option<Config> {
    let files: Vec<String> = paths
        .files()
        .iter()
        .map(|f| {
            let state = match std::fs::metadata(&f.path) {
                Ok(_) => "",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => " (absent)",
                Err(_) => " (unreadable)",
            };
            format!("{} {}{state}", f.label, f.path.display())
        })
        .collect();
    let files = files.join(", ");
    match Config::load_from(paths, env) {
        Ok(loaded) => {
            out.add(Check::ok(NAME, files));
            for w in &loaded.warnings {
                out.add(Check::warn(
                    NAME,
                    w.to_string(),
                    "remove the key or correct its spelling",
                ));
            }
            Some(loaded.config)
        }
        Err(e) => {
            out.add(Check::fail(NAME, format!("{files}: {e}"), fix(&e)));
            None
        }
    }
}

/// What to do about a configuration error.
fn fix(e: &ConfigError) -> String {
    match e {
        ConfigError::NotFound { .. } => "create the file or drop the option that names it".into(),
        ConfigError::Read { path, .. } => format!(
            "make {} readable by the user the bridge runs as",
            path.display()
        ),
        ConfigError::Json { .. } | ConfigError::Toml { .. } | ConfigError::NotAnObject { .. } => {
            "correct the file's syntax".into()
        }
        ConfigError::Invalid { key, origin, .. } => format!("correct {key} in {origin}"),
        ConfigError::Missing { key, .. } => {
            format!("set {key} (documented in config/mender-bridge.toml)")
        }
        ConfigError::Conflict { second, .. } => format!("remove {second}, or the other one"),
    }
}
