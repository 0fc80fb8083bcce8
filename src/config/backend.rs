//! `[backend]`: which installer receives the payload, the raw A/B backend's settings
//! (`[backend.raw]`, `[backend.raw.a]`, `[backend.raw.b]`, `[backend.raw.bootenv]`) and
//! RAUC's (`[backend.rauc]`).
//!
//! Values are checked when the configuration loads ([`super::validate`]: positive
//! partition numbers and sizes, distinct slots, non-empty commands); whether the slots are
//! there at all is checked only when the raw backend is started
//! ([`crate::setup`] builds the backend's own configuration), so `show-config`, `show-provides` and friends work on
//! a device whose backend is not configured yet.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[backend]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendSettings {
    /// `type` (`raw`).
    #[serde(rename = "type")]
    pub kind: BackendType,
    /// `[backend.raw]`: read when `type = "raw"`.
    pub raw: RawBackendSettings,
    /// `[backend.rauc]`: read when `type = "rauc"`.
    pub rauc: RaucBackendSettings,
    /// `[backend.swupdate]`: read when `type = "swupdate"`.
    pub swupdate: super::SwupdateSettings,
}

/// `[backend.rauc]`: RAUC over D-Bus. Invariants (checked at load): timeouts > 0; the
/// health check, when set, is a non-empty argv; `bus` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaucBackendSettings {
    /// `bus` (`system`): `system`, `session`, or a D-Bus address (`unix:path=…`).
    pub bus: String,
    /// `spool_dir` (unset: `<data_dir>/mender-bridge/rauc-spool`): where the bundle is
    /// written before RAUC gets it; a local filesystem with room for the biggest bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// `health_check` (unset): argv run after the new slot booted, before it is marked
    /// good; a non-zero exit fails the deployment and rolls back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Vec<String>>,
    /// `health_check_timeout_seconds` (300).
    #[serde(
        rename = "health_check_timeout_seconds",
        serialize_with = "super::settings::secs"
    )]
    pub health_check_timeout: Duration,
    /// `call_timeout_seconds` (30): connecting and each D-Bus call.
    #[serde(
        rename = "call_timeout_seconds",
        serialize_with = "super::settings::secs"
    )]
    pub call_timeout: Duration,
    /// `install_timeout_seconds` (3600): from `InstallBundle` to `Completed`.
    #[serde(
        rename = "install_timeout_seconds",
        serialize_with = "super::settings::secs"
    )]
    pub install_timeout: Duration,
}

/// The installer the payload streams into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    /// A/B block-device writer.
    Raw,
    /// RAUC over D-Bus.
    Rauc,
    /// SWUpdate over its IPC sockets, streamed.
    Swupdate,
}

impl BackendType {
    pub fn name(self) -> &'static str {
        match self {
            BackendType::Raw => "raw",
            BackendType::Rauc => "rauc",
            BackendType::Swupdate => "swupdate",
        }
    }
}

/// `[backend.raw]`: the A/B slot writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawBackendSettings {
    /// `cmdline` (`/proc/cmdline`): the running slot is the one `root=` names here.
    pub cmdline: PathBuf,
    /// `active_slot` (unset): `a` or `b`, fixing the running slot instead of `cmdline`; on
    /// block-device slots it is checked against the device of `/` (a mismatch refuses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_slot: Option<String>,
    /// `verify_readback` (false): after the sync, drop the slot's cached pages and hash what
    /// the medium returns. Off by default: it reads the whole image once more.
    pub verify_readback: bool,
    /// `[backend.raw.a]`.
    pub a: SlotSettings,
    /// `[backend.raw.b]`.
    pub b: SlotSettings,
    /// `[backend.raw.bootenv]`.
    pub bootenv: BootEnvSettings,
}

/// One slot. `device` and `boot_part` are required when the raw backend starts.
/// Invariants (checked at load): `boot_part` and `size` > 0 when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotSettings {
    /// `device`: block device or file the image is written to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<PathBuf>,
    /// `boot_part`: the partition number the bootloader knows the slot by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_part: Option<u32>,
    /// `size`: capacity in bytes of a plain-file slot (block devices report their own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `root_aliases`: other `root=` values meaning this slot (`PARTUUID=…`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub root_aliases: Vec<String>,
}

/// How the bootloader is switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootEnvType {
    /// U-Boot environment through `fw_printenv` / `fw_setenv`.
    Uboot,
    /// GRUB environment block through `grub-editenv`.
    Grub,
    /// Site-specific commands.
    Command,
}

/// `[backend.raw.bootenv]`. Invariant (checked at load): a command list, when set, is
/// not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEnvSettings {
    /// `type` (`uboot`).
    #[serde(rename = "type")]
    pub kind: BootEnvType,
    /// `config` (U-Boot): the `fw_env.config` passed with `-c` (unset: the tools' own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// `printenv` (`fw_printenv`), `setenv` (`fw_setenv`): the U-Boot tools.
    pub printenv: PathBuf,
    pub setenv: PathBuf,
    /// `env_file` (`/boot/grub/grubenv`), `editenv` (`grub-editenv`): GRUB.
    pub env_file: PathBuf,
    pub editenv: PathBuf,
    /// `activate`, `commit`, `revert`, `state` (type `command`): argv lists, `{part}`
    /// replaced by the partition number; `state` prints `mender_boot_part=` and
    /// `upgrade_available=` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use crate::config::testing::load_toml as load;

    #[test]
    fn bad_values_stop_the_load_naming_key_and_file() {
        let cases = [
            (
                "[backend.raw.a]\nboot_part = 0\n",
                "backend.raw.a.boot_part in ",
            ),
            ("[backend.raw.b]\nsize = -1\n", "backend.raw.b.size in "),
            (
                "[backend.raw]\nactive_slot = \"c\"\n",
                "backend.raw.active_slot in ",
            ),
            (
                "[backend.raw.a]\ndevice = \"/d\"\n[backend.raw.b]\ndevice = \"/d\"\n",
                "backend.raw.b.device in ",
            ),
            (
                "[backend.raw.a]\nboot_part = 2\n[backend.raw.b]\nboot_part = 2\n",
                "backend.raw.b.boot_part in ",
            ),
            (
                "[backend.raw.bootenv]\ntype = \"lilo\"\n",
                "backend.raw.bootenv.type in ",
            ),
            (
                "[backend.raw.bootenv]\nstate = []\n",
                "backend.raw.bootenv.state in ",
            ),
            ("reboot_command = []\n", "reboot_command in "),
            ("[backend.rauc]\nbus = \"\"\n", "backend.rauc.bus in "),
            (
                "[backend.rauc]\ncall_timeout_seconds = 0\n",
                "backend.rauc.call_timeout_seconds in ",
            ),
            (
                "[backend.rauc]\nhealth_check = []\n",
                "backend.rauc.health_check in ",
            ),
            (
                "[backend.rauc]\nspool_dir = \"\"\n",
                "backend.rauc.spool_dir in ",
            ),
        ];
        for (toml, want) in cases {
            let e = load(toml).err().unwrap_or_default();
            assert!(
                e.starts_with(want) && e.contains("bridge.toml"),
                "{toml}: {e}"
            );
        }
    }
}
