//! One configuration layer as figment sees it: a dictionary of the bridge's keys, where it
//! came from, and how each key was spelled there (for messages and `show-config`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use figment::value::{Dict, Map};
use figment::{Metadata, Profile, Provider, Source};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The bridge's built-in defaults.
    Default,
    /// A configuration file (`mender.conf` or `mender-bridge.toml`).
    File(PathBuf),
    /// `MENDER_BRIDGE_…` environment variables.
    Environment,
    /// A command-line option (`-d`).
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in defaults"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Environment => f.write_str("the environment"),
            Origin::CommandLine => f.write_str("the command line"),
        }
    }
}

/// A figment provider over data the loader already read and checked.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Unique among the layers of one load: figment's metadata name, by which a value's
    /// layer is found again.
    pub label: &'static str,
    pub origin: Origin,
    pub dict: Dict,
    /// Dotted bridge key (`servers.0.server_url`) → the name as written in this source
    /// (`Servers[0].ServerURL`, `MENDER_BRIDGE_SERVER_URL`, `--data`). Keys not listed are
    /// shown dotted.
    pub names: BTreeMap<String, String>,
}

impl Layer {
    pub fn new(label: &'static str, origin: Origin, dict: Dict) -> Self {
        Layer {
            label,
            origin,
            dict,
            names: BTreeMap::new(),
        }
    }

    /// How `path` (dotted) is written in this layer.
    pub fn display_key(&self, path: &str) -> String {
        self.names
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.to_string())
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let meta = Metadata::named(self.label);
        match &self.origin {
            Origin::File(p) => meta.source(Source::File(p.clone())),
            _ => meta,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Largest configuration file read; a config file is a few KiB.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// A file format's parser: the file's text, where it was found, the layer's label.
pub(crate) type Parser = fn(
    &str,
    &std::path::Path,
    &'static str,
    &mut Vec<super::ConfigWarning>,
) -> Result<Layer, super::ConfigError>;

/// Reads `path` and parses it with `parse`. `Ok(None)` when it does not exist and
/// `required` is false.
pub(crate) fn read_layer(
    path: &std::path::Path,
    label: &'static str,
    required: bool,
    warnings: &mut Vec<super::ConfigWarning>,
    parse: Parser,
) -> Result<Option<Layer>, super::ConfigError> {
    read_config_file(path, required)?
        .map(|text| parse(&text, path, label, warnings))
        .transpose()
}

/// The text of a configuration file. `Ok(None)` when it does not exist and `required` is
/// false (the default paths may be absent; a file named on the command line must exist).
pub(crate) fn read_config_file(
    path: &std::path::Path,
    required: bool,
) -> Result<Option<String>, super::ConfigError> {
    use super::ConfigError;
    match crate::fsutil::read_optional(path, MAX_CONFIG_FILE) {
        Ok(Some(bytes)) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
            }),
        Ok(None) if !required => {
            tracing::debug!(file = %path.display(), "no configuration file here");
            Ok(None)
        }
        Ok(None) => Err(ConfigError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
