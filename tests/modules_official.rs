//! The official Update Modules of Debian's `mender-client` (`single-file`, `directory`,
//! `script`, `deb` from /usr/share/mender/modules/v3, copied into each device's own
//! `modules_dir`: they are plain shell scripts that never refer to their own path) driven
//! by the bridge as the official client drives them, with artifacts made by the real
//! `mender-artifact write module-image` the way Mender's generators make them.
//!
//! For each module: a deployment through the simulator and `mender-bridge daemon`
//! (`downloading → installing → success`, no reboot; what the module did on disk; the module
//! tree `<data_dir>/modules/v3/payloads/0000/tree` removed by `Cleanup`; the new artifact
//! name in the inventory and `show-provides`), and the same artifact through
//! `mender-bridge install` and `commit` (committed at once by `install` for the modules
//! that cannot roll back, as the official client does), or `rollback`.
//!
//! Failures: `single-file` into an impossible place (the module's stderr in the deployment
//! log and in what `install` prints), `single-file` rolled back after a failing
//! `ArtifactInstall_Leave` (the previous file restored), a `script` payload exiting 1
//! (`<name>_INCONSISTENT`), a payload type with no module (refused before the payload
//! streams). The inventory's `update_modules`.
//!
//! Each device lives in a temp dir; the `deb` tests purge their package when they end,
//! however they end, and run one at a time (dpkg's lock).
#![cfg(feature = "sim")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::daemon::{accept, sim_conf, write_device_files, Daemon, DeviceFiles};
use common::device::{status_sequence, wait_final};
use common::modules::{copy_official_modules, ModuleArtifact, TestDeb, DPKG, OFFICIAL_MODULES};
use common::sim::TestSim;
use common::slots::SlotRig;
use common::wait::{wait_for, Lazy};
use common::{finals, image, listing, mode, script};
use serde_json::{json, Value};

/// `ModuleTimeoutSeconds`: no state of these modules takes more than a moment.
const MODULE_TIMEOUT_SECS: u64 = 60;
/// The longest a deployment may take from upload to final status.
const DEPLOYMENT_LIMIT: Duration = Duration::from_secs(90);
/// The longest the daemon may take to stop on SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A device with the official modules in its own `modules_dir`, file slots for the raw
/// backend (which `rootfs-image` payloads would go to), a reboot command that only leaves
/// a marker, and, with a simulator, the settings to run the daemon against it.
struct ModDevice {
    dir: tempfile::TempDir,
    _rig: SlotRig,
    mac: String,
}

