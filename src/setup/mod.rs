//! Configuration → parts: the one place where a loaded [`Config`] becomes the settings of
//! each part the daemon and the commands run — the store, the device key, the identity
//! and inventory, the API client, the backend and the engine. The parts themselves know
//! nothing of `Config`: the flow is one way, from here down. Every failure is a
//! [`SetupError`] naming the setting or file, raised at start, before any work begins.
//!
//! Paths (all under `data_dir`, `/var/lib/mender` by default):
//! - `<data_dir>/mender-bridge/`: the deployment store ([`Store`]) and the daemon's pid file;
//! - `<data_dir>/mender-agent.pem`: the device key, unless `Security.AuthPrivateKey` names one;
//! - `<data_dir>/scripts/`: state scripts stored from an artifact.

use std::path::PathBuf;
use std::time::Duration;

mod backend;
mod client;
mod identity;

pub use backend::{backend, installers, module_config, rauc_config, raw_config, swupdate_config};
pub use client::client_config;
pub use identity::{identity, inventory_scripts, script_limits};

use crate::client::{Client, ClientError};
use crate::config::{Config, ConfigError};
#[cfg(feature = "dbus")]
use crate::daemon::dbus::Bus;
use crate::daemon::dbus::DbusSettings;
use crate::daemon::plan::PlanSettings;
use crate::daemon::schedule::RetryPolicy;
use crate::daemon::{DaemonParts, DaemonSettings, SHUTDOWN_GRACE};
use crate::deploy::engine::{Engine, EngineConfig};
use crate::deploy::scripts::ScriptRunner;
use crate::deploy::standalone::Standalone;
use crate::deploy::store::Store;
use crate::identity::{read_device_type, DeviceTypeError, IdentityError};
use crate::keys::{DeviceKey, KeyError};
use mender_artifact::{ReadOptions, VerifyKey};
use mender_bridge_backends::Installers;

/// Progress substates: at most one every 5 s unless the percentage moved by 10.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
const PROGRESS_STEP: u8 = 10;
/// The first wait of a retried report (then doubling to `RetryPollIntervalSeconds`).
const REPORT_RETRY_INITIAL: Duration = Duration::from_secs(60);

