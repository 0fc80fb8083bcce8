//! `[backend]`: which installer receives the payload, the raw A/B backend's settings
//! (`[backend.raw]`, `[backend.raw.a]`, `[backend.raw.b]`, `[backend.raw.bootenv]`) and
//! RAUC's (`[backend.rauc]`).
//!
//! Values are checked when the configuration loads ([`super::validate`]: positive
//! partition numbers and sizes, distinct slots, non-empty commands); whether the slots are
//! there at all is checked only when the raw backend is started
//! ([`BackendSettings::raw_config`]), so `show-config`, `show-provides` and friends work on
//! a device whose backend is not configured yet.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "rauc")]
use mender_bridge_backends::rauc::{Bus, RaucConfig};
use mender_bridge_backends::raw::{ActiveSlot, BootEnv, RawConfig, SlotConfig, Slots};
use serde::{Deserialize, Serialize};

use super::ConfigError;

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

const FILE_HINT: &str = "the raw backend (backend.type = \"raw\") needs both slots: set \
                         [backend.raw.a] and [backend.raw.b] in mender-bridge.toml \
                         (see config/mender-bridge.toml)";

fn missing(key: &str, why: &str) -> ConfigError {
    ConfigError::Missing {
        key: key.to_string(),
        why: why.to_string(),
    }
}

impl SlotSettings {
    fn slot(&self, name: &str) -> Result<SlotConfig, ConfigError> {
        let key = |k: &str| format!("backend.raw.{name}.{k}");
        Ok(SlotConfig {
            name: name.to_string(),
            device: self
                .device
                .clone()
                .ok_or_else(|| missing(&key("device"), FILE_HINT))?,
            boot_part: self
                .boot_part
                .ok_or_else(|| missing(&key("boot_part"), FILE_HINT))?,
            root_aliases: self.root_aliases.clone(),
            size: self.size,
        })
    }
}

impl BootEnvSettings {
    fn bootenv(&self) -> Result<BootEnv, ConfigError> {
        Ok(match self.kind {
            BootEnvType::Uboot => BootEnv::Uboot {
                config: self.config.clone(),
                printenv: self.printenv.clone(),
                setenv: self.setenv.clone(),
            },
            BootEnvType::Grub => BootEnv::Grub {
                env_file: self.env_file.clone(),
                editenv: self.editenv.clone(),
            },
            BootEnvType::Command => {
                let why = "backend.raw.bootenv.type = \"command\" needs the activate, commit, \
                           revert and state commands";
                let get = |v: &Option<Vec<String>>, k: &str| {
                    v.clone()
                        .ok_or_else(|| missing(&format!("backend.raw.bootenv.{k}"), why))
                };
                BootEnv::Command {
                    activate: get(&self.activate, "activate")?,
                    commit: get(&self.commit, "commit")?,
                    revert: get(&self.revert, "revert")?,
                    state: get(&self.state, "state")?,
                }
            }
        })
    }
}

impl BackendSettings {
    /// The raw backend's configuration. Errors name the missing key
    /// (`backend.raw.a.device is not set: …`).
    pub fn raw_config(&self) -> Result<RawConfig, ConfigError> {
        let r = &self.raw;
        let active = match &r.active_slot {
            Some(name) => ActiveSlot::Named(name.clone()),
            None => ActiveSlot::Cmdline {
                cmdline: r.cmdline.clone(),
            },
        };
        Ok(RawConfig {
            slots: Slots {
                a: r.a.slot("a")?,
                b: r.b.slot("b")?,
                active,
            },
            bootenv: r.bootenv.bootenv()?,
            verify_readback: r.verify_readback,
        })
    }
}