impl ModDevice {
    fn new(sim: Option<&TestSim>, mac: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let rig = SlotRig::new(&d.join("slots"), 1 << 20);
        copy_official_modules(&d.join("modules"));
        script(
            &d.join("reboot.sh"),
            &format!("touch {}", d.join("rebooted").display()),
        );
        let mut conf = sim.map_or_else(|| json!({}), |sim| sim_conf(sim, 1, 3600));
        conf["ModuleTimeoutSeconds"] = json!(MODULE_TIMEOUT_SECS);
        write_device_files(
            d,
            DeviceFiles {
                mac,
                conf,
                reboot: &d.join("reboot.sh"),
                modules_dir: Some(&d.join("modules")),
                raw_toml: rig.raw_backend_toml(),
            },
        );
        ModDevice {
            dir,
            _rig: rig,
            mac: mac.to_string(),
        }
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    fn modules(&self) -> PathBuf {
        self.path("modules")
    }

    /// The Update Module's file tree for payload 0000.
    fn tree(&self) -> PathBuf {
        self.path("data/modules/v3/payloads/0000/tree")
    }

    fn bridge(&self, args: &[&str]) -> Output {
        common::bridge_command(self.dir.path(), args)
            .output()
            .expect("run mender-bridge")
    }

    /// `mender-bridge show-provides`.
    fn provides(&self) -> String {
        stdout(&self.bridge(&["show-provides"]))
    }

    /// Whether the reboot command ran.
    fn rebooted(&self) -> bool {
        self.path("rebooted").exists()
    }

    /// Starts the daemon (debug log in `daemon-<n>.log`).
    fn daemon(&self, n: u32) -> Daemon {
        Daemon::start(
            common::bridge_command(self.dir.path(), &["-l", "debug", "daemon"]),
            &self.path(&format!("daemon-{n}.log")),
        )
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A deployment run through the daemon to its final status.
struct Deployed {
    id: String,
    dep: String,
    history: Vec<(String, Option<String>)>,
    /// The deployment log the device uploaded (with a failure).
    log: String,
    daemon: Daemon,
}

impl Deployed {
    /// The history, the deployment log and the daemon log's tail, for a failure message.
    fn context(&self) -> String {
        format!(
            "history {:?}\ndeployment log:\n{}\ndaemon log tail:\n{}",
            self.history,
            self.log,
            self.daemon.log_tail(40)
        )
    }
}

/// Starts the daemon on `dev`, admits the device, uploads `artifact` (named `name`),
/// deploys it and waits for the final status.
async fn deploy_through_daemon(
    sim: &TestSim,
    dev: &ModDevice,
    artifact: &Path,
    name: &str,
) -> Deployed {
    let daemon = dev.daemon(1);
    let id = accept(sim, &dev.mac, Duration::from_secs(30)).await;
    sim.http.upload(artifact).await;
    let dep = sim.deploy(name, &id).await;
    let what = Lazy(|| {
        format!(
            "the final status of {name}; daemon log tail:\n{}",
            daemon.log_tail(40)
        )
    });
    let history = wait_final(sim, &dep, &id, DEPLOYMENT_LIMIT, what).await;
    // A failure's log follows its status (the official client's order too): wait for it.
    let log = if history.last().is_some_and(|h| h.0 == "failure") {
        wait_for(
            Duration::from_secs(20),
            "the deployment log after the failure",
            || async {
                let log = sim.deployment_log(&dep, &id).await;
                if log.is_empty() {
                    Err(log)
                } else {
                    Ok(log)
                }
            },
        )
        .await
    } else {
        sim.deployment_log(&dep, &id).await
    };
    Deployed {
        id,
        dep,
        history,
        log,
        daemon,
    }
}

/// An inventory attribute's value, if the device sent it.
async fn attribute(sim: &TestSim, id: &str, name: &str) -> Option<Value> {
    sim.inventory(id)
        .await
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
        .map(|a| a["value"].clone())
}

/// What every successful module deployment shows: `downloading → installing → success`
/// with one final status, no reboot, the tree gone after `Cleanup`, the new artifact name
/// in the inventory and in `show-provides` (with the payload's own provide), and a clean
/// stop of the daemon.
async fn assert_deployed(sim: &TestSim, dev: &ModDevice, mut d: Deployed, name: &str, ty: &str) {
    assert_eq!(
        status_sequence(&d.history),
        ["downloading", "installing", "success"],
        "{}",
        d.context()
    );
    assert_eq!(finals(&d.history), 1, "{}", d.context());
    assert!(!dev.rebooted(), "no module asked for a reboot");
    assert!(
        !dev.tree().exists(),
        "Cleanup ran and the tree is removed: {:?}\n{}",
        listing(&dev.tree()),
        d.context()
    );
    wait_for(
        Duration::from_secs(20),
        format!("inventory artifact_name={name}"),
        || async {
            let v = attribute(sim, &d.id, "artifact_name").await;
            if v.as_ref().and_then(Value::as_str) == Some(name) {
                Ok(())
            } else {
                Err(v)
            }
        },
    )
    .await;
    let provides = dev.provides();
    assert!(
        provides.contains(&format!("artifact_name={name}\n")),
        "{provides}"
    );
    assert!(
        provides.contains(&format!("rootfs-image.{ty}.version={name}\n")),
        "{provides}"
    );
    assert_eq!(d.daemon.stop(STOP_LIMIT), 0, "{}", d.daemon.log_tail(40));
}

/// What every failed module deployment shows: `downloading → installing → failure`, one
/// final status, no reboot, the tree gone, and the device's artifact name `artifact_name`:
/// still `release-1` after a rollback, `<name>_INCONSISTENT` when the module cannot roll
/// back (as the official client records it).
fn assert_failed(dev: &ModDevice, d: &Deployed, artifact_name: &str) {
    assert_eq!(
        status_sequence(&d.history),
        ["downloading", "installing", "failure"],
        "{}",
        d.context()
    );
    assert_eq!(finals(&d.history), 1, "{}", d.context());
    assert!(!dev.rebooted());
    assert!(
        !dev.tree().exists(),
        "the tree is removed after a failure too: {:?}\n{}",
        listing(&dev.tree()),
        d.context()
    );
    let provides = dev.provides();
    assert!(
        provides.contains(&format!("artifact_name={artifact_name}\n")),
        "{provides}\n{}",
        d.context()
    );
}

/// When a standalone install of a module that needs no reboot is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// The module supports rollback: `install` leaves it to `commit` (or `rollback`).
    ByTheUser,
    /// The module cannot roll back: `install` commits at once, as the official client does
    /// ("Artifact doesn't support rollback. Committing immediately.").
    AtOnce,
}

/// `mender-bridge install <artifact>` then `commit`, as a user runs them: `install` exits
/// 0 and the module has done its work (`effect`, checked after each step). With
/// [`Commit::ByTheUser`] `install` says to commit, the device still provides `release-1`
/// and the module's tree waits for `ArtifactCommit`; `commit` exits 0. With
/// [`Commit::AtOnce`] `install` says it committed, and `commit` finds nothing (2). Either
/// way the device then provides `name` (and the payload's own provide), the tree is gone
/// (`Cleanup`), and a second `commit` exits 2.
fn install_then_commit(
    dev: &ModDevice,
    artifact: &Path,
    name: &str,
    ty: &str,
    when: Commit,
    effect: impl Fn(),
) {
    let o = dev.bridge(&["install", artifact.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "install: {}", text(&o));
    effect();
    assert!(!dev.rebooted());
    let provides = dev.provides();
    match when {
        Commit::ByTheUser => {
            assert!(
                stdout(&o).contains(&format!("Installed {name}."))
                    && stdout(&o).contains("mender-bridge commit"),
                "install: {}",
                text(&o)
            );
            assert!(
                provides.contains("artifact_name=release-1\n"),
                "not committed yet: {provides}"
            );
            assert!(
                dev.tree().is_dir(),
                "the tree waits for ArtifactCommit and Cleanup"
            );
            let c = dev.bridge(&["commit"]);
            assert_eq!(c.status.code(), Some(0), "commit: {}", text(&c));
            assert!(
                stdout(&c).contains(&format!("Committed {name}")),
                "commit: {}",
                text(&c)
            );
        }
        Commit::AtOnce => {
            assert!(
                stdout(&o).contains(&format!("Installed and committed {name}.")),
                "install: {}",
                text(&o)
            );
            let c = dev.bridge(&["commit"]);
            assert_eq!(
                c.status.code(),
                Some(2),
                "nothing left to commit: {}",
                text(&c)
            );
        }
    }
    effect();
    let provides = dev.provides();
    assert!(
        provides.contains(&format!("artifact_name={name}\n")),
        "{provides}"
    );
    assert!(
        provides.contains(&format!("rootfs-image.{ty}.version={name}\n")),
        "{provides}"
    );
    assert!(
        !dev.tree().exists(),
        "Cleanup ran: {:?}",
        listing(&dev.tree())
    );
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "second commit: {}", text(&c));
}

// ---------------------------------------------------------------------------- single-file

/// The `single-file` artifact `name` putting `hello.txt` (`content`, mode `mode`) into
/// `dest`.
fn single_file(dev: &ModDevice, name: &str, dest: &Path, content: &str, mode: u32) -> PathBuf {
    ModuleArtifact::single_file(
        dev.dir.path(),
        name,
        dest,
        "hello.txt",
        content.as_bytes(),
        mode,
    )
    .write()
}

/// `dest/hello.txt` holding `content` with mode `mode`.
fn previous_file(dest: &Path, content: &str, mode: u32) {
    std::fs::create_dir_all(dest).expect("dest dir");
    let f = dest.join("hello.txt");
    std::fs::write(&f, content).expect("previous file");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_through_the_daemon() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:a1:01");
    let dest = dev.path("target");
    previous_file(&dest, "old\n", 0o600);
    let art = single_file(&dev, "sf-2", &dest, "release two\n", 0o640);

    let d = deploy_through_daemon(&sim, &dev, &art, "sf-2").await;
    let ctx = d.context();
    assert_eq!(read(&dest.join("hello.txt")), "release two\n", "{ctx}");
    assert_eq!(mode(&dest.join("hello.txt")), 0o640, "the permissions file");
    assert_eq!(listing(&dest), ["hello.txt"], "no .tmp left: {ctx}");
    assert_deployed(&sim, &dev, d, "sf-2", "single-file").await;
    sim.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_standalone_install_and_commit() {
    let dev = ModDevice::new(None, "02:00:00:00:a2:01");
    let dest = dev.path("target");
    previous_file(&dest, "old\n", 0o600);
    let art = single_file(&dev, "sf-2", &dest, "release two\n", 0o640);
    install_then_commit(&dev, &art, "sf-2", "single-file", Commit::ByTheUser, || {
        assert_eq!(read(&dest.join("hello.txt")), "release two\n");
        assert_eq!(mode(&dest.join("hello.txt")), 0o640);
        assert_eq!(listing(&dest), ["hello.txt"]);
    });
}

/// `install` then `rollback`: `single-file`'s `ArtifactRollback` puts the previous file
/// back (content and mode), the device still provides `release-1`, the tree is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_standalone_rollback_restores_the_previous_file() {
    let dev = ModDevice::new(None, "02:00:00:00:a2:02");
    let dest = dev.path("target");
    previous_file(&dest, "old\n", 0o600);
    let art = single_file(&dev, "sf-2", &dest, "release two\n", 0o640);
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(read(&dest.join("hello.txt")), "release two\n");

    let r = dev.bridge(&["rollback"]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    assert!(stdout(&r).contains("Rolled back sf-2"), "{}", text(&r));
    assert_eq!(read(&dest.join("hello.txt")), "old\n");
    assert_eq!(mode(&dest.join("hello.txt")), 0o600);
    assert_eq!(listing(&dest), ["hello.txt"]);
    assert!(!dev.tree().exists(), "{:?}", listing(&dev.tree()));
    let provides = dev.provides();
    assert!(provides.contains("artifact_name=release-1\n"), "{provides}");
    assert!(!provides.contains("single-file"), "{provides}");
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
}

/// `dest_dir` below a regular file: `mkdir -p` fails in `ArtifactInstall`; its message is
/// in the deployment log, and `install` shows it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_into_an_impossible_place_fails_with_the_modules_stderr() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:a3:01");
    let blocker = dev.path("not-a-dir");
    std::fs::write(&blocker, "blocker\n").expect("blocker");
    let art = single_file(&dev, "sf-bad", &blocker.join("sub"), "never\n", 0o644);

    let mut d = deploy_through_daemon(&sim, &dev, &art, "sf-bad").await;
    assert_failed(&dev, &d, "release-1");
    assert!(
        d.log.contains("cannot create directory") && d.log.contains("Not a directory"),
        "mkdir's stderr is in the deployment log: {}",
        d.context()
    );
    assert!(d.log.contains("ArtifactInstall"), "{}", d.context());
    assert_eq!(read(&blocker), "blocker\n");
    assert_eq!(d.daemon.stop(STOP_LIMIT), 0, "{}", d.daemon.log_tail(40));
    sim.handle.shutdown().await;

    // The same artifact standalone: exit 1, nothing to commit, the module's reason shown.
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!dev.tree().exists(), "{:?}", listing(&dev.tree()));
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
    assert!(dev.provides().contains("artifact_name=release-1\n"));
    assert_eq!(read(&blocker), "blocker\n");
    assert!(
        stderr(&o).contains("Not a directory"),
        "install shows the module's stderr: {}",
        text(&o)
    );
}

/// The module installs the new file, then the artifact's `ArtifactInstall_Leave` script
/// fails: the bridge rolls back, `single-file`'s `ArtifactRollback` puts the previous file
/// back (content and mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_rolled_back_after_a_failing_leave_script_restores_the_previous_file() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:a4:01");
    let dest = dev.path("target");
    previous_file(&dest, "old\n", 0o600);
    let seen = dev.path("seen-at-leave");
    let art =
        ModuleArtifact::single_file(dev.dir.path(), "sf-2", &dest, "hello.txt", b"new\n", 0o644)
            .script(
                "ArtifactInstall_Leave_01_refuse",
                &format!(
                    "#!/bin/sh\ncat {} >> {}\necho 'leave refuses sf-2' >&2\nexit 1\n",
                    dest.join("hello.txt").display(),
                    seen.display()
                ),
            )
            .write();

