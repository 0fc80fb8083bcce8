//! The standalone commands through the built binary, with `-c`/`-d`/`--bridge-config` in a
//! temp dir and the raw backend on file slots with a real U-Boot environment (mkenvimage,
//! fw_printenv/fw_setenv): `install` (exit 4 with `--reboot-exit-code`), a simulated reboot,
//! `commit` (0, then 2), `show-provides`, `show-artifact`, `rollback`, a corrupt artifact
//! refused with the environment untouched, and an install from an http:// URL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::slots::SlotRig;
use common::{canary_scripts, device_data_dir, image, listing, DEVICE_TYPE};
use mender_artifact::writer::{
    write_artifact, ArtifactSpec, PayloadFile, ScriptFile, WriteOptions,
};
use mender_artifact::Compression;
use sha2::{Digest, Sha256};

const SLOT_SIZE: usize = 4 << 20;

struct Device {
    dir: tempfile::TempDir,
    rig: SlotRig,
}

impl Device {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let rig = SlotRig::new(&d.join("slots"), SLOT_SIZE);
        device_data_dir(d);
        std::fs::write(d.join("mender.conf"), "{}\n").expect("mender.conf");
        std::fs::write(
            d.join("bridge.toml"),
            format!(
                r#"state_scripts_dir = "{scripts}"
artifact_info_file = "{info}"
{raw}"#,
                scripts = d.join("scripts").display(),
                info = d.join("artifact_info").display(),
                raw = rig.raw_backend_toml(),
            ),
        )
        .expect("bridge.toml");
        Device { dir, rig }
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    /// Runs `mender-bridge -c … -d … --bridge-config … ARGS`.
    fn bridge(&self, args: &[&str]) -> Output {
        common::bridge_command(self.dir.path(), args)
            .output()
            .expect("run mender-bridge")
    }

    /// Runs the binary under the name `mender-update` (a symlink, as a package or image
    /// would install it) with the same files.
    fn mender_update(&self, args: &[&str]) -> Output {
        let link = self.path("mender-update");
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mender-bridge"), &link)
                .expect("symlink");
        }
        common::device_command(&link, self.dir.path(), args)
            .output()
            .expect("run mender-update")
    }

    fn env_var(&self, name: &str) -> String {
        self.rig
            .env()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
            .unwrap_or_default()
    }
}

