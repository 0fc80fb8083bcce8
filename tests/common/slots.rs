//! File-backed A/B slots with a real U-Boot environment (mkenvimage + libubootenv's
//! fw_printenv/fw_setenv), for tests of the raw backend through the engine or the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use mender_bridge_backends::raw::{ActiveSlot, BootEnv, RawConfig, SlotConfig, Slots};
use sha2::{Digest, Sha256};

use super::run;

/// A file-backed U-Boot environment in `dir` (`uboot.env`, made by mkenvimage from `vars`,
/// one `name=value` a line) and the `fw_env.config` that points at it; returns the config.
pub fn uboot_env_file(dir: &Path, vars: &str) -> PathBuf {
    std::fs::write(dir.join("env.txt"), vars).unwrap();
    run(Command::new("mkenvimage")
        .args(["-s", "0x4000", "-o"])
        .arg(dir.join("uboot.env"))
        .arg(dir.join("env.txt")));
    let config = dir.join("fw_env.config");
    std::fs::write(
        &config,
        format!("{} 0x0000 0x4000\n", dir.join("uboot.env").display()),
    )
    .unwrap();
    config
}

pub struct SlotRig {
    pub dir: PathBuf,
    pub config: RawConfig,
}

impl SlotRig {
    /// Slots `a` (part 2, running) and `b` (part 3) of `size` bytes under `dir`.
    pub fn new(dir: &Path, size: usize) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("a.img"), vec![0xaa; size]).unwrap();
        std::fs::write(dir.join("b.img"), vec![0xbb; size]).unwrap();
        uboot_env_file(
            dir,
            "mender_boot_part=2\nmender_boot_part_hex=2\nupgrade_available=0\nbootcount=0\n",
        );
        let slot = |name: &str, part| SlotConfig {
            name: name.into(),
            device: dir.join(format!("{name}.img")),
            boot_part: part,
            root_aliases: vec![],
            size: Some(size as u64),
        };
        let rig = SlotRig {
            dir: dir.to_path_buf(),
            config: RawConfig {
                slots: Slots {
                    a: slot("a", 2),
                    b: slot("b", 3),
                    active: ActiveSlot::Cmdline {
                        cmdline: dir.join("cmdline"),
                    },
                },
                bootenv: BootEnv::Uboot {
                    config: Some(dir.join("fw_env.config")),
                    printenv: "fw_printenv".into(),
                    setenv: "fw_setenv".into(),
                },
                verify_readback: true,
            },
        };
        rig.boot_into("a");
        rig
    }

    /// The `[backend.raw]` section of a `mender-bridge.toml` for these slots (U-Boot
    /// environment, running slot from the cmdline file).
    pub fn raw_backend_toml(&self) -> String {
        let size = self.config.slots.a.size.unwrap_or(0);
        let d = &self.dir;
        format!(
            "[backend.raw]\ncmdline = \"{}\"\n\
             [backend.raw.a]\ndevice = \"{}\"\nboot_part = 2\nsize = {size}\n\
             [backend.raw.b]\ndevice = \"{}\"\nboot_part = 3\nsize = {size}\n\
             [backend.raw.bootenv]\ntype = \"uboot\"\nconfig = \"{}\"\n",
            d.join("cmdline").display(),
            d.join("a.img").display(),
            d.join("b.img").display(),
            d.join("fw_env.config").display(),
        )
    }

    /// Writes the kernel command line of a boot into `slot`: a simulated reboot.
    pub fn boot_into(&self, slot: &str) {
        std::fs::write(
            self.dir.join("cmdline"),
            format!(
                "console=ttyS0 root={} rw\n",
                self.dir.join(format!("{slot}.img")).display()
            ),
        )
        .unwrap();
    }

    pub fn env(&self) -> String {
        run(Command::new("fw_printenv")
            .arg("-c")
            .arg(self.dir.join("fw_env.config")))
    }

    pub fn slot_sha256(&self, slot: &str) -> Vec<u8> {
        Sha256::digest(std::fs::read(self.dir.join(format!("{slot}.img"))).unwrap()).to_vec()
    }

    pub fn slot(&self, slot: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(format!("{slot}.img"))).unwrap()
    }
}
