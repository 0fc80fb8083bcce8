//! The attack suite's machinery (`tests/attack_daemon.rs`, `tests/attack_rauc.rs`): keys,
//! attacker scripts and markers ([`Kit`]), taking signed artifacts apart and putting
//! crafted ones together, and a device ([`Rig`]) that runs one attack through the real
//! daemon binary and through `mender-bridge install`, judges it by its effects, then proves
//! the device still takes a legitimate update.
//!
//! The threat: the server decided on a legitimate, signed artifact, and something between it
//! and the device (object storage, a CDN, a TLS-terminating middlebox) serves other bytes.
//! The simulator models it with `PUT /api/sim/artifacts/{id}/content`: a legitimate "cover"
//! artifact named [`ATTACK_NAME`] is uploaded (so the deployment exists), then its stored
//! bytes are replaced, unchecked, by the crafted ones.
//!
//! Every attack is judged by what happened, not only by what was said:
//! - the deployment ends with exactly one final status, `failure`, whose substate names the
//!   cause (every given word, case-insensitive); `install` exits non-zero (not 4) with the
//!   cause words on stderr;
//! - the canary is absent: every script an attacker (or a failed artifact) ships appends its
//!   name to it, for every artifact state × Enter/Leave/Error;
//! - no file under the data dir or the state scripts dir contains the attack's marker;
//! - the boot state and the running slot are unchanged, the reboot command never ran, no
//!   deployment or standalone record is left, `show-artifact` and the inventory still say
//!   `release-1`, and no `success` was reported;
//! - afterwards a legitimate signed deployment goes through: download, `rebooting`, the
//!   simulated reboot (the daemon restarted), `success`, `release-2` in the inventory.
//!
//! Every violation is collected (tagged `daemon:`, `install:` or `follow-up:`), and the test
//! fails with all of them at the end, with the tail of the daemon's log.
//!
//! Proving that the suite can fail (`ATTACK_SELF_CHECK`, unset in CI):
//! - `cover`: the legitimate cover is served instead of the crafted bytes; every attack test
//!   must fail (the deployment goes to `rebooting` and no failure comes);
//! - `nokey`: the device has no `ArtifactVerifyKey`; the signature attacks must fail by
//!   their effects (the attacker's scripts run, the attacker's image is installed).
//! - `install`: only the `install` phase, with the cover: every test must fail (exit 0,
//!   the boot state changed, a standalone record left).
//! - `follow-up`: the legitimate `release-2` is signed by the untrusted key: every test
//!   must fail in its follow-up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use hyper::Method;
use mender_artifact::writer::{
    write_artifact, ArtifactSpec, PayloadFile, ScriptFile, SigningKey, WriteOptions,
};
use mender_artifact::{ArtifactError, ArtifactInfo, ArtifactReader, ReadOptions, VerifyKey};
use serde_json::json;

use super::device::history;
use super::sim::TestSim;
use super::slots::SlotRig;
use super::tarw::{self, TarEntry};
use super::{finals, image};
use super::{gunzip, gzip, script, Parts};

pub use super::DEVICE_TYPE;
/// The name of the artifact every attack is deployed as (the cover and, where it has a
/// header, the crafted artifact).
pub const ATTACK_NAME: &str = "attack-1";
/// Payload images: small, so the suite stays fast.
pub const IMAGE_LEN: usize = 256 * 1024;
const SLOT_SIZE: usize = 512 * 1024;
const BIN: &str = env!("CARGO_BIN_EXE_mender-bridge");
const MAC: &str = "02:00:00:00:a7:01";

// ----- keys, scripts, markers -----

/// One attack's workshop: a temp dir (which also holds the device), the trusted signing key
/// (its public half is the device's `ArtifactVerifyKey`), an untrusted one, the marker every
/// attacker file carries and the canary every attacker script writes.
pub struct Kit {
    pub dir: tempfile::TempDir,
    pub trusted: SigningKey,
    pub untrusted: SigningKey,
    pub marker: String,
}

fn ec_key(dir: &Path, name: &str) -> SigningKey {
    let key = super::ec_key_pair(dir, name);
    let pem = std::fs::read_to_string(&key).expect("key");
    SigningKey::from_pem(&pem, name).expect("signing key")
}

