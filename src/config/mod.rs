//! Configuration: Mender's own `mender.conf` (so an existing device's file works unchanged),
//! the bridge's `mender-bridge.toml`, and `MENDER_BRIDGE_…` environment variables, merged
//! with figment. Lowest first:
//!
//! 1. built-in defaults ([`Config`] documents each),
//! 2. the fallback `mender.conf`: `-b FILE`, else `<-d DIR>/mender.conf`, else
//!    `/var/lib/mender/mender.conf`,
//! 3. the main `mender.conf`: `-c FILE`, else `/etc/mender/mender.conf`,
//! 4. `mender-bridge.toml`: `--bridge-config FILE`, else `/etc/mender/mender-bridge.toml`,
//! 5. the environment (`MENDER_BRIDGE_SERVER_URL`, `MENDER_BRIDGE_DOWNLOAD__IDLE_TIMEOUT_SECONDS`),
//! 6. the command line (`-d DIR` sets `data_dir`).
//!
//! Files at default paths may be missing; a file named on the command line must exist.
//! `mender.conf` keys match case-insensitively like Go's `encoding/json`; the TOML and the
//! environment use the bridge's snake_case names and may set any key. Unknown keys are
//! logged as warnings naming the key and the file; a bad value stops the load with a
//! [`ConfigError`] naming both. `ServerURL` and `Servers` (likewise `ArtifactVerifyKey`
//! and `ArtifactVerifyKeys`) set in the same source is an error, as in Mender 3.x; set in
//! different sources, the higher one wins.
//!
//! Invariant: the tenant token never reaches a log or a message ([`Secret`]).

mod backend;
mod bridge_toml;
mod env;
mod error;
mod layer;
mod mender_conf;
mod render;
mod schema;
mod settings;
mod sources;
mod swupdate;
#[cfg(test)]
pub(crate) mod testing;
mod unchecked;
mod validate;

use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};

pub use env::PREFIX as ENV_PREFIX;
pub use error::{ConfigError, ConfigWarning};
pub use layer::Origin;
pub use settings::{
    ArtifactSettings, BackendSettings, BackendType, BootEnvSettings, BootEnvType, Config,
    Connectivity, Dbus, DownloadSettings, HttpsClient, Mender3, RaucBackendSettings,
    RawBackendSettings, Secret, Security, ServerUrl, SlotSettings,
};
pub use swupdate::SwupdateSettings;

use layer::Layer;
use sources::Sources;
use unchecked::UncheckedConfig;

/// The official client's main configuration file.
pub const DEFAULT_MENDER_CONF: &str = "/etc/mender/mender.conf";
/// The bridge's own configuration file.
pub const DEFAULT_BRIDGE_CONFIG: &str = "/etc/mender/mender-bridge.toml";
/// The official client's data store (and the default `data_dir`).
pub const DEFAULT_DATA_DIR: &str = unchecked::DEFAULT_DATA_DIR;
/// The official client's identity script.
pub const DEFAULT_IDENTITY_SCRIPT: &str = unchecked::DEFAULT_IDENTITY_SCRIPT;
/// Where the official client's inventory scripts live.
pub const DEFAULT_INVENTORY_DIR: &str = unchecked::DEFAULT_INVENTORY_DIR;

/// Which files to read: the command line's view (`-c`, `-b`, `--bridge-config`, `-d`).
/// `None` means the default path, read if present.
#[derive(Debug, Clone, Default)]
pub struct ConfigPaths {
    /// `-c FILE`, instead of `/etc/mender/mender.conf`.
    pub mender_conf: Option<PathBuf>,
    /// `-b FILE`, instead of `<data dir>/mender.conf`.
    pub fallback_mender_conf: Option<PathBuf>,
    /// `--bridge-config FILE`, instead of `/etc/mender/mender-bridge.toml`.
    pub bridge_config: Option<PathBuf>,
    /// `-d DIR`: `data_dir`, over every other layer; also where the fallback
    /// `mender.conf` is looked for.
    pub data_dir: Option<PathBuf>,
}

/// Which format a configuration file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFileKind {
    /// Mender's JSON `mender.conf`.
    MenderConf,
    /// The bridge's `mender-bridge.toml`.
    BridgeToml,
}

/// One configuration file the loader reads, lowest layer first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// `fallback mender.conf`, `mender.conf` or `mender-bridge.toml`.
    pub label: &'static str,
    pub path: PathBuf,
    /// Named on the command line: it must exist (a default path may be absent).
    pub required: bool,
    pub kind: ConfigFileKind,
}

