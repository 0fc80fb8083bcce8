//! The raw A/B backend on file-backed slots, with the real bootloader tools: libubootenv's
//! `fw_setenv`/`fw_printenv` on a file-backed U-Boot environment made by `mkenvimage`, and
//! `grub-editenv`. The running slot must never change; the other one must hold exactly the
//! image; the environment must switch only after a verified write.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use mender_bridge_backends::raw::{ActiveSlot, BootEnv, RawBackend, RawConfig, SlotConfig, Slots};
use mender_bridge_backends::{
    Activation, Backend, BackendError, PayloadInfo, Progress, ProgressSink,
};
use sha2::{Digest, Sha256};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install test deps: scripts/setup-test-deps.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Rig {
    dir: tempfile::TempDir,
    config: RawConfig,
}

impl Rig {
    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    /// Two 4 MiB file slots (a = part 2, running; b = part 3), a cmdline, and a U-Boot or
    /// GRUB environment that boots part 2.
    fn new(grub: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.img"), vec![0xaa; 4 << 20]).unwrap();
        std::fs::write(d.join("b.img"), vec![0xbb; 4 << 20]).unwrap();
        std::fs::write(
            d.join("cmdline"),
            format!("console=ttyS0 root={} rw\n", d.join("a.img").display()),
        )
        .unwrap();
        let bootenv = if grub {
            let env = d.join("grubenv");
            run(Command::new("grub-editenv").arg(&env).arg("create"));
            run(Command::new("grub-editenv").arg(&env).args([
                "set",
                "mender_boot_part=2",
                "upgrade_available=0",
            ]));
            BootEnv::Grub {
                env_file: env,
                editenv: "grub-editenv".into(),
            }
        } else {
            std::fs::write(d.join("env.txt"), "bootcmd=run mender_boot\nmender_boot_part=2\nmender_boot_part_hex=2\nupgrade_available=0\nbootcount=0\n").unwrap();
            run(Command::new("mkenvimage")
                .args(["-s", "0x4000", "-o"])
                .arg(d.join("uboot.env"))
                .arg(d.join("env.txt")));
            std::fs::write(
                d.join("fw_env.config"),
                format!("{} 0x0000 0x4000\n", d.join("uboot.env").display()),
            )
            .unwrap();
            BootEnv::Uboot {
                config: Some(d.join("fw_env.config")),
                printenv: "fw_printenv".into(),
                setenv: "fw_setenv".into(),
            }
        };
        let slot = |name: &str, part| SlotConfig {
            name: name.into(),
            device: d.join(format!("{name}.img")),
            boot_part: part,
            root_aliases: vec![],
            size: Some(4 << 20),
        };
        let config = RawConfig {
            slots: Slots {
                a: slot("a", 2),
                b: slot("b", 3),
                active: ActiveSlot::Cmdline {
                    cmdline: d.join("cmdline"),
                },
            },
            bootenv,
            verify_readback: true,
        };
        Rig { dir, config }
    }

    fn env(&self) -> String {
        match &self.config.bootenv {
            BootEnv::Uboot { config, .. } => run(Command::new("fw_printenv")
                .arg("-c")
                .arg(config.as_ref().unwrap())),
            BootEnv::Grub { env_file, .. } => {
                run(Command::new("grub-editenv").arg(env_file).arg("list"))
            }
            BootEnv::Command { state, .. } => run(Command::new(&state[0]).args(&state[1..])),
        }
    }