impl Kit {
    /// Keys made with openssl (EC P-256: fast to make), a fresh marker.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let trusted = ec_key(dir.path(), "trusted");
        let untrusted = ec_key(dir.path(), "untrusted");
        let seed = format!(
            "{}-{:?}-{}",
            std::process::id(),
            std::time::SystemTime::now(),
            dir.path().display()
        );
        let marker = format!(
            "ATTACKER-MARKER-{}",
            &super::sha256_hex(seed.as_bytes())[..20]
        );
        Kit {
            dir,
            trusted,
            untrusted,
            marker,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Written by any attacker script that runs.
    pub fn canary(&self) -> PathBuf {
        self.path("canary")
    }

    /// The public half of the trusted key (SPKI PEM): the device's `ArtifactVerifyKey`.
    pub fn trusted_pub(&self) -> PathBuf {
        self.path("trusted.pub")
    }

    pub fn verify_keys(&self) -> Vec<VerifyKey> {
        vec![VerifyKey::from_file(&self.trusted_pub()).expect("verify key")]
    }

    pub fn untrusted_keys(&self) -> Vec<VerifyKey> {
        vec![VerifyKey::from_file(&self.path("untrusted.pub")).expect("verify key")]
    }

    /// The body of every attacker script: carries the marker, appends its name to the canary.
    pub fn script_body(&self) -> String {
        format!(
            "#!/bin/sh\n# {}\necho \"$(basename \"$0\")\" >> {}\n",
            self.marker,
            self.canary().display()
        )
    }

    /// A script for every artifact state × Enter/Leave/Error.
    pub fn scripts(&self) -> Vec<ScriptFile> {
        super::every_artifact_script("00_pwn", |_| self.script_body())
    }

    /// The same scripts as header tar entries (`scripts/<name>`, mode 0755).
    pub fn script_entries(&self) -> Vec<TarEntry> {
        self.scripts()
            .into_iter()
            .map(|s| {
                let mut e = TarEntry::file(&format!("scripts/{}", s.name), s.content.to_vec());
                e.mode = 0o755;
                e
            })
            .collect()
    }

    /// An image of [`IMAGE_LEN`] bytes, `seed`-dependent, starting with the marker.
    pub fn image(&self, seed: u32) -> Vec<u8> {
        let mut img = image(IMAGE_LEN, seed.into());
        img[..self.marker.len()].copy_from_slice(self.marker.as_bytes());
        img
    }

    /// Writes an artifact with the project's writer (gzip, `mtime` 0).
    pub async fn write(
        &self,
        spec: &ArtifactSpec,
        file_name: &str,
        payload: Vec<u8>,
        key: Option<&SigningKey>,
    ) -> Vec<u8> {
        let file = PayloadFile::new(
            file_name,
            payload.len() as u64,
            std::io::Cursor::new(payload),
        );
        let opts = WriteOptions {
            signing_key: key.cloned(),
            mtime: Some(0),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_artifact(&mut out, spec, vec![file], &opts)
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        out
    }

    /// A rootfs-image artifact around [`image`](Self::image)`(seed)`, with the canary
    /// scripts when `scripts`, signed with `key` if given.
    pub async fn rootfs(
        &self,
        name: &str,
        scripts: bool,
        key: Option<&SigningKey>,
        seed: u32,
    ) -> Vec<u8> {
        let mut spec = ArtifactSpec::rootfs(name, [DEVICE_TYPE]);
        if scripts {
            spec.scripts = self.scripts();
        }
        self.write(&spec, "rootfs.ext4", self.image(seed), key)
            .await
    }

    /// The cover: the legitimate, signed [`ATTACK_NAME`] the server decided on.
    pub async fn cover(&self) -> Vec<u8> {
        self.rootfs(ATTACK_NAME, false, Some(&self.trusted), 1)
            .await
    }
}

// ----- crafting -----

/// Reads a whole artifact as the device would (every payload byte, then `finish`).
pub async fn read_all(bytes: Vec<u8>, keys: Vec<VerifyKey>) -> Result<ArtifactInfo, ArtifactError> {
    let opts = ReadOptions {
        verify_keys: keys,
        ..Default::default()
    };
    let mut r = ArtifactReader::open(std::io::Cursor::new(bytes), opts).await?;
    while r.next_file().await?.is_some() {
        while r.read_chunk().await?.is_some() {}
    }
    r.finish().await
}

/// `read_all` must succeed; returns what the reader learned.
pub async fn must_read(bytes: &[u8], keys: Vec<VerifyKey>, what: &str) -> ArtifactInfo {
    read_all(bytes.to_vec(), keys)
        .await
        .unwrap_or_else(|e| panic!("{what} must be a valid artifact: {e}"))
}

/// Index of member `name`.
pub fn index(p: &Parts, name: &str) -> usize {
    p.members
        .iter()
        .position(|m| m.name == name)
        .unwrap_or_else(|| panic!("no member {name}"))
}

/// Inserts `e` just before member `before`.
pub fn insert_before(p: &mut Parts, before: &str, e: TarEntry) {
    let i = index(p, before);
    p.members.insert(i, e);
}

/// Inserts `e` just after member `after`.
pub fn insert_after(p: &mut Parts, after: &str, e: TarEntry) {
    let i = index(p, after);
    p.members.insert(i + 1, e);
}

/// The files of `data/0000.tar.gz`.
pub fn data_entries(p: &Parts) -> Vec<TarEntry> {
    tarw::read(&gunzip(&p.get("data/0000.tar.gz").data)).0
}

/// Replaces the files of `data/0000.tar.gz` (the manifest is left as it is).
pub fn set_data(p: &mut Parts, entries: &[TarEntry]) {
    p.get_mut("data/0000.tar.gz").data = gzip(&tarw::write(entries));
}

/// The artifact cut in the middle of member `name`'s content: returns the bytes and the
/// member's content span (offset, size).
pub fn cut_inside(bytes: &[u8], name: &str) -> (Vec<u8>, usize, usize) {
    let (entries, spans) = tarw::read(bytes);
    let i = entries
        .iter()
        .position(|e| e.name == name)
        .unwrap_or_else(|| panic!("no member {name}"));
    let (_, data, size) = spans[i];
    assert!(size >= 2, "{name} has content to cut");
    (bytes[..data + size / 2].to_vec(), data, size)
}

/// gzip of `prefix` followed by `zeros` zero bytes, streamed (a decompression bomb when
/// `zeros` is large). Uses the system's `gzip`: unoptimised test builds compress slowly.
pub fn gzip_with_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .args(["-c", "-9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().expect("stdin");
    let prefix = prefix.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&prefix)?;
        let block = vec![0u8; 1 << 20];
        let mut left = zeros;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            stdin.write_all(&block[..n])?;
            left -= n as u64;
        }
        Ok::<(), std::io::Error>(())
    });
    let out = child.wait_with_output().expect("gzip output");
    writer.join().expect("writer").expect("feeding gzip");
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