impl ConfigPaths {
    /// The files [`Config::load_from`] reads, lowest first: the fallback `mender.conf`
    /// (left out when it is the main one), the main `mender.conf`, `mender-bridge.toml`.
    pub fn files(&self) -> Vec<ConfigFile> {
        let (fallback, fallback_required) = match &self.fallback_mender_conf {
            Some(p) => (p.clone(), true),
            None => (
                self.data_dir
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_DATA_DIR))
                    .join("mender.conf"),
                false,
            ),
        };
        let (main, main_required) = match &self.mender_conf {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_MENDER_CONF), false),
        };
        let (bridge, bridge_required) = match &self.bridge_config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_BRIDGE_CONFIG), false),
        };
        let mut files = Vec::with_capacity(3);
        if fallback != main {
            files.push(ConfigFile {
                label: "fallback mender.conf",
                path: fallback,
                required: fallback_required,
                kind: ConfigFileKind::MenderConf,
            });
        }
        files.push(ConfigFile {
            label: "mender.conf",
            path: main,
            required: main_required,
            kind: ConfigFileKind::MenderConf,
        });
        files.push(ConfigFile {
            label: "mender-bridge.toml",
            path: bridge,
            required: bridge_required,
            kind: ConfigFileKind::BridgeToml,
        });
        files
    }
}

/// A loaded configuration with what `show-config` shows besides it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Everything that was warned about (already logged).
    pub warnings: Vec<ConfigWarning>,
    /// Each configuration key (dotted, as in `show-config`) and where its value came from.
    pub sources: Vec<(String, String)>,
}

impl Config {
    /// Loads the configuration from `paths` and the process environment; warnings are
    /// logged.
    pub fn load(paths: &ConfigPaths) -> Result<Config, ConfigError> {
        Config::load_from(paths, process_env()).map(|l| l.config)
    }

    /// Loads from `paths` and the given environment variables (only those starting with
    /// [`ENV_PREFIX`] are read). Warnings are logged and returned.
    pub fn load_from(
        paths: &ConfigPaths,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let mut layers = vec![defaults()?];

        for file in paths.files() {
            let parse: layer::Parser = match file.kind {
                ConfigFileKind::MenderConf => mender_conf::parse,
                ConfigFileKind::BridgeToml => bridge_toml::parse,
            };
            layers.extend(layer::read_layer(
                &file.path,
                file.label,
                file.required,
                &mut warnings,
                parse,
            )?);
        }
        layers.push(env::layer(env, "environment", &mut warnings));
        if let Some(dir) = &paths.data_dir {
            let mut dict = Dict::new();
            dict.insert(
                "data_dir".into(),
                Value::from(dir.to_string_lossy().into_owned()),
            );
            let mut cli = Layer::new("command line", Origin::CommandLine, dict);
            cli.names.insert("data_dir".into(), "--data".into());
            layers.push(cli);
        }

        for w in &warnings {
            tracing::warn!("{w}");
        }

        let sources = Sources::new(layers);
        sources.check_exclusive("server_url", "servers")?;
        sources.check_exclusive("artifact_verify_key", "artifact_verify_keys")?;
        let unchecked: UncheckedConfig = sources
            .figment()
            .extract()
            .map_err(|e| sources.extraction_error(&e))?;
        let (config, aliases) = validate::build(unchecked, &sources)?;
        let shown = serde_json::to_value(&config).unwrap_or_default();
        let provenance = sources.provenance(&shown, &|key| {
            aliases
                .iter()
                .find(|(out, _)| key == *out || key.starts_with(&format!("{out}.")))
                .map(|(_, from)| from.to_string())
        });
        Ok(Loaded {
            config,
            warnings,
            sources: provenance,
        })
    }
}

/// The bridge's built-in defaults as the lowest layer.
fn defaults() -> Result<Layer, ConfigError> {
    let value = Value::serialize(UncheckedConfig::default()).map_err(|e| ConfigError::Invalid {
        key: "(defaults)".into(),
        origin: Origin::Default,
        message: e.to_string(),
    })?;
    let mut dict = value.into_dict().unwrap_or_default();
    drop_empty(&mut dict);
    Ok(Layer::new("built-in defaults", Origin::Default, dict))
}

/// Removes unset (`None`) values: a key without a default is absent, not null.
fn drop_empty(dict: &mut Dict) {
    dict.retain(|_, v| !matches!(v, Value::Empty(..)));
    for v in dict.values_mut() {
        if let Value::Dict(_, inner) = v {
            drop_empty(inner);
        }
    }
}

/// The process environment's `MENDER_BRIDGE_…` variables (others, and any that are not
/// UTF-8, are left out).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| {
            k.get(..ENV_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
        })
        .collect()
}

#[cfg(test)]
mod tests;