    let mut d = deploy_through_daemon(&sim, &dev, &art, "sf-2").await;
    assert_failed(&dev, &d, "release-1");
    assert_eq!(
        read(&seen),
        "new\n",
        "the module had installed it: {}",
        d.context()
    );
    assert_eq!(read(&dest.join("hello.txt")), "old\n", "{}", d.context());
    assert_eq!(mode(&dest.join("hello.txt")), 0o600);
    assert_eq!(listing(&dest), ["hello.txt"]);
    assert!(d.log.contains("leave refuses sf-2"), "{}", d.context());
    assert_eq!(d.daemon.stop(STOP_LIMIT), 0, "{}", d.daemon.log_tail(40));
    sim.handle.shutdown().await;

    // Standalone: the same.
    std::fs::remove_file(&seen).expect("reset");
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("ArtifactInstall_Leave_01_refuse"),
        "{}",
        text(&o)
    );
    assert_eq!(read(&seen), "new\n");
    assert_eq!(read(&dest.join("hello.txt")), "old\n", "{}", text(&o));
    assert_eq!(mode(&dest.join("hello.txt")), 0o600);
    assert!(!dev.tree().exists(), "{:?}", listing(&dev.tree()));
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
    assert!(dev.provides().contains("artifact_name=release-1\n"));
}

