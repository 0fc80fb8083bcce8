//! `[backend.swupdate]`: the SWUpdate backend's settings — raw (figment's target, with
//! defaults), checked (`SwupdateSettings`, shown by `show-config`) and the backend crate's
//! `SwupdateConfig` built from them when the backend starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mender_bridge_backends::swupdate::{SwupdateConfig, SwupdateMode};
use serde::{Deserialize, Serialize};

/// `[backend.swupdate]` as written; checked in `validate.rs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawSwupdate {
    pub control_socket: Option<PathBuf>,
    pub progress_socket: Option<PathBuf>,
    pub dry_run: bool,
    pub software_set: String,
    pub running_mode: String,
    pub reboot: bool,
    pub ustate: bool,
    pub timeout_seconds: i64,
    pub write_timeout_seconds: i64,
    pub install_timeout_seconds: i64,
    pub busy_retries: i64,
    pub busy_backoff_ms: i64,
    pub sw_versions_file: PathBuf,
    pub mode: SwupdateMode,
    pub spool_dir: Option<PathBuf>,
    pub swupdate_uid: Option<i64>,
}

impl Default for RawSwupdate {
    fn default() -> Self {
        let d = SwupdateConfig::default();
        RawSwupdate {
            control_socket: None,
            progress_socket: None,
            dry_run: d.dry_run,
            software_set: d.software_set,
            running_mode: d.running_mode,
            reboot: d.reboot,
            ustate: d.ustate,
            timeout_seconds: d.timeout.as_secs() as i64,
            write_timeout_seconds: d.write_timeout.as_secs() as i64,
            install_timeout_seconds: d.install_timeout.as_secs() as i64,
            busy_retries: i64::from(d.busy_retries),
            busy_backoff_ms: d.busy_backoff.as_millis() as i64,
            sw_versions_file: d.sw_versions_file.unwrap_or_default(),
            mode: d.mode,
            spool_dir: None,
            swupdate_uid: None,
        }
    }
}

/// `[backend.swupdate]`, checked. Invariants: timeouts and the backoff > 0; `spool_dir`,
/// when set, is not empty; `swupdate_uid` fits a uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwupdateSettings {
    /// `control_socket`, `progress_socket` (unset: SWUpdate's own rules:
    /// `$RUNTIME_DIRECTORY`, `$TMPDIR`, `/run/swupdate`, `/tmp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_socket: Option<PathBuf>,
    /// `dry_run` (false): SWUpdate verifies, writes nothing.
    pub dry_run: bool,
    /// `software_set`, `running_mode` (empty): the request's selection.
    pub software_set: String,
    pub running_mode: String,
    /// `reboot` (true): the update needs a reboot.
    pub reboot: bool,
    /// `ustate` (true): confirm through SWUpdate's bootloader `ustate`.
    pub ustate: bool,
    /// `timeout_seconds` (10), `write_timeout_seconds` (300), `install_timeout_seconds`
    /// (3600).
    pub timeout_seconds: u64,
    pub write_timeout_seconds: u64,
    pub install_timeout_seconds: u64,
    /// `busy_retries` (5), `busy_backoff_ms` (2000, doubling).
    pub busy_retries: u32,
    pub busy_backoff_ms: u64,
    /// `sw_versions_file` (`/etc/sw-versions`; empty: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_versions_file: Option<PathBuf>,
    /// `mode` (`auto`): `stream` (only when SWUpdate proves at preflight that it refuses
    /// unsigned images), `spool` (nothing reaches SWUpdate before the checksum matched),
    /// `auto` (stream when SWUpdate enforces signatures, else spool when
    /// `ArtifactVerifyKey` is set, else stream with a warning).
    pub mode: SwupdateMode,
    /// `spool_dir` (unset: `<data_dir>/mender-bridge/swupdate-spool`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// `swupdate_uid` (unset): the user SWUpdate runs as when not root; the peer of its
    /// sockets must be root or this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swupdate_uid: Option<u32>,
}

