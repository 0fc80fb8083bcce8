//! The demo's device: two file-backed slots and a boot selection kept in a state file by
//! shell commands (the raw backend's "command" integration), so the demo needs no U-Boot or
//! GRUB tools. A simulated reboot rewrites the kernel command line the backend reads.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use mender_bridge_backends::raw::{ActiveSlot, BootEnv, RawBackend, RawConfig, SlotConfig, Slots};

pub struct DemoDevice {
    dir: PathBuf,
    config: RawConfig,
}

fn sh(script: String) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script]
}

impl DemoDevice {
    pub fn create(dir: &Path, slot_size: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for slot in ["a", "b"] {
            let f = std::fs::File::create(dir.join(format!("{slot}.img")))?;
            f.set_len(slot_size)?;
        }
        let state = dir.join("bootstate");
        std::fs::write(&state, "mender_boot_part=2\nupgrade_available=0\n")?;
        let st = state.display().to_string();
        let set = |upgrade: u8| {
            sh(format!(
                "printf 'mender_boot_part=%s\\nupgrade_available={upgrade}\\n' \"$0\" > '{st}'"
            ))
        };
        let with_part = |mut argv: Vec<String>| {
            argv.push("{part}".into());
            argv
        };
        let slot = |name: &str, part| SlotConfig {
            name: name.into(),
            device: dir.join(format!("{name}.img")),
            boot_part: part,
            root_aliases: vec![],
            size: Some(slot_size),
        };
        let dev = DemoDevice {
            dir: dir.to_path_buf(),
            config: RawConfig {
                slots: Slots {
                    a: slot("a", 2),
                    b: slot("b", 3),
                    active: ActiveSlot::Cmdline {
                        cmdline: dir.join("cmdline"),
                    },
                },
                bootenv: BootEnv::Command {
                    activate: with_part(set(1)),
                    commit: sh(format!(
                        "sed -i 's/upgrade_available=1/upgrade_available=0/' '{st}'"
                    )),
                    revert: with_part(set(0)),
                    state: vec!["cat".into(), st],
                },
                verify_readback: true,
            },
        };
        dev.boot_into("a")?;
        Ok(dev)
    }

    pub fn backend(&self) -> RawBackend {
        RawBackend::new(self.config.clone())
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
