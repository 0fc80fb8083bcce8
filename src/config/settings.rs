//! The validated configuration: what the rest of the bridge reads. Every value here has
//! passed [`super::validate`]; the invariants are stated on each field.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

pub use super::backend::{
    BackendSettings, BackendType, BootEnvSettings, BootEnvType, RaucBackendSettings,
    RawBackendSettings, SlotSettings,
};

use crate::keys::KeyType;
use mender_artifact::Limits;

/// The effective configuration. Built by [`Config::load`](super::Config::load) from
/// defaults < `mender.conf` < `mender-bridge.toml` < environment < command line.
///
/// Serialises (for `show-config`) under the configuration keys, durations in the unit their
/// key names, the tenant token redacted.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Servers to try in order (`ServerURL`, or each `Servers[].ServerURL`): http(s) URLs
    /// with a host, no query or fragment, trailing `/` stripped. Empty when none is
    /// configured (the official client then runs standalone only).
    pub servers: Vec<ServerUrl>,
    /// `TenantToken` (default empty). Never logged; see [`Secret`].
    pub tenant_token: Secret,
    /// `UpdatePollIntervalSeconds` (1800); > 0.
    #[serde(rename = "update_poll_interval_seconds", serialize_with = "secs")]
    pub update_poll_interval: Duration,
    /// `InventoryPollIntervalSeconds` (28800); > 0.
    #[serde(rename = "inventory_poll_interval_seconds", serialize_with = "secs")]
    pub inventory_poll_interval: Duration,
    /// `RetryPollIntervalSeconds` (300): the cap of the authentication backoff and of the
    /// status reports' retries, and with `official_poll_retry` of the polls'; > 0.
    #[serde(rename = "retry_poll_interval_seconds", serialize_with = "secs")]
    pub retry_poll_interval: Duration,
    /// `RetryPollCount` (0 = the official client's algorithmic limit); >= 0.
    pub retry_poll_count: u32,
    /// `ServerCertificate`: an extra trusted CA or server certificate (PEM file), added to
    /// the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<PathBuf>,
    /// `SkipVerify` (false): disables TLS verification. For tests only.
    pub skip_verify: bool,
    /// `HttpsClient`: the mTLS client certificate.
    pub https_client: HttpsClient,
    /// `Security`: the auth signing key, if not the one in the data dir.
    pub security: Security,
    /// `ArtifactVerifyKey` or `ArtifactVerifyKeys` (only one may be set in a file): public
    /// keys for `manifest.sig`. Non-empty means unsigned artifacts are refused.
    pub artifact_verify_keys: Vec<PathBuf>,
    /// `DeviceTypeFile` (default `<data_dir>/device_type`).
    pub device_type_file: PathBuf,
    /// `UpdateLogPath` (default: the data dir). Accepted; not used by the bridge yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_log_path: Option<PathBuf>,
    /// `DaemonLogLevel`. Accepted; the bridge's own `-l` / `RUST_LOG` decide for now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_log_level: Option<String>,
    /// `ModuleTimeoutSeconds` (14400); > 0.
    #[serde(rename = "module_timeout_seconds", serialize_with = "secs")]
    pub module_timeout: Duration,
    /// `StateScriptTimeoutSeconds` (3600); > 0.
    #[serde(rename = "state_script_timeout_seconds", serialize_with = "secs")]
    pub state_script_timeout: Duration,
    /// `StateScriptRetryTimeoutSeconds` (1800); > 0.
    #[serde(rename = "state_script_retry_timeout_seconds", serialize_with = "secs")]
    pub state_script_retry_timeout: Duration,
    /// `StateScriptRetryIntervalSeconds` (60); > 0.
    #[serde(
        rename = "state_script_retry_interval_seconds",
        serialize_with = "secs"
    )]
    pub state_script_retry_interval: Duration,
    /// Keys only Mender 3.x knows (update control maps, D-Bus, A/B partitions, boot
    /// utilities, connectivity): parsed and type-checked so an old `mender.conf` loads
    /// without warnings, not used.
    #[serde(flatten)]
    pub mender3: Mender3,

    /// `data_dir` (`/var/lib/mender`, or `-d`): the official client's data store.
    pub data_dir: PathBuf,
    /// `device_key_type` (`ed25519`; `rsa3072`, `p256`): the kind of key generated when the
    /// device has none.
    pub device_key_type: KeyType,
    /// `identity_script` (`/usr/share/mender/identity/mender-device-identity`); without it
    /// the identity is the first interface's MAC address.
    pub identity_script: PathBuf,
    /// `inventory_script_dir` (`/usr/share/mender/inventory`): `mender-inventory-*` run from
    /// here.
    pub inventory_script_dir: PathBuf,
    /// `script_timeout_seconds` (30): how long one identity or inventory script may run; > 0.
    #[serde(rename = "script_timeout_seconds", serialize_with = "secs")]
    pub script_timeout: Duration,
    /// `state_scripts_dir` (`/etc/mender/scripts`): the rootfs state scripts (`Idle`,
    /// `Sync`, `Download`). Artifact scripts are kept in `<data_dir>/scripts`.
    pub state_scripts_dir: PathBuf,
    /// `modules_dir` (`/usr/share/mender/modules/v3`): the Update Modules, one executable
    /// per payload type; their file tree is kept in `<data_dir>/modules/v3`.
    pub modules_dir: PathBuf,
    /// `artifact_info_file` (`/etc/mender/artifact_info`): `artifact_name=` of a device
    /// whose store has no installed artifact yet.
    pub artifact_info_file: PathBuf,
    /// `reboot_command` (`["reboot"]`): argv run by the daemon when an update needs a
    /// reboot; not empty.
    pub reboot_command: Vec<String>,
    /// `official_poll_retry` (false): a failed update check or inventory is retried on the
    /// official client's backoff instead of at the next regular poll.
    pub official_poll_retry: bool,
    /// `first_poll_spread` (true): the daemon's first update check and inventory after it
    /// starts come at a random time within the update interval.
    pub first_poll_spread: bool,
    /// `[artifact]`: the reader's memory bounds.
    pub artifact: ArtifactSettings,
    /// `[download]`: resume and timeouts of the artifact download.
    pub download: DownloadSettings,
    /// `[backend]`: which installer receives the payload.
    pub backend: BackendSettings,
    /// `[dbus]` (`DBus`): the token API for the add-ons.
    pub dbus: Dbus,
}