impl SwupdateSettings {
    /// The backend crate's configuration. `store_dir` (`<data_dir>/mender-bridge`) holds
    /// the spool directory unless `spool_dir` is set; `payload_authenticated`: the bridge
    /// checks the artifact signature (`ArtifactVerifyKey(s)` configured).
    pub fn config(&self, store_dir: &Path, payload_authenticated: bool) -> SwupdateConfig {
        SwupdateConfig {
            control_socket: self.control_socket.clone(),
            progress_socket: self.progress_socket.clone(),
            dry_run: self.dry_run,
            software_set: self.software_set.clone(),
            running_mode: self.running_mode.clone(),
            reboot: self.reboot,
            ustate: self.ustate,
            timeout: Duration::from_secs(self.timeout_seconds),
            write_timeout: Duration::from_secs(self.write_timeout_seconds),
            install_timeout: Duration::from_secs(self.install_timeout_seconds),
            busy_retries: self.busy_retries,
            busy_backoff: Duration::from_millis(self.busy_backoff_ms),
            sw_versions_file: self.sw_versions_file.clone(),
            mode: self.mode,
            spool_dir: self
                .spool_dir
                .clone()
                .unwrap_or_else(|| store_dir.join("swupdate-spool")),
            swupdate_uid: self.swupdate_uid,
            payload_authenticated,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigPaths};
    use mender_bridge_backends::swupdate::SwupdateMode;

    fn load(toml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        let conf = dir.path().join("mender.conf");
        std::fs::write(&conf, "{}").map_err(|e| e.to_string())?;
        let paths = ConfigPaths {
            mender_conf: Some(conf),
            bridge_config: Some(path),
            data_dir: Some(dir.path().to_path_buf()),
            fallback_mender_conf: None,
        };
        Config::load_from(&paths, Vec::<(String, String)>::new())
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_settings() {
        let c = load("[backend]\ntype = \"swupdate\"\n").unwrap_or_else(|e| panic!("{e}"));
        let store = std::path::Path::new("/var/lib/mender/mender-bridge");
        let s = c.backend.swupdate.config(store, false);
        assert_eq!(
            s,
            mender_bridge_backends::swupdate::SwupdateConfig::default()
        );
        assert_eq!(s.mode, SwupdateMode::Auto);
        assert!(c.backend.swupdate.config(store, true).payload_authenticated);
        let c = load(
            "[backend.swupdate]\ncontrol_socket = \"/run/x/ctl\"\ndry_run = true\n\
             busy_retries = 0\nbusy_backoff_ms = 10\nustate = false\nsw_versions_file = \"\"\n\
             mode = \"spool\"\nspool_dir = \"/spool\"\nswupdate_uid = 998\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = c.backend.swupdate.config(std::path::Path::new("/d"), false);
        assert_eq!(s.mode, SwupdateMode::Spool);
        assert_eq!(s.spool_dir, std::path::Path::new("/spool"));
        assert_eq!(s.swupdate_uid, Some(998));
        assert_eq!(
            s.control_socket.as_deref(),
            Some(std::path::Path::new("/run/x/ctl"))
        );
        assert!(s.dry_run && !s.ustate);
        assert_eq!(s.busy_retries, 0);
        assert_eq!(s.busy_backoff, std::time::Duration::from_millis(10));
        assert_eq!(s.sw_versions_file, None);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (toml, key) in [
            (
                "[backend.swupdate]\ntimeout_seconds = 0\n",
                "backend.swupdate.timeout_seconds",
            ),
            (
                "[backend.swupdate]\nbusy_retries = -1\n",
                "backend.swupdate.busy_retries",
            ),
            (
                "[backend.swupdate]\ncontrol_socket = \"\"\n",
                "backend.swupdate.control_socket",
            ),
            (
                "[backend.swupdate]\nmode = \"fast\"\n",
                "backend.swupdate.mode",
            ),
            (
                "[backend.swupdate]\nspool_dir = \"\"\n",
                "backend.swupdate.spool_dir",
            ),
            (
                "[backend.swupdate]\nswupdate_uid = -2\n",
                "backend.swupdate.swupdate_uid",
            ),
        ] {
            let e = load(toml).err().unwrap_or_default();
            assert!(e.starts_with(key), "{toml}: {e}");
        }
    }
}
