//! `[backend]` → the backend `backend.type` selects, built with the backend crate's own
//! configuration. Whether the raw backend's slots are set at all is checked here, when
//! the backend starts, not when the configuration loads: `show-config`, `show-provides`
//! and friends work on a device whose backend is not configured yet. A missing setting is
//! named by its key (`backend.raw.a.device is not set: …`).

use std::path::Path;
use std::time::Duration;

#[cfg(feature = "rauc")]
use mender_bridge_backends::rauc::RaucBackend;
use mender_bridge_backends::rauc::{Bus, RaucConfig};
use mender_bridge_backends::raw::{ActiveSlot, BootEnv, RawBackend, RawConfig, SlotConfig, Slots};
#[cfg(feature = "swupdate")]
use mender_bridge_backends::swupdate::SwupdateBackend;
use mender_bridge_backends::swupdate::SwupdateConfig;

use super::SetupError;
use crate::config::{
    BackendType, BootEnvSettings, BootEnvType, Config, ConfigError, RaucBackendSettings,
    RawBackendSettings, SlotSettings, SwupdateSettings,
};
use mender_bridge_backends::module::ModuleConfig;
use mender_bridge_backends::{AnyBackend, Installers};

/// The backend `backend.type` selects. RAUC's record of the activated slot lives in the
/// store's directory, and so do the RAUC and SWUpdate spool directories by default. The
/// SWUpdate backend is told whether the bridge authenticates the payload (a verify key is
/// configured): its `auto` mode spools then, unless SWUpdate enforces signatures itself.
pub fn backend(cfg: &Config) -> Result<AnyBackend, SetupError> {
    Ok(match cfg.backend.kind {
        BackendType::Raw => AnyBackend::Raw(RawBackend::new(raw_config(&cfg.backend.raw)?)),
        #[cfg(feature = "rauc")]
        BackendType::Rauc => AnyBackend::Rauc(RaucBackend::new(rauc_config(
            &cfg.backend.rauc,
            &super::store_dir(cfg),
        ))),
        #[cfg(feature = "swupdate")]
        BackendType::Swupdate => AnyBackend::Swupdate(SwupdateBackend::new(swupdate_config(
            &cfg.backend.swupdate,
            &super::store_dir(cfg),
            !cfg.artifact_verify_keys.is_empty(),
        ))),
        #[cfg(not(all(feature = "rauc", feature = "swupdate")))]
        other => return Err(SetupError::NotBuilt(other.name())),
    })
}

/// The configured backend and the Update Modules (`modules_dir`, `ModuleTimeoutSeconds`,
/// their tree in `<data_dir>/modules/v3`), routed by payload type. The raw backend with
/// neither slot configured means a device that takes only Update Modules (as the official
/// client allows); a half-configured backend is still an error.
pub fn installers(cfg: &Config) -> Result<Installers, SetupError> {
    let r = &cfg.backend.raw;
    let no_slots = r.a.device.is_none() && r.b.device.is_none();
    match backend(cfg) {
        Ok(b) => Ok(Installers::new(b, module_config(cfg))),
        Err(SetupError::Config(e)) if cfg.backend.kind == BackendType::Raw && no_slots => {
            tracing::info!("no A/B slots configured ({e}): Update Modules only");
            Ok(Installers::modules_only(module_config(cfg), e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// Where the Update Modules are, where their tree goes, and how long a state may run.
pub fn module_config(cfg: &Config) -> ModuleConfig {
    ModuleConfig {
        modules_dir: cfg.modules_dir.clone(),
        timeout: cfg.module_timeout,
        ..ModuleConfig::for_data_dir(&cfg.data_dir)
    }
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

/// `[backend.raw]` → the raw backend's configuration. Errors name the missing key.
pub fn raw_config(r: &RawBackendSettings) -> Result<RawConfig, ConfigError> {
    let active = match &r.active_slot {
        Some(name) => ActiveSlot::Named(name.clone()),
        None => ActiveSlot::Cmdline {
            cmdline: r.cmdline.clone(),
        },
    };
    Ok(RawConfig {
        slots: Slots {
            a: slot(&r.a, "a")?,
            b: slot(&r.b, "b")?,
            active,
        },
        bootenv: bootenv(&r.bootenv)?,
        verify_readback: r.verify_readback,
    })
}

fn slot(s: &SlotSettings, name: &str) -> Result<SlotConfig, ConfigError> {
    let key = |k: &str| format!("backend.raw.{name}.{k}");
    Ok(SlotConfig {
        name: name.to_string(),
        device: s
            .device
            .clone()
            .ok_or_else(|| missing(&key("device"), FILE_HINT))?,
        boot_part: s
            .boot_part
            .ok_or_else(|| missing(&key("boot_part"), FILE_HINT))?,
        root_aliases: s.root_aliases.clone(),
        size: s.size,
    })
}

fn bootenv(b: &BootEnvSettings) -> Result<BootEnv, ConfigError> {
    Ok(match b.kind {
        BootEnvType::Uboot => BootEnv::Uboot {
            config: b.config.clone(),
            printenv: b.printenv.clone(),
            setenv: b.setenv.clone(),
        },
        BootEnvType::Grub => BootEnv::Grub {
            env_file: b.env_file.clone(),
            editenv: b.editenv.clone(),
        },
        BootEnvType::Command => {
            let why = "backend.raw.bootenv.type = \"command\" needs the activate, commit, \
                       revert and state commands";
            let get = |v: &Option<Vec<String>>, k: &str| {
                v.clone()
                    .ok_or_else(|| missing(&format!("backend.raw.bootenv.{k}"), why))
            };
            BootEnv::Command {
                activate: get(&b.activate, "activate")?,
                commit: get(&b.commit, "commit")?,
                revert: get(&b.revert, "revert")?,
                state: get(&b.state, "state")?,
            }
        }
    })
}

/// `[backend.rauc]` → the RAUC backend's configuration. `store_dir`
/// (`<data_dir>/mender-bridge`) holds the record of the activated slot and, unless
/// `spool_dir` is set, the spool directory.
pub fn rauc_config(r: &RaucBackendSettings, store_dir: &Path) -> RaucConfig {
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

/// `[backend.swupdate]` → the SWUpdate backend's configuration. `store_dir` holds the
/// spool directory unless `spool_dir` is set; `payload_authenticated`: the bridge checks
/// the artifact signature (`ArtifactVerifyKey(s)` configured).
pub fn swupdate_config(
    s: &SwupdateSettings,
    store_dir: &Path,
    payload_authenticated: bool,
) -> SwupdateConfig {
    SwupdateConfig {
        control_socket: s.control_socket.clone(),
        progress_socket: s.progress_socket.clone(),
        dry_run: s.dry_run,
        software_set: s.software_set.clone(),
        running_mode: s.running_mode.clone(),
        reboot: s.reboot,
        ustate: s.ustate,
        timeout: Duration::from_secs(s.timeout_seconds),
        write_timeout: Duration::from_secs(s.write_timeout_seconds),
        install_timeout: Duration::from_secs(s.install_timeout_seconds),
        busy_retries: s.busy_retries,
        busy_backoff: Duration::from_millis(s.busy_backoff_ms),
        sw_versions_file: s.sw_versions_file.clone(),
        mode: s.mode,
        spool_dir: s
            .spool_dir
            .clone()
            .unwrap_or_else(|| store_dir.join("swupdate-spool")),
        swupdate_uid: s.swupdate_uid,
        payload_authenticated,
    }
}

#[cfg(test)]
mod tests;
