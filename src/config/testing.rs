//! Test support (built for tests only): a configuration loaded from files written into a
//! directory, the way the bridge loads a device's.

use std::path::Path;

use super::{Config, ConfigPaths};

/// Writes `mender.conf` (JSON) and `bridge.toml` into `dir`, then loads them with `dir` as
/// the data directory and no environment. The error is the load error's text.
pub(crate) fn load_in(dir: &Path, mender_conf: &str, toml: &str) -> Result<Config, String> {
    let conf = dir.join("mender.conf");
    std::fs::write(&conf, mender_conf).map_err(|e| e.to_string())?;
    let bridge = dir.join("bridge.toml");
    std::fs::write(&bridge, toml).map_err(|e| e.to_string())?;
    let paths = ConfigPaths {
        mender_conf: Some(conf),
        bridge_config: Some(bridge),
        data_dir: Some(dir.to_path_buf()),
        fallback_mender_conf: None,
    };
    Config::load_from(&paths, Vec::<(String, String)>::new())
        .map(|l| l.config)
        .map_err(|e| e.to_string())
}

/// [`load_in`] a fresh temporary directory with an empty `mender.conf`.
pub(crate) fn load_toml(toml: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    load_in(dir.path(), "{}", toml)
}