/// A ustar header for a file `name` that declares `size` bytes (its content follows).
pub fn file_header(name: &str, size: u64) -> [u8; 512] {
    let mut e = TarEntry::file(name, Vec::new());
    e.size_field = Some(size);
    tarw::header(&e)
}

// ----- the device -----

/// What the device boots, and how it is checked.
pub enum Boot {
    /// The raw A/B backend on file slots with a real U-Boot environment.
    Raw(Box<SlotRig>),
    /// The RAUC backend against the real `rauc service` on a private bus.
    #[cfg(feature = "rauc")]
    Rauc(super::rauc::RaucRig),
}

/// The state an attack must leave as it found it.
#[derive(Debug, Clone, PartialEq)]
struct Baseline {
    boot: String,
    slots: Vec<(String, Vec<u8>)>,
    last_error: String,
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    super::wait::poll(limit, f).await.ok()
}

/// One attack: the crafted bytes, served in place of `cover`, and the words the failure must
/// name.
pub struct Attack {
    pub crafted: Vec<u8>,
    pub cover: Vec<u8>,
    pub causes: Vec<String>,
}

/// A device running the daemon binary against an in-process simulator.
pub struct Rig {
    pub kit: Kit,
    pub sim: TestSim,
    pub boot: Boot,
    daemon: Option<Child>,
    runs: u32,
    pub id: String,
    baseline: Option<Baseline>,
    violations: Vec<String>,
}

