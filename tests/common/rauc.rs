//! The real RAUC 1.8 service for tests (BACKENDS.md §2): a private system-like bus
//! (`dbus-daemon` on a socket in a temp dir), file-backed raw slots `rootfs.0` (bootname A)
//! and `rootfs.1` (B), RAUC's `custom` bootloader backend as a shell script over a state
//! file or its real `uboot` backend on a file-backed environment (mkenvimage,
//! fw_printenv / fw_setenv with `-c` through PATH wrappers), a test CA with a signer,
//! plain bundles made with `rauc bundle` and wrapped with
//! `mender-artifact write module-image -T rauc`.
//!
//! The service runs in its own mount namespace (`unshare --mount`), so its loop mount of
//! the bundle goes away with it even when a test kills it mid-install, and with a private
//! `/run`, so libubootenv's machine-wide lock file is its own. Everything started here is
//! stopped on drop, also when the test panics. Nothing is shared between rigs: tests run
//! in parallel.
//!
//! The simulated bootloader boots `PRIMARY` when its state is good, else the other slot
//! (custom), or the first slot in `BOOT_ORDER` with attempts left, using one (U-Boot); a
//! reboot restarts the service with the booted slot as `--override-boot-slot`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mender_bridge::deploy::engine::Engine;
use mender_bridge_backends::rauc::{Bus, RaucBackend, RaucConfig};

use super::device::{Device, DEVICE_TYPE};
use super::sim::TestSim;
use super::slots::uboot_env_file;
use super::wait::{stop_within, wait_for_blocking};
use super::{run, test_ca, test_signer, SelfSigned};

pub const COMPATIBLE: &str = "Test-Device";
pub const SLOT_SIZE: u64 = 8 << 20;

/// Who signs a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The signer certificate issued by the rig's CA (in RAUC's keyring).
    Trusted,
    /// A self-signed certificate RAUC does not trust.
    Untrusted,
}

/// Which bootloader backend RAUC drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootloader {
    /// `bootloader=custom`: the rig's shell script over `bootstate`.
    Custom,
    /// `bootloader=uboot`: RAUC's real U-Boot backend (`BOOT_ORDER`, `BOOT_x_LEFT`) on a
    /// file-backed environment through `fw_printenv` / `fw_setenv`.
    Uboot,
}

pub struct RaucRig {
    pub dir: tempfile::TempDir,
    pub bootloader: Bootloader,
    bus: Option<Child>,
    service: Option<Child>,
    /// The bus address (`unix:path=…`).
    pub address: String,
    /// The bootname the running service was started as booted from.
    pub booted: String,
}

fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The test CA (`ca`), the signer it issued (`dev`) and a self-signed `rogue` signer RAUC
/// does not trust.
fn write_pki(pki: &Path) {
    test_ca(pki, "ca");
    test_signer(pki, "dev", "ca");
    SelfSigned {
        newkey: "rsa:2048",
        opts: &[],
        key: "rogue.key",
        cert: "rogue.pem",
        subject: "/CN=rogue-signer",
        days: "3650",
        ext: &["extendedKeyUsage=emailProtection"],
    }
    .write(pki);
}

/// The slot images `rootfs-0` and `rootfs-1`, [`SLOT_SIZE`] each.
fn write_slots(w: &Path) {
    for s in ["rootfs-0", "rootfs-1"] {
        let f = std::fs::File::create(w.join("images").join(s)).unwrap();
        f.set_len(SLOT_SIZE).unwrap();
    }
}

/// RAUC's `custom` bootloader backend: `bootloader.sh` over the `bootstate` file (A primary,
/// both good), logging every call to `bootloader.log`.
fn write_custom_bootloader(w: &Path) {
    std::fs::write(
        w.join("bootstate"),
        "PRIMARY=A\nSTATE_A=good\nSTATE_B=good\n",
    )
    .unwrap();
    // While the file `slow` exists, set-state waits (an install held in progress).
    write_exec(
        &w.join("bootloader.sh"),
        &format!(
            r#"#!/bin/sh
S={w}/bootstate
echo "$@" >> {w}/bootloader.log
case "$1" in
  get-primary) . $S; echo "$PRIMARY" ;;
  set-primary) sed -i -e "s/^PRIMARY=.*/PRIMARY=$2/" -e "s/^STATE_$2=.*/STATE_$2=good/" $S ;;
  get-state)   . $S; eval echo "\$STATE_$2" ;;
  set-state)   touch {w}/in-set-state
               while [ -e {w}/slow ]; do sleep 0.05; done
               sed -i "s/^STATE_$2=.*/STATE_$2=$3/" $S ;;
  *) exit 1 ;;