// ------------------------------------------------------------------------------ directory

/// A tree for the `directory` module: `a.txt`, `sub/b.sh` (0755).
fn directory_tree(dev: &ModDevice) -> PathBuf {
    let tree = dev.path("update-tree");
    std::fs::create_dir_all(tree.join("sub")).expect("tree");
    std::fs::write(tree.join("a.txt"), "A\n").expect("a");
    std::fs::write(tree.join("sub/b.sh"), "#!/bin/sh\necho B\n").expect("b");
    std::fs::set_permissions(
        tree.join("sub/b.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    tree
}

/// A destination directory with content the update replaces.
fn old_directory(dest: &Path) {
    std::fs::create_dir_all(dest.join("keep")).expect("dest");
    std::fs::write(dest.join("old.txt"), "old\n").expect("old");
    std::fs::write(dest.join("keep/x"), "x\n").expect("x");
}

/// `dest` holds exactly the update's tree (`ctx`: for the failure message).
fn assert_directory_replaced(dest: &Path, ctx: &str) {
    assert_eq!(
        listing(dest),
        ["a.txt", "sub"],
        "the old content is gone: {ctx}"
    );
    assert_eq!(listing(&dest.join("sub")), ["b.sh"], "{ctx}");
    assert_eq!(read(&dest.join("a.txt")), "A\n");
    assert_eq!(read(&dest.join("sub/b.sh")), "#!/bin/sh\necho B\n");
    assert_eq!(mode(&dest.join("sub/b.sh")), 0o755);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_through_the_daemon() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:b1:01");
    let dest = dev.path("www");
    old_directory(&dest);
    let tree = directory_tree(&dev);
    let art = ModuleArtifact::directory(dev.dir.path(), "dir-2", &dest, &tree).write();

    let d = deploy_through_daemon(&sim, &dev, &art, "dir-2").await;
    assert_directory_replaced(&dest, &d.context());
    assert_deployed(&sim, &dev, d, "dir-2", "directory").await;
    sim.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_standalone_install_and_commit() {
    let dev = ModDevice::new(None, "02:00:00:00:b2:01");
    let dest = dev.path("www");
    old_directory(&dest);
    let tree = directory_tree(&dev);
    let art = ModuleArtifact::directory(dev.dir.path(), "dir-2", &dest, &tree).write();
    install_then_commit(&dev, &art, "dir-2", "directory", Commit::ByTheUser, || {
        assert_directory_replaced(&dest, "")
    });
}

// --------------------------------------------------------------------------------- script

/// A `script` payload appending `ran <its name>` to `marker` (so a second run shows).
fn marker_script(marker: &Path) -> String {
    format!(
        "#!/bin/sh\necho \"ran $(basename \"$0\")\" >> {}\n",
        marker.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_through_the_daemon() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:c1:01");
    let marker = dev.path("script-ran");
    let art = ModuleArtifact::script_payload(
        dev.dir.path(),
        "script-2",
        "run.sh",
        &marker_script(&marker),
    )
    .write();

    let d = deploy_through_daemon(&sim, &dev, &art, "script-2").await;
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "ran run.sh\n",
        "the payload ran exactly once: {}",
        d.context()
    );
    assert_deployed(&sim, &dev, d, "script-2", "script").await;
    sim.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_standalone_install_and_commit() {
    let dev = ModDevice::new(None, "02:00:00:00:c2:01");
    let marker = dev.path("script-ran");
    let art = ModuleArtifact::script_payload(
        dev.dir.path(),
        "script-2",
        "run.sh",
        &marker_script(&marker),
    )
    .write();
    install_then_commit(&dev, &art, "script-2", "script", Commit::AtOnce, || {
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap_or_default(),
            "ran run.sh\n",
            "the payload ran exactly once"
        );
    });
}

/// A `script` payload that exits 1: `failure`, its stderr in the deployment log; the
/// module cannot roll back, so the deployment ends with one `failure` and the device's
/// artifact name becomes `script-bad_INCONSISTENT`, as the official client records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_payload_exiting_1_fails_with_its_stderr() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:c3:01");
    let art = ModuleArtifact::script_payload(
        dev.dir.path(),
        "script-bad",
        "fail.sh",
        "#!/bin/sh\necho 'script payload failed on purpose' >&2\nexit 1\n",
    )
    .write();

    let mut d = deploy_through_daemon(&sim, &dev, &art, "script-bad").await;
    assert_failed(&dev, &d, "script-bad_INCONSISTENT");
    assert!(
        d.log.contains("script payload failed on purpose"),
        "{}",
        d.context()
    );
    assert_eq!(d.daemon.stop(STOP_LIMIT), 0, "{}", d.daemon.log_tail(40));
    sim.handle.shutdown().await;

    // Standalone: the same failure, the same record (the module cannot undo what the
    // script did), and the reason shown to the user.
    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!dev.tree().exists(), "{:?}", listing(&dev.tree()));
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
    let provides = dev.provides();
    assert!(
        provides.contains("artifact_name=script-bad_INCONSISTENT\n"),
        "{provides}"
    );
    assert!(
        stderr(&o).contains("script payload failed on purpose"),
        "install shows the module's stderr: {}",
        text(&o)
    );
}

// ------------------------------------------------------------------------------------ deb

/// The package is installed and so is its file (`ctx`: for the failure message).
fn assert_deb_installed(deb: &TestDeb, ctx: &str) {
    assert_eq!(
        deb.status().as_deref(),
        Some("install ok installed"),
        "dpkg -s {}: {ctx}",
        deb.package
    );
    assert_eq!(
        std::fs::read_to_string(&deb.file).ok().as_deref(),
        Some(deb.content.as_str()),
        "{} installed by the package",
        deb.file.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deb_through_the_daemon() {
    let _dpkg = DPKG.lock().await;
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:d1:01");
    // Purges the package when the test ends, however it ends.
    let deb = TestDeb::build(dev.dir.path(), "daemon");
    assert_eq!(deb.status(), None, "not installed before");
    let art = ModuleArtifact::deb(dev.dir.path(), "deb-2", &deb.deb).write();

    let d = deploy_through_daemon(&sim, &dev, &art, "deb-2").await;
    assert_deb_installed(&deb, &d.context());
    assert_deployed(&sim, &dev, d, "deb-2", "deb").await;
    sim.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deb_standalone_install_and_commit() {
    let _dpkg = DPKG.lock().await;
    let dev = ModDevice::new(None, "02:00:00:00:d2:01");
    let deb = TestDeb::build(dev.dir.path(), "standalone");
    assert_eq!(deb.status(), None, "not installed before");
    let art = ModuleArtifact::deb(dev.dir.path(), "deb-2", &deb.deb).write();
    install_then_commit(&dev, &art, "deb-2", "deb", Commit::AtOnce, || {
        assert_deb_installed(&deb, "")
    });
}

// ------------------------------------------------------------------------- no such module

/// A payload type no module handles: the deployment fails naming the missing module and
/// the directory, before the payload streams (no `installing`, the throttled download
/// never completes, no module tree); `install` refuses it the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_type_without_a_module_fails_before_the_payload_streams() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:e1:01");
    let art = ModuleArtifact::new(dev.dir.path(), "nosuch", "nosuch-1")
        .file("blob.bin", image(2 << 20, 11))
        .write();
    let size = std::fs::metadata(&art).expect("artifact").len();
    // 2 MiB at 256 KiB/s: 8 s to download it all, long after the refusal.
    sim.throttle(256 * 1024).await;

    let mut d = deploy_through_daemon(&sim, &dev, &art, "nosuch-1").await;
    let expected = format!("no Update Module 'nosuch' in {}", dev.modules().display());
    assert_eq!(
        d.history.last().map(|h| h.0.as_str()),
        Some("failure"),
        "{}",
        d.context()
    );
    assert_eq!(finals(&d.history), 1, "{}", d.context());
    assert!(
        !d.history.iter().any(|h| h.0 == "installing"),
        "{}",
        d.context()
    );
    assert!(d.log.contains(&expected), "{expected}: {}", d.context());
    let downloads: Vec<Value> = sim
        .downloads()
        .await
        .into_iter()
        .filter(|x| x["deployment_id"] == d.dep.as_str())
        .collect();
    assert!(
        downloads
            .iter()
            .all(|x| x["complete"] != true && x["bytes_sent"].as_u64().unwrap_or(0) < size),
        "the payload did not stream: {downloads:?}"
    );
    assert!(
        !dev.tree().exists(),
        "no module tree: {:?}",
        listing(&dev.tree())
    );
    assert!(dev.provides().contains("artifact_name=release-1\n"));
    sim.clear_faults().await;
    assert_eq!(d.daemon.stop(STOP_LIMIT), 0, "{}", d.daemon.log_tail(40));
    sim.handle.shutdown().await;

    let o = dev.bridge(&["install", art.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains(&expected), "{expected}: {}", text(&o));
    let c = dev.bridge(&["commit"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
}

// ------------------------------------------------------------------------------ inventory

/// The inventory's `update_modules` lists the executables in `modules_dir`, as the
/// official client's `mender-inventory-update-modules` does (a non-executable file is
/// not a module).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_lists_the_update_modules() {
    let sim = TestSim::start().await;
    let dev = ModDevice::new(Some(&sim), "02:00:00:00:f1:01");
    std::fs::write(dev.modules().join("README"), "not a module\n").expect("README");
    let mut daemon = dev.daemon(1);
    let id = accept(&sim, &dev.mac, Duration::from_secs(30)).await;
    let value = wait_for(
        Duration::from_secs(30),
        Lazy(|| {
            format!(
                "update_modules in the inventory; daemon log tail:\n{}",
                daemon.log_tail(40)
            )
        }),
        || attribute(&sim, &id, "update_modules"),
    )
    .await;
    let mut names: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("a list of names, as the official client sends: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    assert_eq!(names, OFFICIAL_MODULES, "{value}");
    assert_eq!(daemon.stop(STOP_LIMIT), 0, "{}", daemon.log_tail(40));
    sim.handle.shutdown().await;
}
