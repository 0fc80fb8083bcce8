//! `mender-bridge daemon` as a child process against the simulator running in the test
//! process: pending → accepted, inventory (with an inventory script and the backend's
//! attributes), `send-inventory` (SIGUSR2) and `check-update` (SIGUSR1) through the pid
//! file, sd_notify `READY=1` / `WATCHDOG=1` / `STOPPING=1` on a socket in the temp dir,
//! SIGTERM → exit 0; and a whole deployment: download into file slots, the reboot command,
//! a restart, commit, `success`, the new inventory.
#![cfg(feature = "sim")]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{sim_conf, write_device_files, DeviceFiles};
use common::device::statuses;
use common::sim::TestSim;
use common::slots::SlotRig;
use common::wait::{stop_within, wait_for};
use common::{finals, script, DEVICE_TYPE};
use hyper::Method;
use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
use serde_json::Value;

const SLOT_SIZE: usize = 4 << 20;

struct Device {
    dir: tempfile::TempDir,
    rig: SlotRig,
    mac: String,
}

impl Device {
    /// A device configured for `sim`: file slots, an identity script, an inventory script
    /// printing `probe=<contents of ./probe>`, a reboot command that boots slot b (writes
    /// the cmdline) and leaves a `rebooted` marker.
    fn new(sim: &TestSim, mac: &str, update_poll: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let rig = SlotRig::new(&d.join("slots"), SLOT_SIZE);
        write_device_files(
            d,
            DeviceFiles {
                mac,
                conf: sim_conf(sim, update_poll, 3600),
                reboot: &d.join("reboot.sh"),
                modules_dir: None,
                // The tests look for the polls right after the start (the first is at once,
                // as the official client's, not spread over the hour-long interval).
                raw_toml: format!("first_poll_spread = false\n{}", rig.raw_backend_toml()),
            },
        );
        std::fs::write(d.join("probe"), "one").expect("probe");
        script(
            &d.join("inventory/mender-inventory-probe"),
            &format!("echo probe=$(cat {})", d.join("probe").display()),
        );
        script(
            &d.join("reboot.sh"),
            &format!(
                "echo root={} > {}\ntouch {}",
                rig.dir.join("b.img").display(),
                rig.dir.join("cmdline").display(),
                d.join("rebooted").display()
            ),
        );
        Device {
            dir,
            rig,
            mac: mac.to_string(),
        }
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    fn command(&self, args: &[&str]) -> Command {
        common::bridge_command(self.dir.path(), args)
    }

    fn bridge(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mender-bridge")
    }

    /// Starts the daemon (log at debug level into `daemon-N.log`).
    fn daemon(&self, n: u32, env: &[(&str, String)]) -> Child {
        let log = std::fs::File::create(self.path(&format!("daemon-{n}.log"))).expect("log");
        let mut c = self.command(&["-l", "debug", "daemon"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon")
    }

    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.path(&format!("daemon-{n}.log"))).unwrap_or_default()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn device_id(sim: &TestSim, mac: &str) -> Option<String> {
    let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
    devs.as_array()?
        .iter()
        .find(|d| d["identity_data"]["mac"] == mac)
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
}

/// Accepts the device once it asked to authenticate; returns its id.
async fn accept(sim: &TestSim, dev: &Device) -> String {
    let id = wait_for(
        Duration::from_secs(20),
        "the device's first auth request",
        || device_id(sim, &dev.mac),
    )
    .await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    id
}

async fn inventory(sim: &TestSim, id: &str) -> Vec<Value> {
    let v = sim
        .http
        .manage_ok(Method::GET, &format!("/devices/{id}/inventory"), None)
        .await;
    v.as_array().cloned().unwrap_or_default()
}

async fn wait_attribute(sim: &TestSim, id: &str, name: &str, value: &str, limit: Duration) {
    wait_for(limit, &format!("inventory {name}={value}"), || async {
        inventory(sim, id)
            .await
            .iter()
            .any(|a| a["name"] == name && a["value"] == value)
            .then_some(())
    })
    .await
}

async fn next_requests(sim: &TestSim) -> usize {
    let v = sim.http.manage_ok(Method::GET, "/requests", None).await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|r| {
                    r["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/deployments/next"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Waits for the child to exit (at most `limit`); kills it and panics otherwise.
fn wait_exit(child: &mut Child, limit: Duration, log: impl Fn() -> String) -> i32 {
    match stop_within(child, limit) {
        Some(status) => status.code().unwrap_or(-1),
        None => panic!("the daemon did not stop within {limit:?}\n{}", log()),
    }
}

fn sigterm(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
}

/// A notification socket read by a thread, as systemd reads it: every datagram kept.
struct NotifySocket {
    path: PathBuf,
    got: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind(path: PathBuf) -> Self {
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = sock.recv(&mut buf) {
                if let Ok(mut v) = g.lock() {
                    v.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        NotifySocket { path, got }
    }

    fn seen(&self, message: &str) -> bool {
        self.got
            .lock()
            .map(|v| v.iter().any(|m| m == message))
            .unwrap_or(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_inventory_sd_notify_and_a_clean_stop() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim, "02:00:00:00:d0:01", 3600);
    let notify = NotifySocket::bind(dev.path("notify.sock"));

    // Not running yet: the signalling commands say so.
    let o = dev.bridge(&["send-inventory"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no mender-bridge daemon is running"),
        "{}",
        text(&o)
    );

    let mut child = dev.daemon(
        1,
        &[
            ("NOTIFY_SOCKET", notify.path.display().to_string()),
            ("WATCHDOG_USEC", "300000".to_string()),
        ],
    );
    let id = accept(&sim, &dev).await;
    wait_attribute(&sim, &id, "probe", "one", Duration::from_secs(20)).await;
    let inv = inventory(&sim, &id).await;
    for (name, value) in [
        ("device_type", DEVICE_TYPE),
        ("artifact_name", "release-1"),
        ("rootfs_active_slot", "a"),
        ("bootloader_integration", "uboot"),
    ] {
        assert!(
            inv.iter().any(|a| a["name"] == name && a["value"] == value),
            "{name}={value} in {inv:?}"
        );
    }

    // A second daemon on the same data directory is refused.
    let o = dev.bridge(&["daemon"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already runs"),
        "{}",
        text(&o)
    );

    // SIGUSR2 through `send-inventory`: the new probe value arrives long before the
    // hour-long inventory interval.
    std::fs::write(dev.path("probe"), "two").expect("probe");
    let o = dev.bridge(&["send-inventory"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    wait_attribute(&sim, &id, "probe", "two", Duration::from_secs(10)).await;

    // SIGUSR1 through `check-update`: one more update check.
    let before = next_requests(&sim).await;
    assert!(before >= 1, "the daemon checked once at start");
    let o = dev.bridge(&["check-update"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    wait_for(
        Duration::from_secs(10),
        "an update check after SIGUSR1",
        || async { (next_requests(&sim).await > before).then_some(()) },
    )
    .await;

    // systemd saw READY=1 and the watchdog being fed (every 150 ms).
    assert!(notify.seen("READY=1"));
    wait_for(Duration::from_secs(2), "WATCHDOG=1", || async {
        notify.seen("WATCHDOG=1").then_some(())
    })
    .await;

    // SIGTERM: exit 0, promptly; systemd told.
    let t = Instant::now();
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(5), || dev.log(1));
    assert_eq!(code, 0, "{}", dev.log(1));
    assert!(t.elapsed() < Duration::from_secs(5));
    wait_for(Duration::from_secs(2), "STOPPING=1", || async {
        notify.seen("STOPPING=1").then_some(())
    })
    .await;
    let o = dev.bridge(&["check-update"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    sim.handle.shutdown().await;
}

/// A rootfs artifact around `img`, uploaded and deployed to device `id`.
async fn deploy(sim: &TestSim, id: &str, name: &str, img: &[u8]) -> String {
    let spec = ArtifactSpec::rootfs(name, [DEVICE_TYPE]);
    let file = PayloadFile::new(
        "rootfs.ext4",
        img.len() as u64,
        std::io::Cursor::new(img.to_vec()),
    );
    let mut out = Vec::new();
    write_artifact(&mut out, &spec, vec![file], &WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    sim.upload(out).await;
    sim.deploy(name, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_through_the_daemon_with_a_reboot() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim, "02:00:00:00:d0:02", 1);
    let mut child = dev.daemon(1, &[]);
    let id = accept(&sim, &dev).await;
    wait_attribute(
        &sim,
        &id,
        "artifact_name",
        "release-1",
        Duration::from_secs(20),
    )
    .await;

    let img: Vec<u8> = (0..(1 << 20)).map(|i: usize| (i * 7 % 253) as u8).collect();
    let dep = deploy(&sim, &id, "release-2", &img).await;

    // The daemon finds it within a poll, installs it and runs the reboot command.
    wait_for(Duration::from_secs(30), "the reboot command", || async {
        dev.path("rebooted").exists().then_some(())
    })
    .await;
    assert_eq!(&dev.rig.slot("b")[..img.len()], &img[..]);
    assert!(dev.rig.env().contains("upgrade_available=1"));
    let h = statuses(&sim, &dep, &id).await;
    assert_eq!(h.last().map(String::as_str), Some("rebooting"), "{h:?}");

    // The "reboot": stop the daemon (it waits for exactly that) and start it again.
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5), || dev.log(1)),
        0
    );
    let mut child = dev.daemon(2, &[]);
    wait_for(Duration::from_secs(30), "success on the server", || async {
        statuses(&sim, &dep, &id)
            .await
            .iter()
            .any(|s| s == "success")
            .then_some(())
    })
    .await;
    wait_attribute(
        &sim,
        &id,
        "artifact_name",
        "release-2",
        Duration::from_secs(20),
    )
    .await;
    assert!(dev.rig.env().contains("upgrade_available=0"));
    let o = dev.bridge(&["show-artifact"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "release-2\n");
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5), || dev.log(2)),
        0,
        "{}",
        dev.log(2)
    );
    sim.handle.shutdown().await;
}

/// `kill -9` of the daemon mid-download, and again after the `rebooting` report while the
/// reboot never happens: each time the next daemon ends the deployment with exactly one
/// final status, and the running slot and boot selection stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_download_and_before_the_reboot_end_in_one_failure() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim, "02:00:00:00:d0:03", 1);
    // A reboot that never comes.
    script(&dev.path("reboot.sh"), "sleep 60");
    let a_before = dev.rig.slot_sha256("a");
    let env_before = dev.rig.env();
    let mut child = dev.daemon(1, &[]);
    let id = accept(&sim, &dev).await;

    // 1. Killed mid-download.
    sim.throttle(512 * 1024).await;
    let img: Vec<u8> = (0..(2 << 20))
        .map(|i: usize| (i * 13 % 251) as u8)
        .collect();
    let dep = deploy(&sim, &id, "release-2", &img).await;
    wait_for(Duration::from_secs(30), "download progress", || async {
        statuses(&sim, &dep, &id)
            .await
            .iter()
            .any(|s| s == "downloading")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    sim.clear_faults().await;
    let mut child = dev.daemon(2, &[]);
    wait_for(Duration::from_secs(30), "a final status", || async {
        (finals(&statuses(&sim, &dep, &id).await) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = statuses(&sim, &dep, &id).await;
    assert_eq!(finals(&h), 1, "{h:?}\n{}", dev.log(2));
    assert_eq!(h.last().map(String::as_str), Some("failure"));
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    assert_eq!(dev.rig.slot_sha256("a"), a_before);

    // 2. Killed after the `rebooting` report; the reboot never happened.
    let dep = deploy(&sim, &id, "release-3", &img).await;
    wait_for(Duration::from_secs(30), "the rebooting report", || async {
        statuses(&sim, &dep, &id)
            .await
            .iter()
            .any(|s| s == "rebooting")
            .then_some(())
    })
    .await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(
        dev.rig.env().contains("upgrade_available=1"),
        "activated, on trial"
    );
    let mut child = dev.daemon(3, &[]);
    wait_for(Duration::from_secs(30), "a final status", || async {
        (finals(&statuses(&sim, &dep, &id).await) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = statuses(&sim, &dep, &id).await;
    assert_eq!(finals(&h), 1, "{h:?}\n{}", dev.log(3));
    assert_eq!(h.last().map(String::as_str), Some("failure"));
    let env = dev.rig.env();
    assert!(
        env.contains("mender_boot_part=2") && env.contains("upgrade_available=0"),
        "rolled back: {env}"
    );
    assert_eq!(
        dev.rig.slot_sha256("a"),
        a_before,
        "the running slot never changed"
    );
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5), || dev.log(3)),
        0
    );
    sim.handle.shutdown().await;
}