impl Rig {
    /// Configures the device in the kit's dir, starts the daemon, accepts the device and
    /// waits for its first inventory (`artifact_name=release-1`).
    pub async fn start(kit: Kit, boot: Boot) -> Self {
        let sim = TestSim::start().await;
        let d = kit.dir.path().to_path_buf();
        for sub in ["inventory", "scripts"] {
            std::fs::create_dir_all(d.join(sub)).expect("dir");
        }
        super::device_data_dir(&d);
        std::fs::write(d.join("artifact_info"), "artifact_name=release-1\n").expect("info");
        script(&d.join("identity"), &format!("echo mac={MAC}"));
        let (reboot, backend) = match &boot {
            Boot::Raw(slots) => (
                format!(
                    "echo root={} > {}\ntouch {}",
                    slots.dir.join("b.img").display(),
                    slots.dir.join("cmdline").display(),
                    d.join("rebooted").display()
                ),
                slots.raw_backend_toml(),
            ),
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => (
                format!("touch {}", d.join("rebooted").display()),
                format!(
                    "[backend]\ntype = \"rauc\"\n[backend.rauc]\nbus = \"{}\"\n\
                     health_check = [\"true\"]\ncall_timeout_seconds = 10\n",
                    rig.address
                ),
            ),
        };
        script(&d.join("reboot.sh"), &reboot);
        let mut conf = json!({
            "ServerURL": sim.handle.base_url(),
            "ServerCertificate": sim.handle.ca_path(),
            "UpdatePollIntervalSeconds": 1,
            "InventoryPollIntervalSeconds": 3600,
            "RetryPollIntervalSeconds": 1,
            "ArtifactVerifyKey": kit.trusted_pub(),
        });
        if self_check() == "nokey" {
            conf.as_object_mut()
                .expect("object")
                .remove("ArtifactVerifyKey");
        }
        std::fs::write(d.join("mender.conf"), conf.to_string()).expect("mender.conf");
        std::fs::write(
            d.join("bridge.toml"),
            format!(
                "identity_script = \"{}\"\ninventory_script_dir = \"{}\"\n\
                 state_scripts_dir = \"{}\"\nartifact_info_file = \"{}\"\n\
                 reboot_command = [\"{}\"]\ndevice_key_type = \"p256\"\n{backend}",
                d.join("identity").display(),
                d.join("inventory").display(),
                d.join("scripts").display(),
                d.join("artifact_info").display(),
                d.join("reboot.sh").display(),
            ),
        )
        .expect("bridge.toml");
        let mut rig = Rig {
            kit,
            sim,
            boot,
            daemon: None,
            runs: 0,
            id: String::new(),
            baseline: None,
            violations: Vec::new(),
        };
        rig.start_daemon();
        let id = poll(Duration::from_secs(20), || rig.device_id()).await;
        let Some(id) = id else {
            rig.fail_now("the device never asked to authenticate");
        };
        rig.sim
            .http
            .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
            .await;
        rig.id = id;
        if !rig
            .wait_inventory("release-1", Duration::from_secs(20))
            .await
        {
            rig.fail_now("no inventory with artifact_name=release-1 after the accept");
        }
        rig.baseline = Some(rig.snapshot());
        rig
    }