#[cfg(feature = "rauc")]
impl BackendSettings {
    /// The RAUC backend's configuration. `store_dir` (`<data_dir>/mender-bridge`) holds the
    /// record of the activated slot and, unless `spool_dir` is set, the spool directory.
    pub fn rauc_config(&self, store_dir: &std::path::Path) -> RaucConfig {
        let r = &self.rauc;
        RaucConfig {
            bus: Bus::parse(&r.bus),
            spool_dir: r
                .spool_dir
                .clone()
                .unwrap_or_else(|| store_dir.join("rauc-spool")),
            state_dir: store_dir.to_path_buf(),
            health_check: r.health_check.clone(),
            health_check_timeout: r.health_check_timeout,
            call_timeout: r.call_timeout,
            install_timeout: r.install_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigPaths};

    fn load(toml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        let paths = ConfigPaths {
            mender_conf: Some(dir.path().join("absent-is-fine.conf")),
            bridge_config: Some(path),
            data_dir: Some(dir.path().to_path_buf()),
            fallback_mender_conf: None,
        };
        // A missing -c file is an error; write an empty one.
        std::fs::write(dir.path().join("absent-is-fine.conf"), "{}").map_err(|e| e.to_string())?;
        Config::load_from(&paths, Vec::<(String, String)>::new())
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    const SLOTS: &str = "[backend.raw.a]\ndevice = \"/dev/sda2\"\nboot_part = 2\n\
                         [backend.raw.b]\ndevice = \"/dev/sda3\"\nboot_part = 3\nsize = 4096\n";

    #[test]
    fn defaults_and_a_full_raw_config() {
        let c = load(SLOTS).unwrap_or_else(|e| panic!("{e}"));
        let raw = c.backend.raw_config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(raw.slots.a.device, std::path::Path::new("/dev/sda2"));
        assert_eq!(raw.slots.b.boot_part, 3);
        assert_eq!(raw.slots.b.size, Some(4096));
        assert_eq!(
            raw.slots.active,
            mender_bridge_backends::raw::ActiveSlot::Cmdline {
                cmdline: "/proc/cmdline".into()
            }
        );
        assert!(!raw.verify_readback, "read-back is opt-in");
        assert_eq!(
            raw.bootenv,
            mender_bridge_backends::raw::BootEnv::Uboot {
                config: None,
                printenv: "fw_printenv".into(),
                setenv: "fw_setenv".into()
            }
        );
        let c = load(&format!(
            "{SLOTS}[backend.raw]\nactive_slot = \"b\"\nverify_readback = true\n\
             [backend.raw.bootenv]\ntype = \"grub\"\nenv_file = \"/boot/env\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let raw = c.backend.raw_config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            raw.slots.active,
            mender_bridge_backends::raw::ActiveSlot::Named("b".into())
        );
        assert!(raw.verify_readback);
        assert!(
            matches!(raw.bootenv, mender_bridge_backends::raw::BootEnv::Grub { ref env_file, .. } if env_file == std::path::Path::new("/boot/env"))
        );
    }

    #[cfg(feature = "rauc")]
    #[test]
    fn rauc_defaults_and_settings() {
        let c = load("").unwrap_or_else(|e| panic!("{e}"));
        let r = c
            .backend
            .rauc_config(std::path::Path::new("/data/mender-bridge"));
        assert_eq!(r.bus, mender_bridge_backends::rauc::Bus::System);
        assert_eq!(
            r.spool_dir,
            std::path::Path::new("/data/mender-bridge/rauc-spool")
        );
        assert_eq!(r.state_dir, std::path::Path::new("/data/mender-bridge"));
        assert_eq!(r.install_timeout, std::time::Duration::from_secs(3600));
        assert_eq!(r.call_timeout, std::time::Duration::from_secs(30));
        assert_eq!(r.health_check, None);
        let c = load(
            "[backend]\ntype = \"rauc\"\n[backend.rauc]\nbus = \"unix:path=/x\"\n\
             spool_dir = \"/spool\"\nhealth_check = [\"/bin/true\", \"-v\"]\n\
             install_timeout_seconds = 60\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = c.backend.rauc_config(std::path::Path::new("/d"));
        assert_eq!(
            r.bus,
            mender_bridge_backends::rauc::Bus::Address("unix:path=/x".into())
        );
        assert_eq!(r.spool_dir, std::path::Path::new("/spool"));
        assert_eq!(r.health_check, Some(vec!["/bin/true".into(), "-v".into()]));
        assert_eq!(r.install_timeout, std::time::Duration::from_secs(60));
        for (toml, want) in [
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
        ] {
            let e = load(toml).err().unwrap_or_default();
            assert!(e.starts_with(want), "{toml}: {e}");
        }
    }

    #[test]
    fn missing_slots_name_the_key() {
        let c = load("").unwrap_or_else(|e| panic!("{e}"));
        let e = c.backend.raw_config().err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.starts_with("backend.raw.a.device is not set"), "{e}");
        assert!(e.contains("[backend.raw.a]"), "{e}");
        let c = load("[backend.raw.a]\ndevice = \"/x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let e = c.backend.raw_config().err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("backend.raw.a.boot_part is not set")),
            "{e:?}"
        );
        let c = load(&format!(
            "{SLOTS}[backend.raw.bootenv]\ntype = \"command\"\nactivate = [\"x\"]\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let e = c.backend.raw_config().err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("backend.raw.bootenv.commit is not set")),
            "{e:?}"
        );
    }

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
        ];
        for (toml, want) in cases {
            let e = load(toml).err().unwrap_or_default();
            assert!(
                e.starts_with(want) && e.contains("bridge.toml"),
                "{toml}: {e}"
            );
        }
    }

    #[test]
    fn environment_sets_slots() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conf = dir.path().join("mender.conf");
        std::fs::write(&conf, "{}").unwrap_or_else(|e| panic!("{e}"));
        let paths = ConfigPaths {
            mender_conf: Some(conf),
            bridge_config: Some(dir.path().join("none.toml")),
            data_dir: Some(dir.path().to_path_buf()),
            fallback_mender_conf: None,
        };
        std::fs::write(dir.path().join("none.toml"), "").unwrap_or_else(|e| panic!("{e}"));
        let env = [
            ("MENDER_BRIDGE_BACKEND__RAW__A__DEVICE", "/dev/vda2"),
            ("MENDER_BRIDGE_BACKEND__RAW__A__BOOT_PART", "2"),
            ("MENDER_BRIDGE_BACKEND__RAW__B__DEVICE", "/dev/vda3"),
            ("MENDER_BRIDGE_BACKEND__RAW__B__BOOT_PART", "3"),
            (
                "MENDER_BRIDGE_BACKEND__RAW__B__ROOT_ALIASES",
                "[\"PARTUUID=1-3\"]",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let l = Config::load_from(&paths, env).unwrap_or_else(|e| panic!("{e}"));
        let raw = l
            .config
            .backend
            .raw_config()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(raw.slots.b.root_aliases, ["PARTUUID=1-3"]);
        assert_eq!(raw.slots.a.boot_part, 2);
    }
}