/// Why the bridge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The configured backend is a feature this binary was built without.
    #[error("backend.type = \"{0}\": this build has no {0} backend; build with `--features {0}`")]
    NotBuilt(&'static str),
    #[error("{0}")]
    DeviceType(#[from] DeviceTypeError),
    #[error("ArtifactVerifyKey: {0}")]
    VerifyKey(#[from] mender_artifact::KeyError),
    #[error("device key: {0}")]
    DeviceKey(#[from] KeyError),
    #[error("device identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("no server configured: set ServerURL (or Servers) in mender.conf; the daemon needs one (install, commit and rollback do not)")]
    NoServer,
    #[error("API client: {0}")]
    Client(#[from] ClientError),
}

/// `<data_dir>/mender-bridge`: the store's directory.
pub fn store_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("mender-bridge")
}

/// The deployment store of this configuration.
pub fn store(cfg: &Config) -> Store {
    Store::new(store_dir(cfg))
}

/// Where the daemon writes its process id (read by `check-update` and `send-inventory`).
pub fn pid_file(cfg: &Config) -> PathBuf {
    store_dir(cfg).join("daemon.pid")
}

/// The artifact reader's options: `ArtifactVerifyKey(s)` (each file loaded now; with
/// any, unsigned artifacts are refused) and the `[artifact]` limits.
pub fn read_options(cfg: &Config) -> Result<ReadOptions, SetupError> {
    let verify_keys = cfg
        .artifact_verify_keys
        .iter()
        .map(|p| VerifyKey::from_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReadOptions {
        verify_keys,
        limits: cfg.artifact.limits(),
    })
}

/// State scripts: `state_scripts_dir` for Idle/Sync/Download, `<data_dir>/scripts` for
/// the artifact's, with the `StateScript*` timeouts.
pub fn script_runner(cfg: &Config) -> ScriptRunner {
    ScriptRunner {
        rootfs_dir: cfg.state_scripts_dir.clone(),
        artifact_dir: cfg.data_dir.join("scripts"),
        timeout: cfg.state_script_timeout,
        retry_interval: cfg.state_script_retry_interval,
        retry_timeout: cfg.state_script_retry_timeout,
    }
}

/// The engine's settings. Reads the device type (`DeviceTypeFile`) and the verify keys.
pub fn engine_config(cfg: &Config) -> Result<EngineConfig, SetupError> {
    Ok(EngineConfig {
        device_type: read_device_type(&cfg.device_type_file)?,
        read: read_options(cfg)?,
        scripts: script_runner(cfg),
        artifact_info: cfg.artifact_info_file.clone(),
        retry_initial: REPORT_RETRY_INITIAL.min(cfg.retry_poll_interval),
        retry_cap: cfg.retry_poll_interval,
        progress_interval: PROGRESS_INTERVAL,
        progress_step: PROGRESS_STEP,
    })
}

/// The device key: `Security.AuthPrivateKey` if set (it must exist), else
/// `<data_dir>/mender-agent.pem`, generated as `device_key_type` when missing.
pub fn device_key(cfg: &Config) -> Result<DeviceKey, SetupError> {
    if let Some(path) = &cfg.security.auth_private_key {
        return Ok(DeviceKey::load(path)?);
    }
    let path = cfg.data_dir.join("mender-agent.pem");
    Ok(DeviceKey::load_or_generate(&path, cfg.device_key_type)?.0)
}

/// The API client: servers, TLS and backoffs from the configuration; the key and the
/// identity (script or MAC) loaded now.
pub async fn client(cfg: &Config) -> Result<Client, SetupError> {
    if cfg.servers.is_empty() {
        return Err(SetupError::NoServer);
    }
    let key = device_key(cfg)?;
    let identity = identity(cfg).await?;
    Ok(Client::new(
        client_config(cfg),
        key,
        &identity.to_json_map(),
    )?)
}

/// Everything the daemon runs: the engine over the configured backend. Configuration
/// errors (backend, device type, verify keys) come before the key is loaded or made.
pub async fn engine(cfg: &Config) -> Result<Engine<Installers>, SetupError> {
    if cfg.servers.is_empty() {
        return Err(SetupError::NoServer);
    }
    let backend = installers(cfg)?;
    let engine_cfg = engine_config(cfg)?;
    let client = client(cfg).await?;
    Ok(Engine::new(client, store(cfg), backend, engine_cfg))
}

/// The daemon's timing and reboot settings: `UpdatePollIntervalSeconds`,
/// `InventoryPollIntervalSeconds`, `RetryPollIntervalSeconds` / `RetryPollCount`,
/// `reboot_command`.
pub fn daemon_settings(cfg: &Config) -> DaemonSettings {
    DaemonSettings {
        schedule: PlanSettings {
            update_interval: cfg.update_poll_interval,
            inventory_interval: cfg.inventory_poll_interval,
            retry: RetryPolicy {
                cap: cfg.retry_poll_interval,
                count: cfg.retry_poll_count,
                official: cfg.official_poll_retry,
            },
            first_poll_spread: cfg.first_poll_spread,
        },
        reboot_command: cfg.reboot_command.clone(),
        shutdown_grace: SHUTDOWN_GRACE,
        dbus: DbusSettings {
            enabled: cfg.dbus.enabled,
            #[cfg(feature = "dbus")]
            bus: Bus::parse(&cfg.dbus.bus),
        },
    }
}

/// What the daemon runs: the engine, the Idle/Sync scripts, the store and the inventory
/// scripts.
pub async fn daemon_parts(cfg: &Config) -> Result<DaemonParts, SetupError> {
    Ok(DaemonParts {
        engine: engine(cfg).await?,
        scripts: script_runner(cfg),
        store: store(cfg),
        inventory: inventory_scripts(cfg),
    })
}

/// The standalone `install` / `commit` / `rollback` over the configured store and backend.
pub fn standalone(cfg: &Config) -> Result<Standalone<Installers>, SetupError> {
    Ok(Standalone::new(
        store(cfg),
        installers(cfg)?,
        engine_config(cfg)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, toml: &str) -> Config {
        crate::config::testing::load_in(dir, r#"{"ServerURL":"https://mender.example"}"#, toml)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn backends_by_type() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = config(dir.path(), "[backend]\ntype = \"swupdate\"\n");
        #[cfg(feature = "swupdate")]
        assert!(matches!(
            backend(&c),
            Ok(mender_bridge_backends::AnyBackend::Swupdate(_))
        ));
        #[cfg(not(feature = "swupdate"))]
        assert_eq!(
            backend(&c).err().map(|e| e.to_string()).unwrap_or_default(),
            "backend.type = \"swupdate\": this build has no swupdate backend; build with `--features swupdate`"
        );
        let c = config(dir.path(), "[backend]\ntype = \"rauc\"\n");
        #[cfg(feature = "rauc")]
        match backend(&c) {
            Ok(mender_bridge_backends::AnyBackend::Rauc(b)) => {
                assert_eq!(b.config().state_dir, store_dir(&c));
                assert_eq!(b.config().spool_dir, store_dir(&c).join("rauc-spool"));
            }
            other => panic!("expected the RAUC backend: {other:?}"),
        }
        #[cfg(not(feature = "rauc"))]
        assert!(backend(&c)
            .err()
            .is_some_and(|e| e.to_string().contains("--features rauc")));
        let c = config(dir.path(), "");
        let e = backend(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("backend.raw.a.device is not set"), "{e}");
        // No slots at all: a device that takes Update Modules only.
        let i = installers(&c).unwrap_or_else(|e| panic!("{e}"));
        assert!(i.builtin().is_none());
        assert_eq!(i.modules().work_dir, c.data_dir.join("modules/v3"));
        assert_eq!(i.modules().modules_dir, c.modules_dir);
        let c = crate::config::testing::load_in(
            dir.path(),
            r#"{"ServerURL":"https://mender.example","ModuleTimeoutSeconds":7}"#,
            "modules_dir = \"/m\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = module_config(&c);
        assert_eq!(m.timeout, Duration::from_secs(7), "ModuleTimeoutSeconds");
        assert_eq!(m.modules_dir, std::path::Path::new("/m"));
        // Half a slot is a mistake, not a choice.
        let c = config(dir.path(), "[backend.raw.a]\ndevice = \"/x\"\n");
        let e = installers(&c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("backend.raw.a.boot_part is not set"), "{e}");
    }

    #[test]
    fn engine_settings_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        let c = config(d, "state_scripts_dir = \"/s\"\n");
        let e = engine_config(&c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("device_type"),
            "a missing device type is named: {e}"
        );
        std::fs::write(d.join("device_type"), "device_type=beaglebone\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let ec = engine_config(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ec.device_type, "beaglebone");
        assert_eq!(ec.scripts.rootfs_dir, std::path::Path::new("/s"));
        assert_eq!(ec.scripts.artifact_dir, d.join("scripts"));
        assert_eq!(ec.scripts.timeout, Duration::from_secs(3600));
        assert_eq!(ec.retry_cap, Duration::from_secs(300));
        assert_eq!(ec.retry_initial, Duration::from_secs(60));
        assert_eq!(
            ec.artifact_info,
            std::path::Path::new("/etc/mender/artifact_info")
        );
        assert!(ec.read.verify_keys.is_empty());
        assert_eq!(store_dir(&c), d.join("mender-bridge"));
    }

    #[test]
    fn the_device_key_is_made_once_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = config(dir.path(), "device_key_type = \"p256\"\n");
        let k1 = device_key(&c).unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.path().join("mender-agent.pem").exists());
        let k2 = device_key(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k1.public_key_pem().ok(), k2.public_key_pem().ok());
        let mut c2 = c.clone();
        c2.security.auth_private_key = Some(dir.path().join("absent.pem"));
        assert!(device_key(&c2).is_err(), "a configured key must exist");
    }
}