/// A Mender server's base URL: `http` or `https`, with a host, no query or fragment, no
/// trailing `/` (API paths are appended: `{url}/api/devices/v1/...`). A path prefix is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ServerUrl(String);

impl ServerUrl {
    /// Checks `raw` and strips trailing slashes. The error says what is wrong.
    pub fn parse(raw: &str) -> Result<ServerUrl, String> {
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("expected an http(s) URL, found an empty string".into());
        }
        let url = url::Url::parse(trimmed).map_err(|e| format!("not a URL ({e}): {raw:?}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "expected an http or https URL, found scheme {:?}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("the URL has no host: {raw:?}"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("the URL may not have a query or fragment: {raw:?}"));
        }
        Ok(ServerUrl(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` + `path` (`path` starts with `/`, e.g. `/api/devices/v1/...`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret string (the tenant token). `Debug`, `Display` and `Serialize` show
/// `<redacted>` (or nothing when empty); only [`Secret::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (the auth request body).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            "<redacted>"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.shown())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// `HttpsClient{Certificate, Key, SSLEngine}`: the client certificate for mTLS. `key` may
/// also sign auth requests when `Security.AuthPrivateKey` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HttpsClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Accepted; OpenSSL engines are not supported by the bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_engine: Option<String>,
}

/// `Security{AuthPrivateKey, SSLEngine}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Security {
    /// The auth signing key file, instead of `<data_dir>/mender-agent.pem`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_private_key: Option<PathBuf>,
    /// Accepted; OpenSSL engines are not supported by the bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_engine: Option<String>,
}

/// Mender 3.x-only keys, accepted and not used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mender3 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Connectivity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_control_map_expiration_time_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_control_map_boot_expiration_time_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs_part_a: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs_part_b: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_utilities_set_active_part: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_utilities_get_next_active_part: Option<String>,
}

