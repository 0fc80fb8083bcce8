//! The merged layers as figment extracts them, before any invariant is checked. Field
//! names are the configuration keys; integers are `i64` so that a negative value is reported
//! by [`super::validate`] in words rather than as a type error. Defaults live here
//! ([`UncheckedConfig::default`]) and become the lowest layer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::keys::KeyType;

pub(crate) const DEFAULT_DATA_DIR: &str = "/var/lib/mender";
pub(crate) const DEFAULT_IDENTITY_SCRIPT: &str =
    "/usr/share/mender/identity/mender-device-identity";
pub(crate) const DEFAULT_INVENTORY_DIR: &str = "/usr/share/mender/inventory";
pub(crate) const DEFAULT_STATE_SCRIPTS_DIR: &str = "/etc/mender/scripts";
pub(crate) const DEFAULT_ARTIFACT_INFO: &str = "/etc/mender/artifact_info";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedConfig {
    pub server_url: Option<String>,
    pub servers: Option<Vec<UncheckedServer>>,
    pub tenant_token: String,
    pub update_poll_interval_seconds: i64,
    pub inventory_poll_interval_seconds: i64,
    pub retry_poll_interval_seconds: i64,
    pub retry_poll_count: i64,
    pub server_certificate: Option<PathBuf>,
    pub skip_verify: bool,
    pub https_client: UncheckedHttpsClient,
    pub security: UncheckedSecurity,
    pub artifact_verify_key: Option<PathBuf>,
    pub artifact_verify_keys: Option<Vec<PathBuf>>,
    pub device_type_file: Option<PathBuf>,
    pub update_log_path: Option<PathBuf>,
    pub daemon_log_level: Option<String>,
    pub module_timeout_seconds: i64,
    pub state_script_timeout_seconds: i64,
    pub state_script_retry_timeout_seconds: i64,
    pub state_script_retry_interval_seconds: i64,
    pub connectivity: UncheckedConnectivity,
    pub update_control_map_expiration_time_seconds: Option<i64>,
    pub update_control_map_boot_expiration_time_seconds: Option<i64>,
    pub dbus: UncheckedDbus,
    pub rootfs_part_a: Option<String>,
    pub rootfs_part_b: Option<String>,
    pub boot_utilities_set_active_part: Option<String>,
    pub boot_utilities_get_next_active_part: Option<String>,

    pub data_dir: PathBuf,
    pub device_key_type: KeyType,
    pub identity_script: PathBuf,
    pub inventory_script_dir: PathBuf,
    pub script_timeout_seconds: i64,
    pub state_scripts_dir: PathBuf,
    pub modules_dir: PathBuf,
    pub artifact_info_file: PathBuf,
    pub reboot_command: Vec<String>,
    pub official_poll_retry: bool,
    pub first_poll_spread: bool,
    pub artifact: UncheckedArtifact,
    pub download: UncheckedDownload,
    pub backend: UncheckedBackend,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedServer {
    pub server_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedHttpsClient {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ssl_engine: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedSecurity {
    pub auth_private_key: Option<PathBuf>,
    pub ssl_engine: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedConnectivity {
    pub disable_keep_alive: Option<bool>,
    pub idle_conn_timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedDbus {
    /// `DBus.Enabled` in mender.conf; `[dbus] enabled` in the bridge's file wins.
    pub enabled: bool,
    pub bus: String,
}

impl Default for UncheckedDbus {
    fn default() -> Self {
        UncheckedDbus {
            // The official client's default.
            enabled: true,
            bus: "system".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedArtifact {
    pub decoder_memory_mib: i64,
    pub header_member_mib: i64,
    pub header_total_mib: i64,
    pub header_file_mib: i64,
    pub header_entries: i64,
    pub max_payload_file_mib: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedDownload {
    pub idle_timeout_seconds: i64,
    pub max_resume_attempts: i64,
    pub backoff_initial_ms: i64,
    pub backoff_max_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedBackend {
    #[serde(rename = "type")]
    pub kind: super::BackendType,
    pub raw: UncheckedRaw,
    pub rauc: UncheckedRauc,
    pub swupdate: super::swupdate::UncheckedSwupdate,
}

/// `[backend.rauc]`: RAUC over D-Bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedRauc {
    pub bus: String,
    pub spool_dir: Option<PathBuf>,
    pub health_check: Option<Vec<String>>,
    pub health_check_timeout_seconds: i64,
    pub call_timeout_seconds: i64,
    pub install_timeout_seconds: i64,
}

/// `[backend.raw]`: the A/B slot writer. Slots have no defaults (they name devices).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedRaw {
    pub cmdline: PathBuf,
    pub active_slot: Option<String>,
    pub verify_readback: bool,
    pub a: UncheckedSlot,
    pub b: UncheckedSlot,
    pub bootenv: UncheckedBootEnv,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedSlot {
    pub device: Option<PathBuf>,
    pub boot_part: Option<i64>,
    pub size: Option<i64>,
    pub root_aliases: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UncheckedBootEnv {
    #[serde(rename = "type")]
    pub kind: super::BootEnvType,
    pub config: Option<PathBuf>,
    pub printenv: PathBuf,
    pub setenv: PathBuf,
    pub env_file: PathBuf,
    pub editenv: PathBuf,
    pub activate: Option<Vec<String>>,
    pub commit: Option<Vec<String>>,
    pub revert: Option<Vec<String>>,
    pub state: Option<Vec<String>>,
}

impl Default for UncheckedConfig {
    fn default() -> Self {
        UncheckedConfig {
            server_url: None,
            servers: None,
            tenant_token: String::new(),
            update_poll_interval_seconds: 1800,
            inventory_poll_interval_seconds: 28800,
            retry_poll_interval_seconds: 300,
            retry_poll_count: 0,
            server_certificate: None,
            skip_verify: false,
            https_client: UncheckedHttpsClient::default(),
            security: UncheckedSecurity::default(),
            artifact_verify_key: None,
            artifact_verify_keys: None,
            device_type_file: None,
            update_log_path: None,
            daemon_log_level: None,
            module_timeout_seconds: 14400,
            state_script_timeout_seconds: 3600,
            state_script_retry_timeout_seconds: 1800,
            state_script_retry_interval_seconds: 60,
            connectivity: UncheckedConnectivity::default(),
            update_control_map_expiration_time_seconds: None,
            update_control_map_boot_expiration_time_seconds: None,
            dbus: UncheckedDbus::default(),
            rootfs_part_a: None,
            rootfs_part_b: None,
            boot_utilities_set_active_part: None,
            boot_utilities_get_next_active_part: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            device_key_type: KeyType::Ed25519,
            identity_script: PathBuf::from(DEFAULT_IDENTITY_SCRIPT),
            inventory_script_dir: PathBuf::from(DEFAULT_INVENTORY_DIR),
            script_timeout_seconds: 30,
            state_scripts_dir: PathBuf::from(DEFAULT_STATE_SCRIPTS_DIR),
            modules_dir: PathBuf::from(mender_bridge_backends::module::DEFAULT_MODULES_DIR),
            artifact_info_file: PathBuf::from(DEFAULT_ARTIFACT_INFO),
            reboot_command: vec!["reboot".to_string()],
            official_poll_retry: false,
            first_poll_spread: true,
            artifact: UncheckedArtifact::default(),
            download: UncheckedDownload::default(),
            backend: UncheckedBackend::default(),
        }
    }
}

impl Default for UncheckedArtifact {
    fn default() -> Self {
        UncheckedArtifact {
            decoder_memory_mib: 128,
            header_member_mib: 16,
            header_total_mib: 16,
            header_file_mib: 1,
            header_entries: 1024,
            max_payload_file_mib: None,
        }
    }
}

impl Default for UncheckedDownload {
    fn default() -> Self {
        UncheckedDownload {
            idle_timeout_seconds: 60,
            max_resume_attempts: 10,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
        }
    }
}

impl Default for UncheckedBackend {
    fn default() -> Self {
        UncheckedBackend {
            kind: super::BackendType::Raw,
            raw: UncheckedRaw::default(),
            rauc: UncheckedRauc::default(),
            swupdate: Default::default(),
        }
    }
}

impl Default for UncheckedRauc {
    fn default() -> Self {
        UncheckedRauc {
            bus: "system".into(),
            spool_dir: None,
            health_check: None,
            health_check_timeout_seconds: 300,
            call_timeout_seconds: 30,
            install_timeout_seconds: 3600,
        }
    }
}

impl Default for UncheckedRaw {
    fn default() -> Self {
        UncheckedRaw {
            cmdline: PathBuf::from("/proc/cmdline"),
            active_slot: None,
            verify_readback: false,
            a: UncheckedSlot::default(),
            b: UncheckedSlot::default(),
            bootenv: UncheckedBootEnv::default(),
        }
    }
}

impl Default for UncheckedBootEnv {
    fn default() -> Self {
        UncheckedBootEnv {
            kind: super::BootEnvType::Uboot,
            config: None,
            printenv: PathBuf::from("fw_printenv"),
            setenv: PathBuf::from("fw_setenv"),
            env_file: PathBuf::from("/boot/grub/grubenv"),
            editenv: PathBuf::from("grub-editenv"),
            activate: None,
            commit: None,
            revert: None,
            state: None,
        }
    }
}
