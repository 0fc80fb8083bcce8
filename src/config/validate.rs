//! `UncheckedConfig` → [`Config`]: every invariant checked, each failure naming its key and file.

use std::path::PathBuf;
use std::time::Duration;

use super::settings::{
    ArtifactSettings, BackendSettings, BootEnvSettings, Config, Connectivity, Dbus,
    DownloadSettings, HttpsClient, Mender3, RaucBackendSettings, RawBackendSettings, Secret,
    Security, ServerUrl, SlotSettings,
};
use super::sources::Sources;
use super::swupdate::UncheckedSwupdate;
use super::unchecked::{
    UncheckedArtifact, UncheckedBackend, UncheckedConfig, UncheckedDbus, UncheckedDownload,
    UncheckedRauc, UncheckedSlot,
};
use super::ConfigError;
use super::SwupdateSettings;

/// Largest size setting in MiB (1 TiB): keeps the byte counts far from overflow.
const MAX_MIB: i64 = 1 << 20;

/// Output keys of [`Config`] that were read from another key, for `show-config`.
pub(crate) type Aliases = Vec<(&'static str, &'static str)>;

pub(crate) fn build(
    unchecked: UncheckedConfig,
    src: &Sources,
) -> Result<(Config, Aliases), ConfigError> {
    let mut aliases = Aliases::new();
    let v = Check { src };

    // First: its error path then drops nothing built yet (a smaller default build).
    let dbus = v.dbus(&unchecked.dbus)?;
    let (servers, from) = v.servers(&unchecked)?;
    aliases.push(("servers", from));
    let (artifact_verify_keys, from) = v.verify_keys(&unchecked)?;
    aliases.push(("artifact_verify_keys", from));

    if unchecked.data_dir.as_os_str().is_empty() {
        return Err(src.invalid("data_dir", "must not be empty"));
    }
    let device_type_file = match nonempty(unchecked.device_type_file) {
        Some(p) => p,
        None => {
            aliases.push(("device_type_file", "data_dir"));
            unchecked.data_dir.join("device_type")
        }
    };

    let config = Config {
        servers,
        tenant_token: Secret::new(unchecked.tenant_token),
        update_poll_interval: v.secs(
            "update_poll_interval_seconds",
            unchecked.update_poll_interval_seconds,
        )?,
        inventory_poll_interval: v.secs(
            "inventory_poll_interval_seconds",
            unchecked.inventory_poll_interval_seconds,
        )?,
        retry_poll_interval: v.secs(
            "retry_poll_interval_seconds",
            unchecked.retry_poll_interval_seconds,
        )?,
        retry_poll_count: v.count("retry_poll_count", unchecked.retry_poll_count)?,
        server_certificate: nonempty(unchecked.server_certificate),
        skip_verify: unchecked.skip_verify,
        https_client: HttpsClient {
            certificate: nonempty(unchecked.https_client.certificate),
            key: nonempty(unchecked.https_client.key),
            ssl_engine: unchecked.https_client.ssl_engine.filter(|s| !s.is_empty()),
        },
        security: Security {
            auth_private_key: nonempty(unchecked.security.auth_private_key),
            ssl_engine: unchecked.security.ssl_engine.filter(|s| !s.is_empty()),
        },
        artifact_verify_keys,
        device_type_file,
        update_log_path: nonempty(unchecked.update_log_path),
        daemon_log_level: unchecked.daemon_log_level.filter(|s| !s.is_empty()),
        module_timeout: v.secs("module_timeout_seconds", unchecked.module_timeout_seconds)?,
        state_script_timeout: v.secs(
            "state_script_timeout_seconds",
            unchecked.state_script_timeout_seconds,
        )?,
        state_script_retry_timeout: v.secs(
            "state_script_retry_timeout_seconds",
            unchecked.state_script_retry_timeout_seconds,
        )?,
        state_script_retry_interval: v.secs(
            "state_script_retry_interval_seconds",
            unchecked.state_script_retry_interval_seconds,
        )?,
        mender3: Mender3 {
            connectivity: (unchecked.connectivity.disable_keep_alive.is_some()
                || unchecked.connectivity.idle_conn_timeout_seconds.is_some())
            .then_some(Connectivity {
                disable_keep_alive: unchecked.connectivity.disable_keep_alive,
                idle_conn_timeout_seconds: unchecked.connectivity.idle_conn_timeout_seconds,
            }),
            update_control_map_expiration_time_seconds: unchecked
                .update_control_map_expiration_time_seconds,
            update_control_map_boot_expiration_time_seconds: unchecked
                .update_control_map_boot_expiration_time_seconds,
            rootfs_part_a: unchecked.rootfs_part_a,
            rootfs_part_b: unchecked.rootfs_part_b,
            boot_utilities_set_active_part: unchecked.boot_utilities_set_active_part,
            boot_utilities_get_next_active_part: unchecked.boot_utilities_get_next_active_part,
        },
        data_dir: unchecked.data_dir,
        device_key_type: unchecked.device_key_type,
        identity_script: unchecked.identity_script,
        inventory_script_dir: unchecked.inventory_script_dir,
        script_timeout: v.secs("script_timeout_seconds", unchecked.script_timeout_seconds)?,
        state_scripts_dir: v.path("state_scripts_dir", unchecked.state_scripts_dir)?,
        modules_dir: v.path("modules_dir", unchecked.modules_dir)?,
        artifact_info_file: v.path("artifact_info_file", unchecked.artifact_info_file)?,
        reboot_command: v.argv("reboot_command", unchecked.reboot_command)?,
        official_poll_retry: unchecked.official_poll_retry,
        first_poll_spread: unchecked.first_poll_spread,
        artifact: v.artifact(&unchecked.artifact)?,
        download: v.download(&unchecked.download)?,
        backend: v.backend(unchecked.backend)?,
        dbus,
    };
    Ok((config, aliases))
}