    fn path(&self, name: &str) -> PathBuf {
        self.kit.path(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    fn store_dir(&self) -> PathBuf {
        self.path("data/mender-bridge")
    }

    fn command(&self, args: &[&str]) -> Command {
        super::bridge_command(self.kit.dir.path(), args)
    }

    fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "the daemon already runs");
        self.runs += 1;
        let log =
            std::fs::File::create(self.path(&format!("daemon-{}.log", self.runs))).expect("log");
        let child = self
            .command(&["-l", "debug", "daemon"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        self.daemon = Some(child);
    }

    /// SIGTERM (the daemon waits for it after the reboot command), exit 0 within 10 s.
    fn stop_daemon(&mut self) -> Result<(), String> {
        let Some(mut child) = self.daemon.take() else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        match super::wait::stop_within(&mut child, Duration::from_secs(10)) {
            Some(status) if status.code() == Some(0) => Ok(()),
            Some(status) => Err(format!(
                "the daemon exited with {:?} on SIGTERM",
                status.code()
            )),
            None => Err("the daemon did not stop within 10 s of SIGTERM".into()),
        }
    }

    /// The last lines of every daemon log, for the failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.runs {
            let text =
                std::fs::read_to_string(self.path(&format!("daemon-{n}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            out.push_str(&format!("--- daemon run {n} (last {} lines)\n", tail.len()));
            for l in tail {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn fail_now(&mut self, why: &str) -> ! {
        self.violations.push(why.to_string());
        let _ = self.stop_daemon();
        panic!(
            "the attack left {} violation(s):\n- {}\n{}",
            self.violations.len(),
            self.violations.join("\n- "),
            self.logs()
        );
    }

    fn violation(&mut self, phase: &str, what: impl Into<String>) {
        self.violations.push(format!("{phase}: {}", what.into()));
    }

    async fn device_id(&self) -> Option<String> {
        let devs = self.sim.http.manage_ok(Method::GET, "/devices", None).await;
        devs.as_array()?
            .iter()
            .find(|d| d["identity_data"]["mac"] == MAC)
            .and_then(|d| d["id"].as_str())
            .map(str::to_string)
    }

    async fn inventory_name(&self) -> Option<String> {
        let v = self.sim.inventory(&self.id).await;
        v.as_array()?
            .iter()
            .find(|a| a["name"] == "artifact_name")
            .and_then(|a| a["value"].as_str())
            .map(str::to_string)
    }

    async fn wait_inventory(&self, name: &str, limit: Duration) -> bool {
        poll(limit, || async {
            (self.inventory_name().await.as_deref() == Some(name)).then_some(())
        })
        .await
        .is_some()
    }

    /// Uploads `cover` (a valid artifact named [`ATTACK_NAME`] or `release-2`), replaces its
    /// stored bytes with `bytes` when given, deploys its name; returns the deployment id.
    async fn deploy(&self, cover: &[u8], bytes: Option<&[u8]>) -> String {
        let rec = self.sim.upload(cover.to_vec()).await;
        if let Some(b) = bytes {
            let id = rec["id"].as_str().unwrap();
            self.sim.http.replace_content(id, b.to_vec()).await;
        }
        let name = rec["name"].as_str().expect("artifact name");
        self.sim.deploy(name, &self.id).await
    }

    fn snapshot(&self) -> Baseline {
        let sha = |p: PathBuf| {
            super::sha256_hex(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
                .into_bytes()
        };
        match &self.boot {
            Boot::Raw(slots) => Baseline {
                boot: slots.env(),
                slots: vec![("a".into(), sha(slots.dir.join("a.img")))],
                last_error: String::new(),
            },
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => Baseline {
                boot: rig.bootstate(),
                slots: ["rootfs-0", "rootfs-1"]
                    .iter()
                    .map(|s| (s.to_string(), sha(rig.path(&format!("images/{s}")))))
                    .collect(),
                // `variant string "…"` (the reply header line has a timestamp).
                last_error: rig
                    .property("LastError")
                    .lines()
                    .filter(|l| l.contains("variant"))
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect(),
            },
        }
    }

    /// Files under `dir` (recursively) whose content holds the marker.
    fn marked_files(&self, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let marker = self.kit.marker.as_bytes();
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                self.marked_files(&p, out);
            } else if meta.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                if data.windows(marker.len()).any(|w| w == marker) {
                    out.push(p);
                }
            }
        }
    }

    /// Checks the effects every attack must not have, recording violations for `phase`;
    /// then clears the canary and any marked file, so the next phase is judged on its own.
    async fn effects(&mut self, phase: &str) {
        let canary = self.kit.canary();
        if let Ok(ran) = std::fs::read_to_string(&canary) {
            let ran: Vec<&str> = ran.lines().collect();
            self.violation(
                phase,
                format!("attacker scripts ran (the canary exists): {ran:?}"),
            );
            let _ = std::fs::remove_file(&canary);
        }
        let mut marked = Vec::new();
        self.marked_files(&self.data_dir(), &mut marked);
        self.marked_files(&self.path("scripts"), &mut marked);
        if !marked.is_empty() {
            let mut names: Vec<String> = marked
                .iter()
                .map(|p| {
                    p.strip_prefix(self.kit.dir.path())
                        .unwrap_or(p)
                        .display()
                        .to_string()
                })
                .collect();
            names.sort();
            let n = names.len();
            names.truncate(4);
            self.violation(
                phase,
                format!("{n} attacker file(s) left behind, e.g. {names:?}"),
            );
            for p in &marked {
                let _ = std::fs::remove_file(p);
            }
        }
        let now = self.snapshot();
        let before = self.baseline.clone().expect("baseline");
        if now.boot != before.boot {
            self.violation(
                phase,
                format!(
                    "the boot state changed: {:?} -> {:?}",
                    before.boot, now.boot
                ),
            );
        }
        let raw = match &self.boot {
            Boot::Raw(_) => true,
            #[cfg(feature = "rauc")]
            Boot::Rauc(_) => false,
        };
        let committed_a =
            now.boot.contains("mender_boot_part=2") && now.boot.contains("upgrade_available=0");
        if raw && !committed_a {
            self.violation(
                phase,
                format!("not booting slot a as committed: {:?}", now.boot),
            );
        }
        for ((name, a), (_, b)) in before.slots.iter().zip(&now.slots) {
            if a != b {
                self.violation(phase, format!("slot {name} changed"));
            }
        }
        if now.last_error != before.last_error {
            self.violation(
                phase,
                format!(
                    "RAUC's LastError changed (it was given a bundle): {}",
                    now.last_error
                ),
            );
        }
        #[cfg(feature = "rauc")]
        for v in self.rauc_effects() {
            self.violation(phase, v);
        }
        if self.path("rebooted").exists() {
            self.violation(phase, "the reboot command ran");
            let _ = std::fs::remove_file(self.path("rebooted"));
        }
        // The final status is reported before the record goes: give it a moment.
        let deployment = self.store_dir().join("deployment.json");
        if poll(Duration::from_secs(5), || async {
            (!deployment.exists()).then_some(())
        })
        .await
        .is_none()
        {
            self.violation(phase, "a deployment record is left (deployment.json)");
        }
        if self.store_dir().join("standalone.json").exists() {
            self.violation(
                phase,
                "a standalone install record is left (standalone.json)",
            );
        }
        let o = self
            .command(&["show-artifact"])
            .output()
            .expect("show-artifact");
        let shown = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if shown != "release-1" {
            self.violation(
                phase,
                format!("show-artifact says {shown:?}, not release-1"),
            );
        }
    }

    /// RAUC never got a bundle: no boot state change through it, no install in its log,
    /// the spool emptied.
    #[cfg(feature = "rauc")]
    fn rauc_effects(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Boot::Rauc(rig) = &self.boot else {
            return out;
        };
        let calls = rig.bootloader_calls();
        if !calls.is_empty() {
            out.push(format!("RAUC changed the boot state: {calls:?}"));
        }
        let installs: Vec<String> = rig
            .service_log()
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("install"))
            .map(str::to_string)
            .collect();
        if !installs.is_empty() {
            out.push(format!("RAUC was asked to install: {installs:?}"));
        }
        let left: Vec<String> = std::fs::read_dir(self.store_dir().join("rauc-spool"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !left.is_empty() {
            out.push(format!("spool files left: {left:?}"));
        }
        out
    }

    /// The cause words `text` lacks (case-insensitive; `a|b`: either will do).
    fn missing_causes(text: &str, causes: &[String]) -> Vec<String> {
        let lower = text.to_ascii_lowercase();
        causes
            .iter()
            .filter(|c| {
                !c.split('|')
                    .any(|alt| lower.contains(&alt.to_ascii_lowercase()))
            })
            .cloned()
            .collect()
    }

    /// Phase 1: the crafted artifact as a deployment through the daemon.
    async fn daemon_phase(&mut self, a: &Attack) -> String {
        let dep = self.deploy(&a.cover, Some(&a.crafted)).await;
        let ended = poll(Duration::from_secs(30), || async {
            let h = history(&self.sim, &dep, &self.id).await;
            (finals(&h) > 0).then_some(h)
        })
        .await;
        let Some(h) = ended else {
            let h = history(&self.sim, &dep, &self.id).await;
            self.violation(
                "daemon",
                format!("no final status within 30 s; the device reported {h:?}"),
            );
            // What it did meanwhile; then stop: the daemon may wait for a reboot.
            self.effects("daemon").await;
            self.fail_now("(stopped after the daemon phase)");
        };
        let final_status = h
            .iter()
            .find(|(s, _)| super::is_final(s))
            .cloned()
            .expect("a final status");
        if final_status.0 != "failure" {
            self.violation(
                "daemon",
                format!("final status {final_status:?}, not failure; history {h:?}"),
            );
        }
        let substate = final_status.1.clone().unwrap_or_default();
        let missing = Self::missing_causes(&substate, &a.causes);
        if !missing.is_empty() {
            self.violation(
                "daemon",
                format!("the failure substate {substate:?} does not name the cause {missing:?}"),
            );
        }
        self.effects("daemon").await;
        if self.inventory_name().await.as_deref() != Some("release-1") {
            let n = self.inventory_name().await;
            self.violation(
                "daemon",
                format!("inventory artifact_name is {n:?}, not release-1"),
            );
        }
        dep
    }

    /// Phase 2: the same bytes through `mender-bridge install <file>`.
    async fn install_phase(&mut self, a: &Attack) {
        let file = self.path("crafted.mender");
        std::fs::write(&file, &a.crafted).expect("write crafted");
        let mut attempts = 0;
        let o: Output = loop {
            let mut c = self.command(&["install", file.to_str().expect("utf8")]);
            let o = tokio::task::spawn_blocking(move || c.output().expect("install"))
                .await
                .expect("join");
            attempts += 1;
            // The daemon holds the install lock through each update check: try again.
            let busy = String::from_utf8_lossy(&o.stderr).contains("another install");
            if !busy || attempts >= 20 {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        };
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        match o.status.code() {
            Some(0) | Some(4) => self.violation(
                "install",
                format!("install succeeded (exit {:?}): {stderr}", o.status.code()),
            ),
            Some(_) => {}
            None => self.violation("install", "install was killed by a signal"),
        }
        let missing = Self::missing_causes(&stderr, &a.causes);
        if !missing.is_empty() {
            self.violation(
                "install",
                format!(
                    "stderr {:?} does not name the cause {missing:?}",
                    stderr.trim()
                ),
            );
        }
        self.effects("install").await;
    }

    /// Phase 3: a legitimate signed `release-2` goes through the daemon with a reboot.
    async fn follow_up(&mut self) -> Result<(), String> {
        let _ = std::fs::remove_file(self.path("rebooted"));
        let (legit, img) = self.legit_release_2().await;
        let dep = self.deploy(&legit, None).await;
        let rebooted = self.path("rebooted");
        // The reboot command, or a final status (a failure: no need to wait longer).
        let seen = poll(Duration::from_secs(30), || async {
            (rebooted.exists() || finals(&history(&self.sim, &dep, &self.id).await) > 0)
                .then_some(())
        })
        .await;
        if seen.is_none() || !rebooted.exists() {
            let h = history(&self.sim, &dep, &self.id).await;
            return Err(format!("the reboot command did not run; history {h:?}"));
        }
        let h = history(&self.sim, &dep, &self.id).await;
        if h.last().map(|(s, _)| s.as_str()) != Some("rebooting") {
            return Err(format!("not rebooting before the reboot: {h:?}"));
        }
        let installed = match &self.boot {
            Boot::Raw(slots) => slots.slot("b")[..img.len()] == img[..],
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => rig.slot("rootfs-1", img.len()) == img,
        };
        if !installed {
            return Err("the new slot does not hold the legitimate image".into());
        }
        // The reboot: the daemon stops; the device comes up in the new slot.
        self.stop_daemon()?;
        match &mut self.boot {
            // The reboot command already wrote the new kernel command line.
            Boot::Raw(_) => {}
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => {
                let b = rig.reboot();
                if b != "B" {
                    return Err(format!("the bootloader booted {b}, not B"));
                }
            }
        }
        self.start_daemon();
        let ok = poll(Duration::from_secs(30), || async {
            let h = history(&self.sim, &dep, &self.id).await;
            (finals(&h) > 0).then_some(h)
        })
        .await;
        let Some(h) = ok else {
            let h = history(&self.sim, &dep, &self.id).await;
            return Err(format!(
                "no final status within 30 s after the reboot: {h:?}"
            ));
        };
        if finals(&h) != 1 || h.last().map(|(s, _)| s.as_str()) != Some("success") {
            return Err(format!("the legitimate deployment did not succeed: {h:?}"));
        }
        if !self
            .wait_inventory("release-2", Duration::from_secs(20))
            .await
        {
            return Err("the inventory never said artifact_name=release-2".into());
        }
        match &self.boot {
            Boot::Raw(slots) => {
                let env = slots.env();
                if !(env.contains("mender_boot_part=3") && env.contains("upgrade_available=0")) {
                    return Err(format!("slot b is not committed: {env}"));
                }
            }
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => {
                let s = rig.bootstate();
                if !s.contains("PRIMARY=B STATE_A=good STATE_B=good") {
                    return Err(format!("RAUC's slot B is not primary and good: {s}"));
                }
            }
        }
        self.stop_daemon()
    }

    /// The legitimate next release for this device, and its image.
    async fn legit_release_2(&self) -> (Vec<u8>, Vec<u8>) {
        let img = image(IMAGE_LEN, 2);
        let key = if self_check() == "follow-up" {
            &self.kit.untrusted
        } else {
            &self.kit.trusted
        };
        match &self.boot {
            Boot::Raw(_) => {
                let spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
                let a = self
                    .kit
                    .write(&spec, "rootfs.ext4", img.clone(), Some(key))
                    .await;
                (a, img)
            }
            #[cfg(feature = "rauc")]
            Boot::Rauc(rig) => {
                let bundle = rig.bundle(
                    "release-2",
                    super::rauc::COMPATIBLE,
                    "2.0",
                    &img,
                    super::rauc::Signer::Trusted,
                );
                let a = rauc_artifact(&self.kit, "release-2", &bundle, false, Some(key)).await;
                (a, img)
            }
        }
    }

    /// Runs the attack through the daemon, then `install`, then a legitimate deployment;
    /// fails with every violation found.
    pub async fn run(mut self, mut a: Attack) {
        if matches!(self_check().as_str(), "cover" | "install") {
            a.crafted = a.cover.clone();
        }
        if self_check() == "install" {
            self.install_phase(&a).await;
            self.fail_now("(self-check: install only)");
        }
        let dep = self.daemon_phase(&a).await;
        self.install_phase(&a).await;
        // Exactly one final status, also after the time the install took.
        let h = history(&self.sim, &dep, &self.id).await;
        if finals(&h) != 1 {
            self.violation("daemon", format!("{} final statuses: {h:?}", finals(&h)));
        }
        if h.iter().any(|(s, _)| s == "success") {
            self.violation("daemon", format!("success was reported: {h:?}"));
        }
        if let Err(e) = self.follow_up().await {
            self.violation("follow-up", e);
        }
        let _ = self.stop_daemon();
        if !self.violations.is_empty() {
            let msg = format!(
                "the attack left {} violation(s):\n- {}\n{}",
                self.violations.len(),
                self.violations.join("\n- "),
                self.logs()
            );
            panic!("{msg}");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ATTACK_SELF_CHECK` (see the module docs); empty when unset.
fn self_check() -> String {
    std::env::var("ATTACK_SELF_CHECK").unwrap_or_default()
}

/// A raw A/B device (file slots, U-Boot environment) in the kit's dir.
pub fn raw_boot(kit: &Kit) -> Boot {
    Boot::Raw(Box::new(SlotRig::new(&kit.path("slots"), SLOT_SIZE)))
}

/// Runs `crafted` (deployed as [`ATTACK_NAME`] in place of the kit's cover) against a raw
/// A/B device; the failure must name every word of `causes`.
pub async fn attack_raw(kit: Kit, crafted: Vec<u8>, causes: &[&str]) {
    let cover = kit.cover().await;
    let boot = raw_boot(&kit);
    Rig::start(kit, boot)
        .await
        .run(Attack {
            crafted,
            cover,
            causes: causes.iter().map(|c| c.to_string()).collect(),
        })
        .await;
}

/// A `rauc` module-image artifact around `bundle`, written with the project's writer.
#[cfg(feature = "rauc")]
pub async fn rauc_artifact(
    kit: &Kit,
    name: &str,
    bundle: &Path,
    scripts: bool,
    key: Option<&SigningKey>,
) -> Vec<u8> {
    let mut spec = ArtifactSpec::module(name, [DEVICE_TYPE], "rauc");
    if scripts {
        spec.scripts = kit.scripts();
    }
    let data = std::fs::read(bundle).expect("bundle");
    let file = bundle
        .file_name()
        .expect("bundle name")
        .to_string_lossy()
        .into_owned();
    kit.write(&spec, &file, data, key).await
}

/// A header tar's entries with `extra` inserted after `header-info` (where scripts go).
pub fn with_after_header_info(mut entries: Vec<TarEntry>, extra: Vec<TarEntry>) -> Vec<TarEntry> {
    let i = entries
        .iter()
        .position(|e| e.name == "header-info")
        .expect("header-info")
        + 1;
    for (k, e) in extra.into_iter().enumerate() {
        entries.insert(i + k, e);
    }
    entries
}

/// Replaces `header.tar.gz` of `p` with an uncompressed `header.tar` holding `tar`, the
/// manifest line renamed and rehashed, the signature dropped: an unsigned artifact whose
/// header is `tar` (to check that a crafted header would parse).
pub fn with_plain_header(p: &mut Parts, tar: Vec<u8>) {
    let manifest = String::from_utf8(p.get("manifest").data.clone()).expect("utf8");
    let mut out = String::new();
    for line in manifest.lines() {
        if line.ends_with("  header.tar.gz") {
            out.push_str(&format!("{}  header.tar\n", super::sha256_hex(&tar)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    p.get_mut("manifest").data = out.into_bytes();
    let i = index(p, "header.tar.gz");
    p.members[i] = TarEntry::file("header.tar", tar);
    if p.members.iter().any(|m| m.name == "manifest.sig") {
        p.remove("manifest.sig");
    }
}

/// The uncompressed size a gzip stream declares in its trailer (ISIZE, modulo 2^32).
pub fn gzip_declared_len(gz: &[u8]) -> u32 {
    let t = &gz[gz.len() - 4..];
    u32::from_le_bytes([t[0], t[1], t[2], t[3]])
}