esac
"#,
            w = w.display()
        ),
    );
}

/// For RAUC's `uboot` backend: a file-backed environment (`BOOT_ORDER=A B`, 3 attempts
/// each) and `bin/fw_printenv`, `bin/fw_setenv` wrappers that pass `-c`.
fn write_uboot_env(w: &Path) {
    // U-Boot: a file-backed environment, and the tools with -c first in the service's
    // PATH (RAUC 1.8 runs fw_printenv / fw_setenv without -c).
    std::fs::create_dir_all(w.join("bin")).unwrap();
    uboot_env_file(w, "BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n");
    for tool in ["fw_printenv", "fw_setenv"] {
        write_exec(
            &w.join("bin").join(tool),
            &format!(
                "#!/bin/sh\nexec /usr/bin/{tool} -c {}/fw_env.config \"$@\"\n",
                w.display()
            ),
        );
    }
}

/// `system.conf`: the compatible, the bootloader backend, the keyring, the two raw slots.
fn write_system_conf(w: &Path, bootloader: Bootloader) {
    let loader = match bootloader {
        Bootloader::Custom => format!(
            "bootloader=custom\n[handlers]\nbootloader-custom-backend={}/bootloader.sh\n",
            w.display()
        ),
        Bootloader::Uboot => "bootloader=uboot\n".to_string(),
    };
    let (system, handlers) = loader.split_once('\n').unwrap_or((&loader, ""));
    std::fs::write(
        w.join("system.conf"),
        format!(
            "[system]\ncompatible={COMPATIBLE}\n{system}\ndata-directory={w}/data\n\
                 bundle-formats=plain\n{handlers}\
                 [keyring]\npath={w}/pki/ca.pem\n\
                 [slot.rootfs.0]\ndevice={w}/images/rootfs-0\ntype=raw\nbootname=A\n\
                 [slot.rootfs.1]\ndevice={w}/images/rootfs-1\ntype=raw\nbootname=B\n",
            w = w.display()
        ),
    )
    .unwrap();
}

impl RaucRig {
    /// Bus, PKI, slots, the custom bootloader, system.conf; the service running as
    /// booted from A.
    pub fn new() -> Self {
        Self::with(Bootloader::Custom)
    }