fn nonempty(p: Option<PathBuf>) -> Option<PathBuf> {
    p.filter(|p| !p.as_os_str().is_empty())
}

struct Check<'a> {
    src: &'a Sources,
}

impl Check<'_> {
    fn positive(&self, key: &str, v: i64) -> Result<u64, ConfigError> {
        u64::try_from(v).ok().filter(|&n| n > 0).ok_or_else(|| {
            self.src
                .invalid(key, format!("must be greater than 0, found {v}"))
        })
    }

    fn secs(&self, key: &str, v: i64) -> Result<Duration, ConfigError> {
        self.positive(key, v).map(Duration::from_secs)
    }

    fn millis(&self, key: &str, v: i64) -> Result<Duration, ConfigError> {
        self.positive(key, v).map(Duration::from_millis)
    }

    fn count(&self, key: &str, v: i64) -> Result<u32, ConfigError> {
        u32::try_from(v).map_err(|_| {
            self.src.invalid(
                key,
                format!("must be between 0 and {}, found {v}", u32::MAX),
            )
        })
    }

    fn mib(&self, key: &str, v: i64) -> Result<u64, ConfigError> {
        if v > MAX_MIB {
            return Err(self
                .src
                .invalid(key, format!("must be at most {MAX_MIB}, found {v}")));
        }
        self.positive(key, v)
    }

    /// `ServerURL` or `Servers`: the one set by the higher layer (a single source setting
    /// both is refused before this).
    fn servers(
        &self,
        unchecked: &UncheckedConfig,
    ) -> Result<(Vec<ServerUrl>, &'static str), ConfigError> {
        let single = unchecked.server_url.as_deref().filter(|s| !s.is_empty());
        let use_list = match (single, &unchecked.servers) {
            (Some(_), Some(_)) => self.src.rank("servers") > self.src.rank("server_url"),
            (None, Some(_)) => true,
            _ => false,
        };
        if !use_list {
            let urls = match single {
                Some(s) => {
                    vec![ServerUrl::parse(s).map_err(|m| self.src.invalid("server_url", m))?]
                }
                None => Vec::new(),
            };
            return Ok((urls, "server_url"));
        }
        let mut urls = Vec::new();
        for (i, server) in unchecked.servers.iter().flatten().enumerate() {
            let key = format!("servers.{i}.server_url");
            let raw_url = server
                .server_url
                .as_deref()
                .ok_or_else(|| self.src.invalid(&key, "missing"))?;
            urls.push(ServerUrl::parse(raw_url).map_err(|m| self.src.invalid(&key, m))?);
        }
        Ok((urls, "servers"))
    }

    /// `ArtifactVerifyKey` or `ArtifactVerifyKeys`, like [`Self::servers`].
    fn verify_keys(
        &self,
        unchecked: &UncheckedConfig,
    ) -> Result<(Vec<PathBuf>, &'static str), ConfigError> {
        let single = nonempty(unchecked.artifact_verify_key.clone());
        let use_list = match (&single, &unchecked.artifact_verify_keys) {
            (Some(_), Some(_)) => {
                self.src.rank("artifact_verify_keys") > self.src.rank("artifact_verify_key")
            }
            (None, Some(_)) => true,
            _ => false,
        };
        if !use_list {
            return Ok((single.into_iter().collect(), "artifact_verify_key"));
        }
        let keys = unchecked.artifact_verify_keys.clone().unwrap_or_default();
        if keys.iter().any(|k| k.as_os_str().is_empty()) {
            return Err(self
                .src
                .invalid("artifact_verify_keys", "an entry is an empty path"));
        }
        Ok((keys, "artifact_verify_keys"))
    }

    fn path(&self, key: &str, p: PathBuf) -> Result<PathBuf, ConfigError> {
        if p.as_os_str().is_empty() {
            return Err(self.src.invalid(key, "must not be empty"));
        }
        Ok(p)
    }

    /// A command: a non-empty argv whose program is not empty.
    fn argv(&self, key: &str, v: Vec<String>) -> Result<Vec<String>, ConfigError> {
        if v.first().is_none_or(String::is_empty) {
            return Err(self.src.invalid(
                key,
                "must be a non-empty list: the program, then its arguments",
            ));
        }
        Ok(v)
    }

    fn slot(&self, name: &str, s: UncheckedSlot) -> Result<SlotSettings, ConfigError> {
        let key = |k: &str| format!("backend.raw.{name}.{k}");
        let boot_part = s
            .boot_part
            .map(|p| {
                u32::try_from(p).ok().filter(|&n| n > 0).ok_or_else(|| {
                    self.src.invalid(
                        &key("boot_part"),
                        format!(
                            "must be a partition number from 1 to {}, found {p}",
                            u32::MAX
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(SlotSettings {
            device: s.device.map(|d| self.path(&key("device"), d)).transpose()?,
            boot_part,
            size: s.size.map(|n| self.positive(&key("size"), n)).transpose()?,
            root_aliases: s.root_aliases.unwrap_or_default(),
        })
    }

    fn backend(&self, b: UncheckedBackend) -> Result<BackendSettings, ConfigError> {
        let r = b.raw;
        if let Some(n) = r.active_slot.as_deref() {
            if n != "a" && n != "b" {
                return Err(self.src.invalid(
                    "backend.raw.active_slot",
                    format!("expected \"a\" or \"b\", found {n:?}"),
                ));
            }
        }
        let a = self.slot("a", r.a)?;
        let bs = self.slot("b", r.b)?;
        if a.device.is_some() && a.device == bs.device {
            return Err(self.src.invalid(
                "backend.raw.b.device",
                "must differ from backend.raw.a.device",
            ));
        }
        if a.boot_part.is_some() && a.boot_part == bs.boot_part {
            return Err(self.src.invalid(
                "backend.raw.b.boot_part",
                "must differ from backend.raw.a.boot_part",
            ));
        }
        let e = r.bootenv;
        let cmd = |k: &str, v: Option<Vec<String>>| {
            v.map(|v| self.argv(&format!("backend.raw.bootenv.{k}"), v))
                .transpose()
        };
        let bootenv = BootEnvSettings {
            kind: e.kind,
            config: e
                .config
                .map(|p| self.path("backend.raw.bootenv.config", p))
                .transpose()?,
            printenv: self.path("backend.raw.bootenv.printenv", e.printenv)?,
            setenv: self.path("backend.raw.bootenv.setenv", e.setenv)?,
            env_file: self.path("backend.raw.bootenv.env_file", e.env_file)?,
            editenv: self.path("backend.raw.bootenv.editenv", e.editenv)?,
            activate: cmd("activate", e.activate)?,
            commit: cmd("commit", e.commit)?,
            revert: cmd("revert", e.revert)?,
            state: cmd("state", e.state)?,
        };
        let swupdate = self.swupdate(b.swupdate)?;
        Ok(BackendSettings {
            kind: b.kind,
            rauc: self.rauc(b.rauc)?,
            swupdate,
            raw: RawBackendSettings {
                cmdline: self.path("backend.raw.cmdline", r.cmdline)?,
                active_slot: r.active_slot,
                verify_readback: r.verify_readback,
                a,
                b: bs,
                bootenv,
            },
        })
    }

    fn dbus(&self, d: &UncheckedDbus) -> Result<Dbus, ConfigError> {
        let bus = d.bus.trim();
        if !(bus == "system" || bus == "session" || bus.contains(':')) {
            return Err(self.src.invalid(
                "dbus.bus",
                "must be \"system\", \"session\" or a D-Bus address (unix:path=...)",
            ));
        }
        Ok(Dbus {
            enabled: d.enabled,
            bus: bus.to_string(),
        })
    }

    fn rauc(&self, r: UncheckedRauc) -> Result<RaucBackendSettings, ConfigError> {
        if r.bus.trim().is_empty() {
            return Err(self.src.invalid(
                "backend.rauc.bus",
                "must be \"system\", \"session\" or a D-Bus address",
            ));
        }
        Ok(RaucBackendSettings {
            bus: r.bus,
            spool_dir: r
                .spool_dir
                .map(|p| self.path("backend.rauc.spool_dir", p))
                .transpose()?,
            health_check: r
                .health_check
                .map(|v| self.argv("backend.rauc.health_check", v))
                .transpose()?,
            health_check_timeout: self.secs(
                "backend.rauc.health_check_timeout_seconds",
                r.health_check_timeout_seconds,
            )?,
            call_timeout: self.secs("backend.rauc.call_timeout_seconds", r.call_timeout_seconds)?,
            install_timeout: self.secs(
                "backend.rauc.install_timeout_seconds",
                r.install_timeout_seconds,
            )?,
        })
    }

    fn swupdate(&self, s: UncheckedSwupdate) -> Result<SwupdateSettings, ConfigError> {
        let key = |k: &str| format!("backend.swupdate.{k}");
        let socket = |k: &str, p: Option<PathBuf>| p.map(|p| self.path(&key(k), p)).transpose();
        Ok(SwupdateSettings {
            control_socket: socket("control_socket", s.control_socket)?,
            progress_socket: socket("progress_socket", s.progress_socket)?,
            dry_run: s.dry_run,
            software_set: s.software_set,
            running_mode: s.running_mode,
            reboot: s.reboot,
            ustate: s.ustate,
            timeout_seconds: self.positive(&key("timeout_seconds"), s.timeout_seconds)?,
            write_timeout_seconds: self
                .positive(&key("write_timeout_seconds"), s.write_timeout_seconds)?,
            install_timeout_seconds: self
                .positive(&key("install_timeout_seconds"), s.install_timeout_seconds)?,
            busy_retries: self.count(&key("busy_retries"), s.busy_retries)?,
            busy_backoff_ms: self.positive(&key("busy_backoff_ms"), s.busy_backoff_ms)?,
            sw_versions_file: nonempty(Some(s.sw_versions_file)),
            mode: s.mode,
            spool_dir: s
                .spool_dir
                .map(|p| self.path(&key("spool_dir"), p))
                .transpose()?,
            swupdate_uid: s
                .swupdate_uid
                .map(|u| {
                    u32::try_from(u).map_err(|_| {
                        self.src
                            .invalid(&key("swupdate_uid"), format!("not a user id: {u}"))
                    })
                })
                .transpose()?,
        })
    }

    fn artifact(&self, a: &UncheckedArtifact) -> Result<ArtifactSettings, ConfigError> {
        let entries = self.positive("artifact.header_entries", a.header_entries)?;
        Ok(ArtifactSettings {
            decoder_memory_mib: self.mib("artifact.decoder_memory_mib", a.decoder_memory_mib)?,
            header_member_mib: self.mib("artifact.header_member_mib", a.header_member_mib)?,
            header_total_mib: self.mib("artifact.header_total_mib", a.header_total_mib)?,
            header_file_mib: self.mib("artifact.header_file_mib", a.header_file_mib)?,
            header_entries: usize::try_from(entries)
                .map_err(|_| self.src.invalid("artifact.header_entries", "too large"))?,
            max_payload_file_mib: a
                .max_payload_file_mib
                .map(|m| self.mib("artifact.max_payload_file_mib", m))
                .transpose()?,
        })
    }

    fn download(&self, d: &UncheckedDownload) -> Result<DownloadSettings, ConfigError> {
        let backoff_initial = self.millis("download.backoff_initial_ms", d.backoff_initial_ms)?;
        let backoff_max = self.millis("download.backoff_max_ms", d.backoff_max_ms)?;
        if backoff_max < backoff_initial {
            return Err(self.src.invalid(
                "download.backoff_max_ms",
                format!(
                    "must be at least download.backoff_initial_ms ({}), found {}",
                    d.backoff_initial_ms, d.backoff_max_ms
                ),
            ));
        }
        Ok(DownloadSettings {
            idle_timeout: self.secs("download.idle_timeout_seconds", d.idle_timeout_seconds)?,
            max_resume_attempts: self
                .count("download.max_resume_attempts", d.max_resume_attempts)?,
            backoff_initial,
            backoff_max,
        })
    }
}
