//! The demo's device: two file-backed slots and a boot selection kept in a state file by
//! shell commands (the raw backend's "command" integration), so the demo needs no U-Boot or
//! GRUB tools. A simulated reboot rewrites the kernel command line the backend reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::config::{Config, ConfigPaths};
use crate::deploy::engine::EngineConfig;
use crate::setup::{self, SetupError};
use mender_bridge_backends::Installers;

/// The demo's device: its directory and its configuration, loaded from the `mender.conf`
/// and `mender-bridge.toml` written there, as a device's would be.
pub struct DemoDevice {
    dir: PathBuf,
    config: Config,
}

/// What the device needs to know of the server and the release.
pub struct DeviceSettings<'a> {
    pub server_url: &'a str,
    pub server_ca: &'a Path,
    /// The public key artifacts are signed with (PEM).
    pub verify_key_pem: &'a str,
    pub device_type: &'a str,
    pub slot_size: u64,
}

fn sh(script: String) -> serde_json::Value {
    serde_json::json!(["sh", "-c", script])
}

impl DemoDevice {
    /// Creates the slot files and the boot state, writes the device's configuration and
    /// loads it through the same code a device runs (`Config::load_from`).
    pub fn create(dir: &Path, s: &DeviceSettings<'_>) -> Result<Self, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        for slot in ["a", "b"] {
            let f = std::fs::File::create(dir.join(format!("{slot}.img")))?;
            f.set_len(s.slot_size)?;
        }
        let state = dir.join("bootstate");
        std::fs::write(&state, "mender_boot_part=2\nupgrade_available=0\n")?;
        std::fs::write(
            dir.join("device_type"),
            format!("device_type={}\n", s.device_type),
        )?;
        std::fs::write(dir.join("artifact-verify-key.pem"), s.verify_key_pem)?;
        let st = state.display().to_string();
        let set = |upgrade: u8| {
            sh(format!(
                "printf 'mender_boot_part=%s\\nupgrade_available={upgrade}\\n' \"$0\" > '{st}'"
            ))
        };
        let with_part = |mut argv: serde_json::Value| {
            if let Some(a) = argv.as_array_mut() {
                a.push("{part}".into());
            }
            argv
        };
        let slot = |name: &str, part: u32| {
            serde_json::json!({
                "device": dir.join(format!("{name}.img")),
                "boot_part": part,
                "size": s.slot_size,
            })
        };
        let path = |name: &str| dir.join(name).display().to_string();
        let mender_conf = serde_json::json!({
            "ServerURL": s.server_url,
            "ServerCertificate": s.server_ca,
            "ArtifactVerifyKey": path("artifact-verify-key.pem"),
            "DeviceTypeFile": path("device_type"),
            "StateScriptTimeoutSeconds": 60,
            "StateScriptRetryIntervalSeconds": 1,
            "StateScriptRetryTimeoutSeconds": 10,
        });
        let bridge = serde_json::json!({
            "device_key_type": "ed25519",
            "state_scripts_dir": path("etc-mender-scripts"),
            "artifact_info_file": path("artifact_info"),
            "backend": {
                "type": "raw",
                "raw": {
                    "cmdline": path("cmdline"),
                    "verify_readback": true,
                    "a": slot("a", 2),
                    "b": slot("b", 3),
                    "bootenv": {
                        "type": "command",
                        "activate": with_part(set(1)),
                        "commit": sh(format!(
                            "sed -i 's/upgrade_available=1/upgrade_available=0/' '{st}'"
                        )),
                        "revert": with_part(set(0)),
                        "state": ["cat", st],
                    },
                },
            },
        });
        let paths = ConfigPaths {
            mender_conf: Some(dir.join("mender.conf")),
            bridge_config: Some(dir.join("mender-bridge.toml")),
            data_dir: Some(dir.join("data")),
            fallback_mender_conf: None,
        };
        std::fs::write(dir.join("mender.conf"), mender_conf.to_string())?;
        std::fs::write(dir.join("mender-bridge.toml"), toml::to_string(&bridge)?)?;
        let config = Config::load_from(&paths, Vec::<(String, String)>::new())?.config;
        let dev = DemoDevice {
            dir: dir.to_path_buf(),
            config,
        };
        dev.boot_into("a")?;
        Ok(dev)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configured backend (the raw A/B writer on the two slot files), with the Update
    /// Modules, as the daemon builds it.
    pub fn backend(&self) -> Result<Installers, SetupError> {
        setup::installers(&self.config)
    }

    /// The engine's settings from the configuration, with the waits shortened so the demo
    /// runs in a second: progress every second, retried reports after 200 ms.
    pub fn engine_config(&self) -> Result<EngineConfig, SetupError> {
        Ok(EngineConfig {
            retry_initial: Duration::from_millis(200),
            retry_cap: Duration::from_secs(5),
            progress_interval: Duration::from_secs(1),
            ..setup::engine_config(&self.config)?
        })
    }

    /// The kernel command line of a boot into `slot`.
    pub fn boot_into(&self, slot: &str) -> std::io::Result<()> {
        std::fs::write(
            self.dir.join("cmdline"),
            format!("root={}\n", self.dir.join(format!("{slot}.img")).display()),
        )
    }

    /// What a bootloader does when the new slot fails: back to part 2, no trial, boot a.
    pub fn fall_back(&self) -> std::io::Result<()> {
        std::fs::write(
            self.dir.join("bootstate"),
            "mender_boot_part=2\nupgrade_available=0\n",
        )?;
        self.boot_into("a")
    }

    /// Which slot runs and what each holds (SHA-256 prefixes).
    pub fn describe(&self) -> std::io::Result<String> {
        let cmdline = std::fs::read_to_string(self.dir.join("cmdline"))?;
        let running = if cmdline.contains("b.img") { "b" } else { "a" };
        let mut parts = vec![format!("running {running}")];
        for slot in ["a", "b"] {
            let data = std::fs::read(self.dir.join(format!("{slot}.img")))?;
            let blank = data.iter().all(|b| *b == 0);
            let h = hex::encode(&Sha256::digest(&data)[..6]);
            parts.push(format!(
                "{slot}: {}",
                if blank {
                    "untouched (blank)".to_string()
                } else {
                    format!("sha256 {h}…")
                }
            ));
        }
        Ok(parts.join("; "))
    }
}