/// A copy of the uncompressed artifact `good` with one payload byte flipped near the end
/// of `img` (the Mender checksum fails; everything before it streams).
fn corrupt_copy(dev: &Device, good: &Path, img: &[u8]) -> PathBuf {
    let mut bytes = std::fs::read(good).expect("read");
    let tail = &img[img.len() - 4096..];
    let at = bytes
        .windows(tail.len())
        .position(|w| w == tail)
        .expect("payload bytes in the uncompressed artifact");
    bytes[at + 100] ^= 0xff;
    let bad = dev.path("corrupt.mender");
    std::fs::write(&bad, bytes).expect("write corrupt");
    bad
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A rootfs-image artifact written by the library writer (no compression, so the payload
/// bytes are in the file as they are).
async fn artifact(dir: &Path, name: &str, img: &[u8]) -> PathBuf {
    artifact_with(dir, ArtifactSpec::rootfs(name, [DEVICE_TYPE]), img).await
}

/// As [`artifact`], from a spec (scripts, depends).
async fn artifact_with(dir: &Path, spec: ArtifactSpec, img: &[u8]) -> PathBuf {
    let name = spec.name.clone();
    let file = PayloadFile::new(
        "rootfs.ext4",
        img.len() as u64,
        std::io::Cursor::new(img.to_vec()),
    );
    let opts = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let mut out = Vec::new();
    write_artifact(&mut out, &spec, vec![file], &opts)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let path = dir.join(format!("{name}.mender"));
    std::fs::write(&path, out).expect("write artifact");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_reboot_commit_and_the_exit_codes() {
    let dev = Device::new();
    let img = image(1 << 20, 2);
    let good = artifact(dev.dir.path(), "release-2", &img).await;

    let o = dev.bridge(&["show-artifact"]);
    assert_eq!(stdout(&o), "unknown\n", "{}", text(&o));
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "nothing to commit: {}", text(&o));
    let o = dev.bridge(&["rollback"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "nothing to roll back: {}",
        text(&o)
    );

    // A corrupt artifact: one payload byte flipped near the end. Refused, nothing activated.
    let bad = corrupt_copy(&dev, &good, &img);
    let env_before = dev.rig.env();
    let o = dev.bridge(&["install", bad.to_str().expect("utf8"), "--reboot-exit-code"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("checksum"),
        "the reason is given: {}",
        text(&o)
    );
    assert_eq!(
        dev.rig.env(),
        env_before,
        "the boot environment is untouched"
    );
    assert_eq!(
        dev.rig.slot("a"),
        vec![0xaa; SLOT_SIZE],
        "the running slot is untouched"
    );
    let o = dev.bridge(&["commit"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the failed install left no record: {}",
        text(&o)
    );

    // The good one: exit 4 with --reboot-exit-code, slot b written and on trial.
    let o = dev.bridge(&[
        "install",
        good.to_str().expect("utf8"),
        "--reboot-exit-code",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(stdout(&o).contains("Installed release-2"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("installing: 100%"),
        "plain progress lines off a terminal: {}",
        text(&o)
    );
    assert_eq!(&dev.rig.slot("b")[..img.len()], &img[..]);
    assert_eq!(dev.rig.slot("a"), vec![0xaa; SLOT_SIZE]);
    assert_eq!(dev.env_var("mender_boot_part"), "3");
    assert_eq!(dev.env_var("upgrade_available"), "1");

    // A second install while this one awaits commit is refused.
    let o = dev.bridge(&["install", good.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in progress"),
        "{}",
        text(&o)
    );

    // Not rebooted yet: commit refuses, the record stays.
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("reboot"),
        "{}",
        text(&o)
    );

    // The reboot: the bootloader starts slot b.
    dev.rig.boot_into("b");
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(dev.env_var("upgrade_available"), "0");
    assert_eq!(dev.env_var("mender_boot_part"), "3");
    let o = dev.bridge(&["show-provides"]);
    let provides = stdout(&o);
    assert!(provides.contains("artifact_name=release-2\n"), "{provides}");
    let sum = hex::encode(Sha256::digest(&img));
    assert!(
        provides.contains(&format!("rootfs-image.checksum={sum}\n")),
        "{provides}"
    );
    assert_eq!(stdout(&dev.bridge(&["show-artifact"])), "release-2\n");
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "committed already: {}", text(&o));
}

/// Serves `body` to every HTTP/1.1 request on loopback; returns the base URL.
async fn serve(body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = std::sync::Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_from_a_url_then_roll_back() {
    let dev = Device::new();
    let img = image(300 * 1024, 3);
    let art = artifact(dev.dir.path(), "release-3", &img).await;
    let url = format!(
        "{}/release-3.mender",
        serve(std::fs::read(&art).expect("read")).await
    );

    let o = dev.bridge(&["install", &url]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "no --reboot-exit-code: 0: {}",
        text(&o)
    );
    assert_eq!(&dev.rig.slot("b")[..img.len()], &img[..]);
    assert_eq!(dev.env_var("mender_boot_part"), "3");
    assert_eq!(dev.env_var("upgrade_available"), "1");

    // Rolled back before the reboot: the environment boots slot a again.
    let o = dev.bridge(&["rollback"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(dev.env_var("mender_boot_part"), "2");
    assert_eq!(dev.env_var("upgrade_available"), "0");
    assert_eq!(stdout(&dev.bridge(&["show-artifact"])), "unknown\n");
    let o = dev.bridge(&["rollback"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A wrong device type never reaches the backend.
    let spec = ArtifactSpec::rootfs("other", ["another-dev"]);
    let mut out = Vec::new();
    write_artifact(
        &mut out,
        &spec,
        vec![PayloadFile::new(
            "r.ext4",
            4,
            std::io::Cursor::new(vec![1, 2, 3, 4]),
        )],
        &WriteOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let other = dev.path("other.mender");
    std::fs::write(&other, out).expect("write");
    let env_before = dev.rig.env();
    let b_before = dev.rig.slot_sha256("b");
    let o = dev.bridge(&["install", other.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another-dev"),
        "{}",
        text(&o)
    );
    assert_eq!(dev.rig.env(), env_before);
    assert_eq!(dev.rig.slot_sha256("b"), b_before, "no byte written");
}

/// While another process holds the install lock (the daemon deploying, another
/// `install`), the standalone commands refuse instead of writing the same slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_installer_at_a_time() {
    let dev = Device::new();
    let img = image(64 * 1024, 4);
    let art = artifact(dev.dir.path(), "release-4", &img).await;
    let lock =
        mender_bridge::deploy::lock::InstallLock::try_acquire(&dev.path("data/mender-bridge"))
            .expect("lock")
            .expect("free");
    let env_before = dev.rig.env();
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("try again"),
        "{}",
        text(&o)
    );
    assert_eq!(dev.rig.env(), env_before);
    drop(lock);
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A corrupt artifact carrying scripts: none of them is stored or run, and neither are the
/// previous artifact's leftovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_artifact_stores_and_runs_no_script() {
    let dev = Device::new();
    let canary = dev.path("canary");
    std::fs::create_dir_all(&canary).expect("canary dir");
    let leftovers = dev.path("data/scripts");
    std::fs::create_dir_all(&leftovers).expect("scripts dir");
    for s in canary_scripts(&canary) {
        let p = leftovers.join(format!("{}_old", s.name));
        std::fs::write(&p, &s.content).expect("leftover");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let img = image(256 << 10, 5);
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = canary_scripts(&canary);
    let good = artifact_with(dev.dir.path(), spec, &img).await;
    let bad = corrupt_copy(&dev, &good, &img);
    let env_before = dev.rig.env();

    let o = dev.bridge(&["install", bad.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("checksum"),
        "{}",
        text(&o)
    );
    assert_eq!(listing(&canary), Vec::<String>::new(), "scripts ran");
    let stored = listing(&leftovers);
    assert!(
        stored.iter().all(|n| n == "version"),
        "scripts of an unverified artifact (or old leftovers) are on disk: {stored:?}"
    );
    assert_eq!(dev.rig.env(), env_before);
    assert_eq!(dev.rig.slot("a"), vec![0xaa; SLOT_SIZE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_artifact_install_leave_rolls_back_the_standalone_install() {
    let dev = Device::new();
    let img = image(256 << 10, 6);
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![ScriptFile::new(
        "ArtifactInstall_Leave_01_fails",
        "#!/bin/sh\nexit 3\n",
    )];
    let a = artifact_with(dev.dir.path(), spec, &img).await;
    let env_before = dev.rig.env();
    let o = dev.bridge(&["install", a.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ArtifactInstall_Leave_01_fails"),
        "{}",
        text(&o)
    );
    assert_eq!(dev.rig.env(), env_before, "rolled back");
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "no record left: {}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_artifact_install_leave_commit_refuses_and_rollback_reverts() {
    let dev = Device::new();
    let img = image(256 << 10, 7);
    let marker = dev.path("leave-started");
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![ScriptFile::new(
        "ArtifactInstall_Leave_01_slow",
        format!("#!/bin/sh\ntouch {}\nsleep 30\n", marker.display()),
    )];
    let a = artifact_with(dev.dir.path(), spec, &img).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mender-bridge"))
        .arg("-c")
        .arg(dev.path("mender.conf"))
        .arg("-d")
        .arg(dev.path("data"))
        .arg("--bridge-config")
        .arg(dev.path("bridge.toml"))
        .args(["install", a.to_str().expect("utf8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start install");
    common::wait::wait_for_blocking(
        std::time::Duration::from_secs(20),
        "ArtifactInstall_Leave to run",
        || marker.exists(),
    );
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert_eq!(dev.env_var("upgrade_available"), "1", "activated");

    // Even after a reboot into the new slot, the interrupted install is not committed.
    dev.rig.boot_into("b");
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("interrupted"),
        "{}",
        text(&o)
    );
    let o = dev.bridge(&["rollback"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(dev.env_var("mender_boot_part"), "2", "{}", dev.rig.env());
    assert_eq!(dev.env_var("upgrade_available"), "0");
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A commit that fails (here `ArtifactCommit_Enter`) rolls the install back at once, as
/// the official client does ("Committing failed. Rolled back."): `ArtifactCommit_Error`,
/// the rollback states and the failure states run, the old slot boots again, the new
/// provides are never stored, and the user is told to reboot out of the new software.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_commit_rolls_the_install_back() {
    let dev = Device::new();
    let img = image(256 << 10, 8);
    let trace = dev.path("trace");
    let record = |state: &str| {
        ScriptFile::new(
            format!("{state}_01"),
            format!("#!/bin/sh\necho {state} >> {}\n", trace.display()),
        )
    };
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![
        ScriptFile::new(
            "ArtifactCommit_Enter_01_fails",
            format!(
                "#!/bin/sh\necho ArtifactCommit_Enter >> {}\nexit 3\n",
                trace.display()
            ),
        ),
        record("ArtifactCommit_Error"),
        record("ArtifactCommit_Leave"),
        record("ArtifactRollback_Enter"),
        record("ArtifactFailure_Enter"),
    ];
    let a = artifact_with(dev.dir.path(), spec, &img).await;
    let o = dev.bridge(&["install", a.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    dev.rig.boot_into("b");

    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ArtifactCommit_Enter_01_fails"),
        "{}",
        text(&o)
    );
    assert!(
        err.contains("reboot"),
        "the reboot out is asked for: {}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap_or_default(),
        "ArtifactCommit_Enter\nArtifactCommit_Error\nArtifactRollback_Enter\nArtifactFailure_Enter\n"
    );
    assert_eq!(dev.env_var("mender_boot_part"), "2", "{}", dev.rig.env());
    assert_eq!(dev.env_var("upgrade_available"), "0");
    let o = dev.bridge(&["show-provides"]);
    assert!(!stdout(&o).contains("release-2"), "{}", text(&o));
    let o = dev.bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "no record left: {}", text(&o));
}

/// `--stop-before Cleanup` after a download that failed to verify stops there, as the
/// official client's: the failure is reported, `resume` runs the cleanup (and reports the
/// failure again), then nothing is in progress; nothing was activated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_stops_before_the_cleanup() {
    let dev = Device::new();
    let img = image(256 << 10, 9);
    let good = artifact(dev.dir.path(), "release-2", &img).await;
    let bad = corrupt_copy(&dev, &good, &img);
    let env_before = dev.rig.env();
    let o = dev.bridge(&[
        "install",
        bad.to_str().expect("utf8"),
        "--stop-before",
        "Cleanup",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("checksum"),
        "{}",
        text(&o)
    );
    let o = dev.bridge(&["resume"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the stop kept the failed install for `resume`: {}",
        text(&o)
    );
    let o = dev.bridge(&["resume"]);
    assert_eq!(o.status.code(), Some(2), "cleaned up: {}", text(&o));
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
}

/// The official Mender 4/5 command line, `mender-update`, drives the same install with its
/// commands, options and exit codes: 4 for a reboot with `--reboot-exit-code`, 2 when
/// commit, rollback or resume find nothing, 1 for a state `--stop-before` cannot stop at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mender_update_command_line_and_exit_codes() {
    let dev = Device::new();
    let img = image(1 << 20, 3);
    let good = artifact(dev.dir.path(), "release-3", &img).await;
    let path = good.to_str().expect("utf8");

    let o = dev.mender_update(&["-v"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        text(&o)
    );
    let o = dev.mender_update(&["--help"]);
    for cmd in [
        "check-update",
        "commit",
        "daemon",
        "install",
        "resume",
        "rollback",
        "send-inventory",
        "show-artifact",
        "show-provides",
    ] {
        assert!(stdout(&o).contains(cmd), "{cmd} in the help: {}", text(&o));
    }
    assert_eq!(stdout(&dev.mender_update(&["show-artifact"])), "unknown\n");
    let o = dev.mender_update(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = dev.mender_update(&["rollback"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = dev.mender_update(&["resume"]);
    assert_eq!(o.status.code(), Some(2), "nothing to resume: {}", text(&o));
    let o = dev.mender_update(&["install", path, "--stop-before", "ArtifactReboot_Enter"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot stop before \"ArtifactReboot_Enter\""),
        "{}",
        text(&o)
    );
    assert_eq!(dev.env_var("upgrade_available"), "0", "nothing ran");

    let log = dev.path("update.log");
    let log_arg = log.to_str().expect("utf8");
    let o = dev.mender_update(&[
        "-l",
        "info",
        "-L",
        log_arg,
        "install",
        path,
        "--reboot-exit-code",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(dev.env_var("upgrade_available"), "1");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("INFO"), "-L took the log: {logged:?}");
    dev.rig.boot_into("b");
    let o = dev.mender_update(&["commit"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        stdout(&dev.mender_update(&["show-artifact"])),
        "release-3\n"
    );
    assert!(stdout(&dev.mender_update(&["show-provides"])).contains("artifact_name=release-3\n"));
    let o = dev.mender_update(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `mender-update install --stop-before ArtifactInstall_Enter` writes the inactive slot and
/// stops; `resume` activates it only after reading the slot back against the manifest's
/// SHA-256. An attacker (or a disk) that changes the slot in between gets nothing booted:
/// the resume fails, the boot environment is untouched and the record is gone. A clean
/// stop and resume goes through the reboot and a commit split at ArtifactCommit_Leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_before_the_install_then_resume_and_a_changed_slot_is_refused() {
    let dev = Device::new();
    let img = image(1 << 20, 5);
    let good = artifact(dev.dir.path(), "release-5", &img).await;
    let path = good.to_str().expect("utf8");
    let env_before = dev.rig.env();
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let o = dev.mender_update(&["install", path, "--stop-before", "ArtifactInstall_Enter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains("Streamed release-5 to storage, but not installed"),
        "{}",
        text(&o)
    );
    assert_eq!(&dev.rig.slot("b")[..img.len()], &img[..], "slot b written");
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    let o = dev.mender_update(&["commit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("`resume` installs it"), "{}", text(&o));

    // The attack: one byte of the written slot changes before the resume.
    let slot_b = dev.rig.dir.join("b.img");
    let mut bytes = std::fs::read(&slot_b).expect("slot b");
    bytes[img.len() / 2] ^= 0x01;
    std::fs::write(&slot_b, bytes).expect("tamper");
    let o = dev.mender_update(&["resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("read-back of slot b does not match"),
        "{}",
        text(&o)
    );
    assert_eq!(
        dev.env_var("mender_boot_part"),
        "2",
        "slot b never activated"
    );
    assert_eq!(dev.env_var("upgrade_available"), "0");
    assert_eq!(stdout(&dev.mender_update(&["show-artifact"])), "unknown\n");
    let o = dev.mender_update(&["resume"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the failed install is over: {}",
        text(&o)
    );

    // A clean stop and resume: activated only now, then the reboot and the commit.
    let o = dev.mender_update(&["install", path, "--stop-before", "ArtifactInstall_Enter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    let o = dev.mender_update(&["resume", "--reboot-exit-code"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(dev.env_var("mender_boot_part"), "3");
    assert_eq!(dev.env_var("upgrade_available"), "1");
    dev.rig.boot_into("b");
    let o = dev.mender_update(&["resume", "--stop-before", "ArtifactCommit_Leave"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains("Stopped before ArtifactCommit_Leave"),
        "{}",
        text(&o)
    );
    assert_eq!(dev.env_var("upgrade_available"), "0", "committed");
    assert_eq!(
        stdout(&dev.mender_update(&["show-artifact"])),
        "release-5\n"
    );
    let o = dev.mender_update(&["rollback"]);
    assert_eq!(o.status.code(), Some(1), "past the commit: {}", text(&o));
    let o = dev.mender_update(&["resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("Committed release-5."), "{}", text(&o));
    let o = dev.mender_update(&["resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
