//! `mender-bridge daemon` as a child process of a test: started with its log in a file,
//! stopped with SIGTERM within a bound, killed when dropped (a failing test leaves no
//! daemon behind); and the device's admission on the simulator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hyper::Method;

use super::sim::TestSim;
use super::wait::{stop_within, wait_for};

/// A running daemon and the file its standard error goes to.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (a `bridge_command(…, &["-l", "debug", "daemon"])`), stderr into `log`.
    pub fn start(mut cmd: Command, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        Daemon {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM, then its exit code within `limit` (panics with the log if it does not stop).
    pub fn stop(&mut self, limit: Duration) -> i32 {
        let Some(mut child) = self.child.take() else {
            panic!("the daemon was stopped already");
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        match stop_within(&mut child, limit) {
            Some(status) => status.code().unwrap_or(-1),
            None => panic!(
                "the daemon did not stop within {limit:?} of SIGTERM\n{}",
                self.log_tail(40)
            ),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits (at most `limit`) for the device whose identity has `mac` to ask for admission,
/// accepts it, and returns its id.
pub async fn accept(sim: &TestSim, mac: &str, limit: Duration) -> String {
    let id = wait_for(
        limit,
        format!("device {mac} to ask for admission"),
        || async {
            let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
            devs.as_array()?
                .iter()
                .find(|d| d["identity_data"]["mac"] == mac)
                .and_then(|d| d["id"].as_str())
                .map(str::to_string)
        },
    )
    .await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    id
}

/// What [`write_device_files`] writes for a daemon device.
pub struct DeviceFiles<'a> {
    /// The identity script prints `mac=<mac>`.
    pub mac: &'a str,
    /// `mender.conf` as JSON ([`sim_conf`] for a device of a simulator).
    pub conf: serde_json::Value,
    /// `reboot_command`.
    pub reboot: &'a Path,
    /// `modules_dir`, if not the default.
    pub modules_dir: Option<&'a Path>,
    /// The `[backend.raw…]` tables (`SlotRig::raw_backend_toml`).
    pub raw_toml: String,
}

/// `mender.conf` for a device of `sim`: its URL and CA, the poll intervals, retries after 1 s.
pub fn sim_conf(sim: &TestSim, update_poll: u64, inventory_poll: u64) -> serde_json::Value {
    serde_json::json!({
        "ServerURL": sim.handle.base_url(),
        "ServerCertificate": sim.handle.ca_path(),
        "UpdatePollIntervalSeconds": update_poll,
        "InventoryPollIntervalSeconds": inventory_poll,
        "RetryPollIntervalSeconds": 1,
    })
}

/// A daemon device's files in `d`, as `bridge_command(d, …)` reads them: the data dir
/// (with `device_type`), `inventory/`, `artifact_info` saying `release-1`, the identity
/// script, `mender.conf`, and `bridge.toml` pointing at all of them with a P-256 device key.
pub fn write_device_files(d: &Path, files: DeviceFiles) {
    super::device_data_dir(d);
    std::fs::create_dir_all(d.join("inventory")).expect("inventory");
    std::fs::write(d.join("artifact_info"), "artifact_name=release-1\n").expect("info");
    super::script(&d.join("identity"), &format!("echo mac={}", files.mac));
    std::fs::write(d.join("mender.conf"), files.conf.to_string()).expect("mender.conf");
    let modules = files
        .modules_dir
        .map(|m| format!("modules_dir = \"{}\"\n", m.display()))
        .unwrap_or_default();
    std::fs::write(
        d.join("bridge.toml"),
        format!(
            r#"identity_script = "{identity}"
inventory_script_dir = "{inventory}"
state_scripts_dir = "{scripts}"
artifact_info_file = "{info}"
reboot_command = ["{reboot}"]
device_key_type = "p256"
{modules}{raw}"#,
            identity = d.join("identity").display(),
            inventory = d.join("inventory").display(),
            scripts = d.join("scripts").display(),
            info = d.join("artifact_info").display(),
            reboot = files.reboot.display(),
            raw = files.raw_toml,
        ),
    )
    .expect("bridge.toml");
}

/// [`write_device_files`] for a raw device (no modules, `/bin/true` as reboot) with `conf`
/// as mender.conf and `extra` appended to its bridge.toml (e.g. a `[dbus]` table).
pub fn device_with_toml(d: &Path, mac: &str, conf: serde_json::Value, extra: &str) {
    write_device_files(
        d,
        DeviceFiles {
            mac,
            conf,
            reboot: Path::new("/bin/true"),
            modules_dir: None,
            raw_toml: String::new(),
        },
    );
    let mut toml = std::fs::read_to_string(d.join("bridge.toml")).expect("bridge.toml");
    toml.push_str(extra);
    std::fs::write(d.join("bridge.toml"), toml).expect("bridge.toml");
}