    fn reboot_into(&self, slot: &str) {
        std::fs::write(
            self.path("cmdline"),
            format!("root={}\n", self.path(&format!("{slot}.img")).display()),
        )
        .unwrap();
    }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

fn info(img: &[u8]) -> PayloadInfo {
    PayloadInfo {
        payload_type: "rootfs-image".into(),
        file_name: "rootfs.ext4".into(),
        size: img.len() as u64,
        sha256: Sha256::digest(img).into(),
    }
}

async fn install(
    b: &mut RawBackend,
    img: &[u8],
    info: &PayloadInfo,
) -> Result<Activation, BackendError> {
    b.begin(info).await?;
    for c in img.chunks(128 * 1024) {
        b.write(Bytes::copy_from_slice(c)).await?;
    }
    b.finish(&NoProgress).await
}

fn sha(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

async fn full_cycle(grub: bool) {
    let rig = Rig::new(grub);
    let a_before = sha(&rig.path("a.img"));
    let img = image(3 << 20 | 12345);
    let mut b = RawBackend::new(rig.config.clone());
    assert_eq!(
        install(&mut b, &img, &info(&img)).await.unwrap(),
        Activation::RebootRequired
    );
    assert_eq!(
        sha(&rig.path("a.img")),
        a_before,
        "the running slot is untouched"
    );
    let slot_b = std::fs::read(rig.path("b.img")).unwrap();
    assert_eq!(&slot_b[..img.len()], &img[..], "slot b holds the image");
    let env = rig.env();
    for want in ["mender_boot_part=3", "upgrade_available=1", "bootcount=0"] {
        assert!(env.contains(want), "{want} missing in:\n{env}");
    }
    if !grub {
        assert!(env.contains("mender_boot_part_hex=3"), "{env}");
    }
    // Not rebooted yet: not running the new slot.
    assert!(!b.verify_reboot().await.unwrap());
    assert!(
        b.commit().await.is_err(),
        "commit refused while still on the old slot"
    );
    // Reboot into b: verified, committed.
    rig.reboot_into("b");
    let mut after = RawBackend::new(rig.config.clone());
    assert!(after.verify_reboot().await.unwrap());
    after.commit().await.unwrap();
    assert!(rig.env().contains("upgrade_available=0"));
    let inv = after.inventory().await;
    assert!(
        inv.iter()
            .any(|(k, v)| k == "rootfs_active_slot" && v == "b"),
        "{inv:?}"
    );
}

#[tokio::test]
async fn uboot_install_reboot_commit() {
    full_cycle(false).await;
}

#[tokio::test]
async fn grub_install_reboot_commit() {
    full_cycle(true).await;
}

#[tokio::test]
async fn bootloader_fallback_is_detected_and_rollback_restores_the_old_slot() {
    let rig = Rig::new(false);
    let img = image(1 << 20);
    let mut b = RawBackend::new(rig.config.clone());
    install(&mut b, &img, &info(&img)).await.unwrap();
    // The new slot failed to boot; U-Boot's altbootcmd switched back to part 2.
    run(Command::new("fw_setenv")
        .arg("-c")
        .arg(rig.path("fw_env.config"))
        .args(["mender_boot_part", "2"]));
    run(Command::new("fw_setenv")
        .arg("-c")
        .arg(rig.path("fw_env.config"))
        .args(["upgrade_available", "0"]));
    rig.reboot_into("a");
    let mut after = RawBackend::new(rig.config.clone());
    assert!(
        !after.verify_reboot().await.unwrap(),
        "fallback means failure"
    );

    // Running the new slot on trial, then rolled back: the old slot boots next.
    let rig = Rig::new(false);
    let mut b = RawBackend::new(rig.config.clone());
    install(&mut b, &img, &info(&img)).await.unwrap();
    rig.reboot_into("b");
    let mut after = RawBackend::new(rig.config.clone());
    after.rollback().await.unwrap();
    let env = rig.env();
    assert!(
        env.contains("mender_boot_part=2") && env.contains("upgrade_available=0"),
        "{env}"
    );
}

#[tokio::test]
async fn nothing_is_activated_when_verification_fails_or_the_slot_is_too_small() {
    // Read-back mismatch (the manifest hash does not match what was written).
    let rig = Rig::new(false);
    let img = image(1 << 20);
    let mut wrong = info(&img);
    wrong.sha256[0] ^= 1;
    let mut b = RawBackend::new(rig.config.clone());
    let err = install(&mut b, &img, &wrong).await.unwrap_err().to_string();
    assert!(err.contains("read-back of slot b does not match"), "{err}");
    let env = rig.env();
    assert!(
        env.contains("mender_boot_part=2") && env.contains("upgrade_available=0"),
        "{env}"
    );

    // Too large for the slot: refused before the first byte.
    let big = image(5 << 20);
    let b_before = sha(&rig.path("b.img"));
    let mut b = RawBackend::new(rig.config.clone());
    let err = b.begin(&info(&big)).await.unwrap_err();
    assert!(
        matches!(err, BackendError::NotStarted(ref m) if m.contains("holds 4194304")),
        "{err}"
    );
    assert_eq!(sha(&rig.path("b.img")), b_before);

    // A root= that is neither slot: refused, nothing written.
    std::fs::write(rig.path("cmdline"), "root=/dev/nonexistent\n").unwrap();
    let mut b = RawBackend::new(rig.config.clone());
    let err = b.begin(&info(&img)).await.unwrap_err();
    assert!(
        matches!(err, BackendError::NotStarted(ref m) if m.contains("neither slot")),
        "{err}"
    );
    assert_eq!(sha(&rig.path("b.img")), b_before);
}

#[tokio::test]
async fn configured_commands_drive_the_boot_selection() {
    let mut rig = Rig::new(false);
    let state = rig.path("bootstate");
    std::fs::write(&state, "mender_boot_part=2\nupgrade_available=0\n").unwrap();
    let st = state.display().to_string();
    let sh = |script: String| vec!["sh".to_string(), "-c".to_string(), script];
    rig.config.bootenv = BootEnv::Command {
        activate: sh(format!(
            "printf 'mender_boot_part=%s\\nupgrade_available=1\\n' {{part}} > {st}"
        )),
        commit: sh(format!(
            "sed -i s/upgrade_available=1/upgrade_available=0/ {st}"
        )),
        revert: sh(format!(
            "printf 'mender_boot_part=%s\\nupgrade_available=0\\n' {{part}} > {st}"
        )),
        state: vec!["cat".into(), st.clone()],
    };
    let img = image(1 << 20);
    let mut b = RawBackend::new(rig.config.clone());
    install(&mut b, &img, &info(&img)).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "mender_boot_part=3\nupgrade_available=1\n"
    );
    rig.reboot_into("b");
    let mut after = RawBackend::new(rig.config.clone());
    assert!(after.verify_reboot().await.unwrap());
    after.commit().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "mender_boot_part=3\nupgrade_available=0\n"
    );
}
