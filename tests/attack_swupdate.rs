//! SWUpdate attacks (issue 10's attack suite), each run through the real
//! `mender-bridge daemon` binary (`ArtifactVerifyKey` set, backend `swupdate`) against the
//! in-process simulator and a real SWUpdate 2022.12 daemon: Debian's (`-k`, enforces signed
//! images) or a build without signed images (`scripts/build-swupdate-unsigned.sh`).
//!
//! Each attack is judged by its effects: exactly one final status, a failure whose substate
//! names the cause; the canary an attacker script would create is absent; no file under the
//! data directory holds attacker bytes; no deployment or standalone record is left and
//! `show-artifact` still says `release-1`; SWUpdate's target and `ustate` are unchanged; no
//! success is reported; the same bytes given to `mender-bridge install` fail the same way;
//! and the next, legitimate deployment succeeds. The crafted bytes are served with the
//! simulator's `PUT /api/sim/artifacts/{id}/content` in place of the signed artifact.
//!
//! Proving that the suite can fail (`ATTACK_SELF_CHECK`, unset in CI, as in
//! `tests/common/attack.rs`): `cover` serves the legitimate artifact instead of the crafted
//! one (every padded-.swu attack must fail: the deployment succeeds); `nokey` runs the
//! device without `ArtifactVerifyKey` (mode `auto` then streams into a SWUpdate without
//! signatures: the attacker's script runs, and that attack must fail).
//!
//! The tampered .swu: an attacker's image and a shell script that creates the canary,
//! signed by a key SWUpdate does not trust, followed by zero padding up to the legitimate
//! .swu's length and put in its place in the signed artifact, so the Mender checksum does
//! not match. It is a valid image for a SWUpdate that does not enforce signatures
//! (`the_tampered_swu_installs_when_given_to_swupdate_directly` proves it).
#![cfg(all(feature = "sim", feature = "swupdate"))]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::device::history;
use common::sim::TestSim;
use common::swupdate::{find, SwuDaemon, SwuDir};
use common::wait::{poll, wait_for, wait_for_blocking, Lazy};
use common::{finals, image, script};
use hyper::Method;
use mender_bridge_backends::swupdate::abi::{self, Abi};
use mender_bridge_backends::swupdate::control::{Control, UpdateState};
use serde_json::json;

/// In every attacker byte sequence (image, script): none may be left on the device.
const MARKER: &[u8] = b"MENDER-BRIDGE-ATTACK-MARKER";
/// `nobody`: the squatter's user.
const NOBODY: u32 = 65534;

/// Which SWUpdate runs.
#[derive(Clone, Copy, PartialEq)]
enum Swupdate {
    /// Debian's, `-k`: refuses images whose signature it cannot verify.
    Enforcing,
    /// Built without signed images: installs anything.
    Unsigned,
}

/// The images of one attack: the legitimate .swu and release, the tampered one.
struct Images {
    legit_swu: PathBuf,
    next_swu: PathBuf,
    next_img: Vec<u8>,
    tampered: Vec<u8>,
    canary: PathBuf,
}

impl Images {
    /// Every .swu is built before anything runs: building one resets SWUpdate's target.
    fn new(d: &SwuDir) -> Images {
        let legit_img = image(2 << 20, 71);
        let next_img = image(1 << 20, 73);
        let legit_swu = d.swu("legit", &legit_img, "1.0", "dev");
        let next_swu = d.swu("next", &next_img, "1.0", "dev");
        let canary = d.path("out/canary");
        let mut evil_img = MARKER.repeat(2048);
        evil_img.truncate(64 << 10);
        let script = format!(
            "#!/bin/sh\n# {}\ntouch {}\n",
            String::from_utf8_lossy(MARKER),
            canary.display()
        );
        let desc = format!(
            "software = {{\n  version = \"6.6.6\";\n  hardware-compatibility = [ \"1.0\" ];\n  \
             images: ( {{ filename = \"evil.img\"; device = \"{target}\"; type = \"raw\"; \
             sha256 = \"{img_sha}\"; }} );\n  scripts: ( {{ filename = \"evil.sh\"; \
             type = \"shellscript\"; sha256 = \"{sh_sha}\"; }} );\n}};\n",
            target = d.target().display(),
            img_sha = common::sha256_hex(&evil_img),
            sh_sha = common::sha256_hex(script.as_bytes()),
        );
        let evil = d.swu_files(
            "tampered",
            &desc,
            &[("evil.img", &evil_img), ("evil.sh", script.as_bytes())],
            "other",
        );
        let mut tampered = std::fs::read(evil).unwrap();
        let legit_len = std::fs::metadata(&legit_swu).unwrap().len() as usize;
        assert!(tampered.len() < legit_len);
        tampered.resize(legit_len, 0);
        // The padding must not be attacker bytes the checks below would trip over: the
        // image and the script carry the marker.
        Images {
            legit_swu,
            next_swu,
            next_img,
            tampered,
            canary,
        }
    }
}