    /// As [`new`](Self::new), with the given bootloader backend.
    pub fn with(bootloader: Bootloader) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().to_path_buf();
        for d in ["pki", "images", "mnt", "data", "spool", "bundles"] {
            std::fs::create_dir_all(w.join(d)).unwrap();
        }
        write_pki(&w.join("pki"));
        write_slots(&w);
        write_custom_bootloader(&w);
        write_uboot_env(&w);
        write_system_conf(&w, bootloader);
        let bus = super::bus::start_bus(&w);
        let address = format!("unix:path={}/bus.sock", w.display());
        let mut rig = RaucRig {
            dir,
            bootloader,
            bus: Some(bus),
            service: None,
            address,
            booted: "A".into(),
        };
        wait_for_blocking(Duration::from_secs(10), "the private bus socket", || {
            rig.path("bus.sock").exists()
        });
        rig.start_service("A");
        rig
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Starts `rauc service` as booted from `bootname`, and waits until it answers.
    pub fn start_service(&mut self, bootname: &str) {
        assert!(self.service.is_none(), "the service already runs");
        let w = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(w.join("service.log"))
            .unwrap();
        // Its own mount namespace: the bundle's loop mount goes with the process, and a
        // private /run keeps libubootenv's lock (/run/lock/fw_printenv.lock) away from
        // every other test on the machine.
        let path = format!(
            "{}/bin:{}",
            w.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run && mkdir /run/lock && exec rauc \"$@\"")
            .arg("rauc")
            .arg(format!("--conf={}/system.conf", w.display()))
            .arg(format!("--mount={}/mnt", w.display()))
            .arg("service")
            .arg(format!("--override-boot-slot={bootname}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .env("PATH", path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("rauc service: {e}"));
        self.service = Some(child);
        self.booted = bootname.into();
        wait_for_blocking(
            Duration::from_secs(20),
            "the RAUC service on the bus",
            || !self.property("Operation").is_empty(),
        );
    }

    /// A RAUC property as `dbus-send --print-reply` shows it (`variant string "idle"`);
    /// empty when the service does not answer.
    pub fn property(&self, name: &str) -> String {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--reply-timeout=5000",
                "--dest=de.pengutronix.rauc",
                "/",
                "org.freedesktop.DBus.Properties.Get",
                "string:de.pengutronix.rauc.Installer",
            ])
            .arg(format!("string:{name}"))
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => String::new(),
        }
    }

    /// `rauc install BUNDLE` (RAUC's own CLI, another D-Bus client of the service) in the
    /// background; killed on drop.
    pub fn rauc_install(&self, bundle: &Path) -> OtherInstall {
        let child = Command::new("rauc")
            .arg("install")
            .arg(bundle)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("rauc install: {e}"));
        OtherInstall(child)
    }

    /// Stops the service: SIGTERM, then SIGKILL after 10 s.
    pub fn stop_service(&mut self) {
        if let Some(mut c) = self.service.take() {
            stop(&mut c, nix::sys::signal::Signal::SIGTERM);
        }
    }

    /// Kills the service at once (SIGKILL), as a crash would.
    pub fn kill_service(&mut self) {
        if let Some(mut c) = self.service.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The bootloader state file (`PRIMARY=B STATE_A=good STATE_B=good`).
    pub fn bootstate(&self) -> String {
        std::fs::read_to_string(self.path("bootstate"))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn boot_var(&self, key: &str) -> String {
        let s = self.bootstate();
        s.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
            .unwrap_or_default()
    }

    /// The bootloader calls that change state (`set-state B good`, `set-primary A`), in
    /// order, since the last [`clear_bootloader_calls`](Self::clear_bootloader_calls).
    pub fn bootloader_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("bootloader.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("set-"))
            .map(str::to_string)
            .collect()
    }

    pub fn clear_bootloader_calls(&self) {
        let _ = std::fs::remove_file(self.path("bootloader.log"));
    }

    /// The primary slot's boot attempts ran out: the bootloader marks it bad and falls
    /// back to the other one.
    pub fn exhaust_primary(&self) {
        if self.bootloader == Bootloader::Uboot {
            let first = self.uboot_order().first().cloned().unwrap_or_default();
            self.fw_setenv(&format!("BOOT_{first}_LEFT"), "0");
            return;
        }
        let p = self.boot_var("PRIMARY");
        let other = if p == "A" { "B" } else { "A" };
        let s = std::fs::read_to_string(self.path("bootstate")).unwrap();
        let s = s
            .replace(&format!("STATE_{p}=good"), &format!("STATE_{p}=bad"))
            .replace(&format!("PRIMARY={p}"), &format!("PRIMARY={other}"));
        std::fs::write(self.path("bootstate"), s).unwrap();
    }

    /// A simulated reboot: the service stops; the bootloader boots PRIMARY if it is good,
    /// else the other slot; the service starts as booted from there. Returns the bootname.
    pub fn reboot(&mut self) -> String {
        self.stop_service();
        if self.bootloader == Bootloader::Uboot {
            // U-Boot's boot script: the first slot in BOOT_ORDER with attempts left, one
            // attempt used.
            let env = self.uboot_env();
            let left = |b: &str| -> u32 {
                env.iter()
                    .find(|(k, _)| *k == format!("BOOT_{b}_LEFT"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0)
            };
            let boot = self
                .uboot_order()
                .into_iter()
                .find(|b| left(b) > 0)
                .expect("a slot with boot attempts left");
            self.fw_setenv(&format!("BOOT_{boot}_LEFT"), &(left(&boot) - 1).to_string());
            self.start_service(&boot);
            return boot;
        }
        let p = self.boot_var("PRIMARY");
        let other = if p == "A" { "B" } else { "A" };
        let boot = if self.boot_var(&format!("STATE_{p}")) == "good" {
            p
        } else {
            other.to_string()
        };
        self.start_service(&boot);
        boot
    }

    /// Runs a U-Boot tool on the rig's environment in a private mount namespace (so the
    /// machine-wide /run/lock/fw_printenv.lock of other tests cannot block it).
    fn fw(&self, tool: &str, args: &[&str]) -> String {
        run(Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run && mkdir /run/lock && exec \"$@\"")
            .arg("fw")
            .arg(format!("/usr/bin/{tool}"))
            .arg("-c")
            .arg(self.path("fw_env.config"))
            .args(args))
    }

    /// The U-Boot environment as (name, value) pairs.
    pub fn uboot_env(&self) -> Vec<(String, String)> {
        self.fw("fw_printenv", &[])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One U-Boot variable (empty when unset).
    pub fn uboot_var(&self, name: &str) -> String {
        self.uboot_env()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    fn uboot_order(&self) -> Vec<String> {
        self.uboot_var("BOOT_ORDER")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    fn fw_setenv(&self, name: &str, value: &str) {
        self.fw("fw_setenv", &[name, value]);
    }

    /// The first `len` bytes of a slot image (`rootfs-0` / `rootfs-1`).
    pub fn slot(&self, name: &str, len: usize) -> Vec<u8> {
        let mut v = std::fs::read(self.path(&format!("images/{name}"))).unwrap();
        v.truncate(len);
        v
    }

    /// Holds the next install in RAUC's `set-state` step until [`release`](Self::release).
    pub fn hold(&self) {
        let _ = std::fs::remove_file(self.path("in-set-state"));
        std::fs::write(self.path("slow"), b"").unwrap();
    }

    /// Has an install reached the held step?
    pub fn held(&self) -> bool {
        self.path("in-set-state").exists()
    }

    pub fn release(&self) {
        let _ = std::fs::remove_file(self.path("slow"));
    }

    /// `rauc bundle` of one raw image: `bundles/<name>.raucb`.
    pub fn bundle(
        &self,
        name: &str,
        compatible: &str,
        version: &str,
        image: &[u8],
        signer: Signer,
    ) -> PathBuf {
        let content = self.path(&format!("bundles/{name}.content"));
        std::fs::create_dir_all(&content).unwrap();
        std::fs::write(content.join("rootfs.img"), image).unwrap();
        std::fs::write(
            content.join("manifest.raucm"),
            format!(
                "[update]\ncompatible={compatible}\nversion={version}\n[bundle]\nformat=plain\n\
                 [image.rootfs]\nfilename=rootfs.img\n"
            ),
        )
        .unwrap();
        let (cert, key) = match signer {
            Signer::Trusted => ("dev.pem", "dev.key"),
            Signer::Untrusted => ("rogue.pem", "rogue.key"),
        };
        let out = self.path(&format!("bundles/{name}.raucb"));
        run(Command::new("rauc")
            .arg(format!("--cert={}", self.path("pki").join(cert).display()))
            .arg(format!("--key={}", self.path("pki").join(key).display()))
            .arg("bundle")
            .arg(&content)
            .arg(&out));
        std::fs::remove_dir_all(&content).unwrap();
        out
    }

    /// `mender-artifact write module-image -T rauc` around `bundle`.
    pub fn artifact(&self, bundle: &Path, artifact_name: &str, compression: &str) -> PathBuf {
        self.artifact_with_scripts(bundle, artifact_name, compression, &[])
    }

    /// As [`RaucRig::artifact`], with state scripts (`(name, body)`, written to files and
    /// passed with `-s`).
    pub fn artifact_with_scripts(
        &self,
        bundle: &Path,
        artifact_name: &str,
        compression: &str,
        scripts: &[(&str, &str)],
    ) -> PathBuf {
        let out = self.path(&format!("bundles/{artifact_name}.mender"));
        let dir = self.path(&format!("scripts-{artifact_name}"));
        let mut script_args = Vec::new();
        for (name, body) in scripts {
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            script_args.push("-s".into());
            script_args.push(p.into_os_string());
        }
        run(Command::new("mender-artifact")
            .args([
                "write",
                "module-image",
                "-T",
                "rauc",
                "-t",
                DEVICE_TYPE,
                "-n",
            ])
            .arg(artifact_name)
            .args(["--compression", compression, "-f"])
            .arg(bundle)
            .args(&script_args)
            .arg("-o")
            .arg(&out));
        out
    }

    /// The backend's configuration for this rig: the private bus, the rig's spool, the
    /// record in `state_dir`.
    pub fn config(&self, state_dir: &Path) -> RaucConfig {
        RaucConfig {
            bus: Bus::Address(self.address.clone()),
            spool_dir: self.path("spool"),
            state_dir: state_dir.to_path_buf(),
            health_check: None,
            health_check_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(10),
            install_timeout: Duration::from_secs(120),
        }
    }

    /// Files left in the spool directory.
    pub fn spool_files(&self) -> Vec<String> {
        std::fs::read_dir(self.path("spool"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn service_log(&self) -> String {
        std::fs::read_to_string(self.path("service.log")).unwrap_or_default()
    }
}

impl Drop for RaucRig {
    fn drop(&mut self) {
        self.release();
        self.kill_service();
        if let Some(mut b) = self.bus.take() {
            let _ = b.kill();
            let _ = b.wait();
        }
    }
}

/// A `rauc install` running in the background.
pub struct OtherInstall(Child);

impl OtherInstall {
    /// Its exit status, once it ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for OtherInstall {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stop(c: &mut Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, sig);
    stop_within(c, Duration::from_secs(10));
}

/// A fresh engine over the RAUC backend, as a (re)started process builds it: the device's
/// store, the record of the activated slot in the store's directory.
pub fn engine(dev: &Device, sim: &TestSim, config: RaucConfig) -> Engine<RaucBackend> {
    dev.engine_with(sim, RaucBackend::new(config))
}
