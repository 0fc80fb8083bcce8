//! `[backend.swupdate]`: the SWUpdate backend's settings — unchecked (figment's target,
//! with the backend crate's defaults) and checked (`SwupdateSettings`, shown by
//! `show-config`); [`crate::setup`] turns them into the backend crate's `SwupdateConfig`
//! when the backend starts.

use std::path::PathBuf;

use mender_bridge_backends::swupdate::{SwupdateConfig, SwupdateMode};
use serde::{Deserialize, Serialize};

/// `[backend.swupdate]` as written; checked in `validate.rs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedSwupdate {
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

impl Default for UncheckedSwupdate {
    fn default() -> Self {
        let d = SwupdateConfig::default();
        UncheckedSwupdate {
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

#[cfg(test)]
mod tests {

    use crate::config::testing::load_toml as load;

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