/// A device running `mender-bridge daemon` with backend `swupdate`, its SWUpdate (or a
/// squatter's sockets), the simulator.
struct Rig {
    sim: TestSim,
    d: SwuDir,
    swupdate: Option<SwuDaemon>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    key: PathBuf,
    id: String,
    mac: String,
    control: PathBuf,
}

/// `ATTACK_SELF_CHECK` (see the module docs); empty when unset.
fn self_check() -> String {
    std::env::var("ATTACK_SELF_CHECK").unwrap_or_default()
}

/// `mender-bridge` with the device's configuration in `dir` and `args`.
fn bridge(dir: &Path, args: &[&str]) -> Command {
    common::bridge_command(dir, args)
}

impl Rig {
    /// The simulator, SWUpdate (`None`: the caller's sockets at `sockets`), and the daemon
    /// with `mode`, accepted by the simulator.
    async fn start(
        d: SwuDir,
        kind: Option<Swupdate>,
        mode: &str,
        sockets: Option<(PathBuf, PathBuf)>,
    ) -> Rig {
        let sim = TestSim::start().await;
        let swupdate = kind.map(|k| match k {
            Swupdate::Enforcing => SwuDaemon::start(&d),
            Swupdate::Unsigned => SwuDaemon::start_unsigned(&d),
        });
        let (control, progress) = match (&swupdate, sockets) {
            (_, Some(s)) => s,
            (Some(s), None) => (s.control(), s.progress()),
            (None, None) => panic!("no sockets"),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        common::device_data_dir(dir.path());
        std::fs::create_dir_all(p("inventory")).unwrap();
        std::fs::create_dir_all(p("scripts")).unwrap();
        std::fs::write(p("artifact_info"), "artifact_name=release-1\n").unwrap();
        let mac = "02:00:00:00:5a:01".to_string();
        script(&p("identity"), &format!("echo mac={mac}"));
        let key = common::ec_key_pair(dir.path(), "sign");
        let mut conf = json!({
            "ServerURL": sim.handle.base_url(),
            "ServerCertificate": sim.handle.ca_path(),
            "ArtifactVerifyKey": p("sign.pub"),
            "UpdatePollIntervalSeconds": 1,
            "InventoryPollIntervalSeconds": 3600,
            "RetryPollIntervalSeconds": 1,
        });
        if self_check() == "nokey" {
            conf.as_object_mut().unwrap().remove("ArtifactVerifyKey");
        }
        std::fs::write(p("mender.conf"), conf.to_string()).unwrap();
        std::fs::write(
            p("bridge.toml"),
            format!(
                r#"identity_script = "{identity}"
inventory_script_dir = "{inventory}"
state_scripts_dir = "{scripts}"
artifact_info_file = "{info}"
reboot_command = ["/bin/false"]
device_key_type = "p256"
[backend]
type = "swupdate"
[backend.swupdate]
control_socket = "{control}"
progress_socket = "{progress}"
mode = "{mode}"
reboot = false
ustate = false
timeout_seconds = 10
install_timeout_seconds = 120
busy_retries = 2
busy_backoff_ms = 100
sw_versions_file = ""
"#,
                identity = p("identity").display(),
                inventory = p("inventory").display(),
                scripts = p("scripts").display(),
                info = p("artifact_info").display(),
                control = control.display(),
                progress = progress.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(p("daemon.log")).unwrap();
        let child = bridge(dir.path(), &["-l", "debug", "daemon"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mender-bridge daemon");
        let mut rig = Rig {
            sim,
            d,
            swupdate,
            dir,
            child: Some(child),
            key,
            id: String::new(),
            mac,
            control,
        };
        rig.id = rig.accept().await;
        rig
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    async fn accept(&self) -> String {
        let what = Lazy(|| format!("an auth request: {}", self.daemon_log()));
        let id = wait_for(Duration::from_secs(30), what, || async {
            let devs = self.sim.http.manage_ok(Method::GET, "/devices", None).await;
            devs.as_array().and_then(|a| {
                a.iter()
                    .find(|d| d["identity_data"]["mac"] == self.mac.as_str())
                    .and_then(|d| d["id"].as_str())
                    .map(str::to_string)
            })
        })
        .await;
        self.sim
            .http
            .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
            .await;
        id
    }

    /// The signed artifact of `swu` named `name`; with `tamper`, its payload bytes replaced
    /// by it (same length): the signed header with a payload the manifest does not cover.
    fn artifact(&self, name: &str, swu: &Path, tamper: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let artifact = self.d.artifact_signed(name, swu, Some(&self.key));
        let mut crafted = artifact.clone();
        if let Some(t) = tamper {
            let legit = std::fs::read(swu).unwrap();
            assert_eq!(t.len(), legit.len());
            let at = find(&crafted, &legit[..512]).unwrap();
            crafted[at..at + t.len()].copy_from_slice(t);
        }
        (artifact, crafted)
    }

    /// Uploads the signed artifact of `swu` named `name`; with `tamper`, the simulator
    /// then serves [`Self::artifact`]'s crafted bytes in its place (`PUT …/content`).
    /// Deploys it; returns the deployment id and the bytes served.
    async fn deploy_crafted(
        &self,
        name: &str,
        swu: &Path,
        tamper: Option<&[u8]>,
    ) -> (String, Vec<u8>) {
        let (artifact, crafted) = self.artifact(name, swu, tamper);
        let rec = self.sim.upload(artifact.clone()).await;
        if tamper.is_some() && self_check() != "cover" {
            let id = rec["id"].as_str().unwrap();
            self.sim.http.replace_content(id, crafted.clone()).await;
        }
        let served = if tamper.is_some() && self_check() != "cover" {
            crafted
        } else {
            artifact
        };
        (self.sim.deploy(name, &self.id).await, served)
    }

    /// [`Self::deploy_crafted`], the deployment id only.
    async fn deploy(&self, name: &str, swu: &Path, tamper: Option<&[u8]>) -> String {
        self.deploy_crafted(name, swu, tamper).await.0
    }

    /// The device's status history of `dep` once it has a final status.
    async fn finished(&self, dep: &str) -> Vec<(String, Option<String>)> {
        let what = Lazy(|| format!("a final status: {}", self.daemon_log()));
        wait_for(Duration::from_secs(90), what, || async {
            let h = history(&self.sim, dep, &self.id).await;
            if h.iter().any(|(s, _)| s == "success" || s == "failure") {
                Ok(h)
            } else {
                Err(h)
            }
        })
        .await
    }

    /// Waits for `dep`'s final status: no success, and a failure whose substate names
    /// every one of `needles`.
    async fn failed_naming(&self, dep: &str, needles: &[&str]) {
        let h = self.finished(dep).await;
        assert!(!h.iter().any(|(s, _)| s == "success"), "{h:?}");
        assert!(
            h.iter().any(|(s, sub)| s == "failure"
                && sub
                    .as_deref()
                    .is_some_and(|t| needles.iter().all(|n| t.contains(n)))),
            "a failure whose substate names {needles:?}: {h:?}\n{}",
            self.daemon_log()
        );
    }

    /// SWUpdate's `ustate` (kept in memory without a bootloader).
    async fn ustate(&self) -> Option<UpdateState> {
        Control::new(&self.control, Abi::NATIVE, Duration::from_secs(5))
            .update_state()
            .await
            .unwrap()
    }

    /// The effects every attack is judged by (after the daemon's deployment, and again
    /// after `install`).
    async fn effects(
        &self,
        phase: &str,
        imgs: &Images,
        target_before: &[u8],
        ustate_before: Option<UpdateState>,
    ) {
        assert!(!imgs.canary.exists(), "{phase}: the attacker's script ran");
        assert_eq!(
            std::fs::read(self.d.target()).unwrap(),
            target_before,
            "{phase}: SWUpdate's target changed"
        );
        assert!(!self.d.copy().exists(), "{phase}: something was installed");
        assert_eq!(
            self.ustate().await,
            ustate_before,
            "{phase}: ustate changed"
        );
        let data = self.dir.path().join("data");
        for f in SwuDir::files_under(&data) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                find(&bytes, MARKER).is_none(),
                "{phase}: attacker bytes left in {}",
                f.display()
            );
        }
        let spool = data.join("mender-bridge/swupdate-spool");
        assert!(
            SwuDir::files_under(&spool).is_empty(),
            "{phase}: a spool file is left: {:?}",
            SwuDir::files_under(&spool)
        );
        let store = data.join("mender-bridge");
        // The final status is reported before the record goes: give it a moment.
        let _ = poll(Duration::from_secs(10), || async {
            !store.join("deployment.json").exists()
        })
        .await;
        for record in ["deployment.json", "standalone.json"] {
            assert!(
                !store.join(record).exists(),
                "{phase}: a record is left ({record})"
            );
        }
        let o = bridge(self.dir.path(), &["show-artifact"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "release-1",
            "{phase}: show-artifact"
        );
    }

    /// The same crafted bytes through `mender-bridge install <file>`: a failure (not exit
    /// 0 or 4) whose message names one of `cause`.
    async fn install_phase(&self, crafted: &[u8], cause: &[&str]) {
        let file = self.dir.path().join("crafted.mender");
        std::fs::write(&file, crafted).unwrap();
        let mut attempts = 0;
        let o = loop {
            let mut c = bridge(self.dir.path(), &["install", file.to_str().unwrap()]);
            let o = tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap();
            attempts += 1;
            // The daemon holds the install lock through each update check: try again.
            let busy = String::from_utf8_lossy(&o.stderr).contains("another install");
            if !busy || attempts >= 20 {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        };
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            !matches!(o.status.code(), Some(0) | Some(4)),
            "install succeeded (exit {:?}): {stderr}",
            o.status.code()
        );
        assert!(
            cause.iter().any(|c| stderr.contains(c)),
            "install's message names the cause ({cause:?}): {stderr}"
        );
    }

    /// The attack's deployment `dep` ended: its status and effects, then `install` with the
    /// same bytes, then the next, legitimate deployment must succeed.
    async fn assert_repelled(
        &self,
        dep: &str,
        crafted: &[u8],
        imgs: &Images,
        cause: &[&str],
        target_before: &[u8],
        ustate_before: Option<UpdateState>,
    ) {
        let h = self.finished(dep).await;
        assert!(
            !h.iter().any(|(s, _)| s == "success"),
            "no success reported: {h:?}"
        );
        assert!(
            h.iter().any(|(s, sub)| s == "failure"
                && sub
                    .as_deref()
                    .is_some_and(|t| cause.iter().any(|c| t.contains(c)))),
            "a failure whose substate names the cause ({cause:?}): {h:?}\n{}",
            self.daemon_log()
        );
        self.effects("daemon", imgs, target_before, ustate_before)
            .await;
        self.install_phase(crafted, cause).await;
        self.effects("install", imgs, target_before, ustate_before)
            .await;
        let h = history(&self.sim, dep, &self.id).await;
        assert_eq!(finals(&h), 1, "exactly one final status: {h:?}");
        // The next, legitimate deployment.
        let next = self.deploy("release-3", &imgs.next_swu, None).await;
        let h = self.finished(&next).await;
        assert_eq!(
            h.last().map(|(s, _)| s.as_str()),
            Some("success"),
            "{h:?}\n{}",
            self.daemon_log()
        );
        assert_eq!(std::fs::read(self.d.copy()).unwrap(), imgs.next_img);
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The tampered .swu deployed through the daemon with `mode` against `kind`; judged.
async fn padded_swu_attack(kind: Swupdate, mode: &str, cause: &[&str]) -> Rig {
    let d = SwuDir::new();
    let imgs = Images::new(&d);
    let rig = Rig::start(d, Some(kind), mode, None).await;
    let target_before = std::fs::read(rig.d.target()).unwrap();
    let ustate_before = rig.ustate().await;
    let (dep, crafted) = rig
        .deploy_crafted("release-2", &imgs.legit_swu, Some(&imgs.tampered))
        .await;
    rig.assert_repelled(&dep, &crafted, &imgs, cause, &target_before, ustate_before)
        .await;
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_padded_swu_in_spool_mode_never_reaches_swupdate() {
    let rig = padded_swu_attack(Swupdate::Unsigned, "spool", &["checksum mismatch"]).await;
    let daemon = rig.swupdate.as_ref().unwrap();
    assert_eq!(
        daemon.installs_started(),
        1,
        "only the legitimate release reached SWUpdate: {}",
        daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_padded_swu_in_auto_mode_is_spooled_for_a_swupdate_without_signatures() {
    let rig = padded_swu_attack(Swupdate::Unsigned, "auto", &["checksum mismatch"]).await;
    let daemon = rig.swupdate.as_ref().unwrap();
    assert_eq!(daemon.installs_started(), 1, "{}", daemon.log_text());
    assert_eq!(
        daemon.probes(),
        3,
        "one probe for each deployment and one for the install"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_padded_swu_in_stream_mode_is_refused_by_swupdates_signature_check() {
    let rig = padded_swu_attack(
        Swupdate::Enforcing,
        "stream",
        // SWUpdate refuses at the signature and stops reading, or the bridge's checksum
        // fails first if the socket buffers took the rest: either names the cause.
        &[
            "Authentication of all signatures failed",
            "checksum mismatch",
        ],
    )
    .await;
    let daemon = rig.swupdate.as_ref().unwrap();
    assert!(
        daemon
            .log_text()
            .contains("Authentication of all signatures failed"),
        "SWUpdate saw the stream and refused it: {}",
        daemon.log_text()
    );
}

/// The control experiment: the tampered .swu is a working attack on a SWUpdate that does
/// not enforce signatures, when nothing stands in between.
#[tokio::test]
async fn the_tampered_swu_installs_when_given_to_swupdate_directly() {
    let d = SwuDir::new();
    let imgs = Images::new(&d);
    let daemon = SwuDaemon::start_unsigned(&d);
    let swu = d.path("tampered-padded.swu");
    std::fs::write(&swu, &imgs.tampered).unwrap();
    // swupdate-client itself reports an error: SWUpdate closes the socket at the cpio
    // trailer and the client's write of the padding fails. What counts is what SWUpdate did.
    let _ = Command::new("swupdate-client")
        .arg(&swu)
        .env("TMPDIR", &daemon.run)
        .output()
        .unwrap();
    let what = Lazy(|| format!("SWUpdate's install: {}", daemon.log_text()));
    wait_for(Duration::from_secs(20), what, || async {
        daemon.log_text().contains("SWUPDATE successful")
    })
    .await;
    assert!(imgs.canary.exists(), "the attacker's script ran");
    let target = std::fs::read(d.target()).unwrap();
    assert!(
        find(&target, MARKER).is_some(),
        "the attacker's image was written"
    );
}

// --- A squatted SWUpdate socket -------------------------------------------------------

/// A listener on the control and progress socket paths, run as `nobody`: it answers
/// every control message with ACK, sends SUCCESS progress frames, and counts what it
/// receives (written to `<dir>/received`: "connections bytes").
struct Squatter {
    child: Child,
    dir: PathBuf,
}

const SQUATTER: &str = r#"
import os, socket, struct, sys, threading
ctl, prog, out, msg_size, frame_size, status_off = sys.argv[1:7]
msg_size, frame_size, status_off = int(msg_size), int(frame_size), int(status_off)
lock = threading.Lock()
stats = [0, 0]
def note(conns, nbytes):
    with lock:
        stats[0] += conns
        stats[1] += nbytes
        with open(out + ".tmp", "w") as f:
            f.write("%d %d\n" % tuple(stats))
        os.replace(out + ".tmp", out)
def ack():
    m = bytearray(msg_size)
    struct.pack_into("=ii", m, 0, 0x14052001, 1)
    return bytes(m)
def frame(status):
    f = bytearray(frame_size)
    struct.pack_into("=i", f, status_off, status)
    return bytes(f)
def serve_ctl(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                return
            note(0, len(b))
            c.sendall(ack())
    except OSError:
        pass
def serve_prog(c):
    try:
        for s in (1, 2, 3):
            c.sendall(frame(s))
        c.recv(1)
    except OSError:
        pass
def listen(path, serve):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    while True:
        c, _ = s.accept()
        note(1, 0)
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=listen, args=(prog, serve_prog), daemon=True).start()
note(0, 0)
listen(ctl, serve_ctl)
"#;

impl Squatter {
    /// Binds `dir/sockinstctrl` and `dir/swupdateprog` as `nobody`.
    fn start(dir: &Path) -> Squatter {
        let layout = Abi::NATIVE.layout();
        let frame = abi::PROGRESS_NATIVE_UNPACKED;
        let child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(SQUATTER)
            .arg(dir.join("sockinstctrl"))
            .arg(dir.join("swupdateprog"))
            .arg(dir.join("received"))
            .arg(layout.size.to_string())
            .arg(frame.size.to_string())
            .arg(frame.status.to_string())
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (scripts/setup-test-deps.sh installs it)");
        let s = Squatter {
            child,
            dir: dir.to_path_buf(),
        };
        wait_for_blocking(Duration::from_secs(10), "the squatter to bind", || {
            dir.join("sockinstctrl").exists() && dir.join("swupdateprog").exists()
        });
        s
    }

    /// (connections accepted, bytes received).
    fn received(&self) -> (u64, u64) {
        let t = std::fs::read_to_string(self.dir.join("received")).unwrap_or_default();
        let mut it = t.split_whitespace().map(|v| v.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join("sockinstctrl"));
        let _ = std::fs::remove_file(self.dir.join("swupdateprog"));
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory `nobody` can bind sockets in: `mode`, owned by `owner`; its parents
/// traversable.
fn socket_dir(base: &Path, name: &str, mode: u32, owner: u32) -> PathBuf {
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner), Some(owner)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_squatted_swupdate_sockets_get_no_byte_and_fake_no_success() {
    // As /tmp: owned by root, sticky, writable by everyone. SWUpdate is not running; a
    // user bound its socket names first.
    let d = SwuDir::new();
    let imgs = Images::new(&d);
    let tmp = socket_dir(d.dir.path(), "tmp", 0o1777, 0);
    let squatter = Squatter::start(&tmp);
    let sockets = (tmp.join("sockinstctrl"), tmp.join("swupdateprog"));
    let rig = Rig::start(d, None, "auto", Some(sockets)).await;
    let target_before = std::fs::read(rig.d.target()).unwrap();
    let dep = rig.deploy("release-2", &imgs.legit_swu, None).await;
    rig.failed_naming(&dep, &["the peer is uid 65534", "expected root (uid 0"])
        .await;
    let (conns, bytes) = squatter.received();
    assert!(conns >= 1, "the bridge did connect to the squatter");
    assert_eq!(bytes, 0, "the squatter received not a byte");
    assert_eq!(std::fs::read(rig.d.target()).unwrap(), target_before);
    assert!(!rig.d.copy().exists());
    // SWUpdate starts and takes its sockets back: the next deployment succeeds.
    squatter.stop();
    let real = Command::new("swupdate")
        .args(["-v", "-k"])
        .arg(rig.d.path("pki/ca.pem"))
        .args(["-H", common::swupdate::HW])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _real = Kill(real);
    wait_for(Duration::from_secs(20), "swupdate to start", || async {
        tmp.join("sockinstctrl").exists() && tmp.join("swupdateprog").exists()
    })
    .await;
    let next = rig.deploy("release-3", &imgs.next_swu, None).await;
    let h = rig.finished(&next).await;
    assert_eq!(
        h.last().map(|(s, _)| s.as_str()),
        Some("success"),
        "{h:?}\n{}",
        rig.daemon_log()
    );
    assert_eq!(std::fs::read(rig.d.copy()).unwrap(), imgs.next_img);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_squatted_progress_socket_cannot_fake_a_result() {
    // The control socket is the real SWUpdate's; the progress socket path was taken by a
    // user, whose frames say SUCCESS.
    let d = SwuDir::new();
    let imgs = Images::new(&d);
    let tmp = socket_dir(d.dir.path(), "tmp", 0o1777, 0);
    let squatter = Squatter::start(&tmp);
    let daemon = SwuDaemon::start(&d);
    let sockets = (daemon.control(), tmp.join("swupdateprog"));
    let mut rig = Rig::start(d, None, "auto", Some(sockets)).await;
    rig.swupdate = Some(daemon);
    let dep = rig.deploy("release-2", &imgs.legit_swu, None).await;
    rig.failed_naming(&dep, &["swupdateprog", "uid 65534"])
        .await;
    assert!(squatter.received().0 >= 1, "the bridge connected to it");
    assert_eq!(
        rig.swupdate.as_ref().unwrap().installs_started(),
        0,
        "no install was started with a progress socket nobody can trust"
    );
    assert!(!rig.d.copy().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_socket_in_a_users_world_writable_directory_is_refused() {
    // A directory a user made and opened to everyone: whoever bound the socket there, the
    // bridge does not talk to it.
    let d = SwuDir::new();
    let imgs = Images::new(&d);
    let dir = socket_dir(d.dir.path(), "userdir", 0o777, NOBODY);
    let squatter = Squatter::start(&dir);
    let sockets = (dir.join("sockinstctrl"), dir.join("swupdateprog"));
    let rig = Rig::start(d, None, "auto", Some(sockets)).await;
    let dep = rig.deploy("release-2", &imgs.legit_swu, None).await;
    rig.failed_naming(&dep, &["writable by everyone", "uid 65534"])
        .await;
    assert_eq!(
        squatter.received(),
        (0, 0),
        "refused before connecting: the squatter saw nothing"
    );
    assert!(!rig.d.copy().exists());
}