/// `[dbus]` (mender.conf's `DBus`): the D-Bus token API for the Mender add-ons.
/// Invariant (checked at load): `bus` is `system`, `session` or an address with a `:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dbus {
    /// `DBus.Enabled` / `enabled` (true, as the official client).
    pub enabled: bool,
    /// `bus` (`system`): `system` (honours `DBUS_SYSTEM_BUS_ADDRESS`), `session`, or a
    /// D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    pub bus: String,
}

/// `Connectivity{DisableKeepAlive, IdleConnTimeoutSeconds}` (Mender 3.x).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Connectivity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_keep_alive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_conn_timeout_seconds: Option<i64>,
}

/// `[artifact]`: bounds of the artifact reader, in MiB unless named otherwise. Each > 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactSettings {
    /// `decoder_memory_mib` (128): xz memory limit and largest zstd window.
    pub decoder_memory_mib: u64,
    /// `header_member_mib` (16): a compressed `header.tar*`.
    pub header_member_mib: u64,
    /// `header_total_mib` (16): all decompressed bytes of one header tar.
    pub header_total_mib: u64,
    /// `header_file_mib` (1): one file inside the header tar.
    pub header_file_mib: u64,
    /// `header_entries` (1024): entries in one header tar.
    pub header_entries: usize,
    /// `max_payload_file_mib` (unset = no limit): the largest payload file accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payload_file_mib: Option<u64>,
}

impl ArtifactSettings {
    /// The reader's [`Limits`] (fields not configurable keep their defaults).
    pub fn limits(&self) -> Limits {
        const MIB: u64 = 1024 * 1024;
        Limits {
            header_member: self.header_member_mib * MIB,
            header_total: self.header_total_mib * MIB,
            header_file: self.header_file_mib * MIB,
            header_entries: self.header_entries,
            decoder_memory: self.decoder_memory_mib * MIB,
            payload_file: self.max_payload_file_mib.map(|m| m * MIB),
            ..Limits::default()
        }
    }
}

/// `[download]`: the artifact download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadSettings {
    /// `idle_timeout_seconds` (60): the longest wait for the next bytes of a read; > 0.
    #[serde(rename = "idle_timeout_seconds", serialize_with = "secs")]
    pub idle_timeout: Duration,
    /// `max_resume_attempts` (10): resumes with `Range` after a drop before giving up; 0 =
    /// none.
    pub max_resume_attempts: u32,
    /// `backoff_initial_ms` (1000): the first wait before a resume, doubled each time; > 0.
    #[serde(rename = "backoff_initial_ms", serialize_with = "millis")]
    pub backoff_initial: Duration,
    /// `backoff_max_ms` (60000): the longest wait between resumes; >= `backoff_initial_ms`.
    #[serde(rename = "backoff_max_ms", serialize_with = "millis")]
    pub backoff_max: Duration,
}

pub(super) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let ok = |s: &str| ServerUrl::parse(s).map(|u| u.to_string());
        assert_eq!(
            ok("https://hosted.mender.io/"),
            Ok("https://hosted.mender.io".into())
        );
        assert_eq!(
            ok("http://10.0.0.1:8080/mender//"),
            Ok("http://10.0.0.1:8080/mender".into())
        );
        assert!(ok("ftp://x").is_err_and(|e| e.contains("ftp")));
        assert!(ok("docker.mender.io").is_err());
        assert!(ok("").is_err());
        assert!(ok("https://a/?x=1").is_err());
        assert_eq!(
            ServerUrl::parse("https://a/").map(|u| u.join("/api/devices/v1/x")),
            Ok("https://a/api/devices/v1/x".into())
        );
    }

    #[test]
    fn secrets_stay_hidden() {
        let s = Secret::new("tok-123");
        assert_eq!(format!("{s} {s:?}"), "<redacted> Secret(\"<redacted>\")");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"<redacted>\"")
        );
        assert_eq!(s.expose(), "tok-123");
        assert_eq!(Secret::default().to_string(), "");
    }
}
