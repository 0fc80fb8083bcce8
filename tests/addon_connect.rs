//! The real add-on on top of the bridge: Debian's `mender-connect` 2.1 takes its token and
//! server URL from `mender-bridge daemon`'s own D-Bus service
//! (`io.mender.Authentication1` on a private bus with the system bus's default-deny rules
//! and our policy file) and opens a remote terminal through the simulator, as the
//! dashboard's "Troubleshoot" tab would.
//!
//! The boot order is the real one: the daemon and mender-connect start while the device is
//! pending (mender-connect gets empty strings and waits); acceptance gives the daemon a
//! token, its `JwtTokenStateChange` wakes mender-connect, which connects. When the server
//! expires the token, the daemon's next call gets 401, it authenticates again and signals
//! the new token, and mender-connect reconnects with it (the simulator refuses the old one,
//! so the new link proves the new token).
//!
//! mender-connect 2.1 ignores `ServerCertificate`/`SkipVerify` (deprecated: since client 4.x
//! it talks to a local forwarder), so it trusts the simulator's CA through Go's
//! `SSL_CERT_FILE`; its configuration comes from `--config` (and a missing
//! `--fallback-config`), so no host file is read or written.
#![cfg(all(feature = "sim", feature = "dbus"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bus::TestBus;
use common::daemon::{accept, device_with_toml, sim_conf, Daemon};
use common::sim::TestSim;
use common::wait::{poll, wait_for};
use hyper::Method;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);
/// How long a new link must stay before a test uses it.
const SETTLED: Duration = Duration::from_secs(3);

/// mender-connect, killed and reaped when dropped.
struct Connect {
    child: Child,
    log: PathBuf,
}

impl Connect {
    fn start(dir: &Path, bus: &TestBus, sim: &TestSim) -> Self {
        let config = dir.join("mender-connect.conf");
        std::fs::write(
            &config,
            json!({"ShellCommand": "/bin/bash", "User": "root"}).to_string(),
        )
        .expect("mender-connect.conf");
        let log = dir.join("mender-connect.log");
        let out = std::fs::File::create(&log).expect("mender-connect.log");
        let child = Command::new("mender-connect")
            .arg("--config")
            .arg(&config)
            .arg("--fallback-config")
            .arg(dir.join("absent.conf"))
            .arg("--debug")
            .arg("daemon")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .env("SSL_CERT_FILE", sim.handle.ca_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().expect("log handle")))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "mender-connect: {e}; install the test dependencies (scripts/setup-test-deps.sh)"
                )
            });
        Connect { child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device running the bridge daemon and mender-connect on one private policy bus.
struct Device {
    sim: TestSim,
    id: String,
    daemon: Daemon,
    connect: Connect,
    _bus: TestBus,
    _dir: tempfile::TempDir,
}

impl Device {
    /// Starts both while the device is pending, accepts it, and waits for mender-connect's
    /// link to the simulator.
    async fn start(mac: &str) -> Self {
        let sim = TestSim::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let bus = TestBus::with_policy(d);
        device_with_toml(
            d,
            mac,
            sim_conf(&sim, 1, 3600),
            &format!("\n[dbus]\nbus = \"{}\"\n", bus.address),
        );
        let daemon = Daemon::start(
            common::bridge_command(d, &["-l", "debug", "daemon"]),
            &d.join("daemon.log"),
        );
        wait_for(LIMIT, "the daemon to offer the token API", || async {
            daemon
                .log()
                .contains("D-Bus token API: io.mender.AuthenticationManager")
        })
        .await;
        let connect = Connect::start(d, &bus, &sim);
        let id = accept(&sim, mac, LIMIT).await;
        let dev = Device {
            sim,
            id,
            daemon,
            connect,
            _bus: bus,
            _dir: dir,
        };
        dev.wait_link(None).await;
        dev
    }

    /// The failure context: both logs' tails.
    fn logs(&self) -> String {
        format!(
            "mender-connect:\n{}\ndaemon:\n{}",
            self.connect.log_tail(),
            self.daemon.log_tail(30)
        )
    }

    /// The device's current link number, if connected.
    async fn link(&self) -> Option<u64> {
        let status = format!("/devices/{}/connect", self.id);
        self.sim.http.manage_ok(Method::GET, &status, None).await["link"].as_u64()
    }

    /// Waits for a link other than `old` that then stays for [`SETTLED`], and returns its
    /// number. After a reconnect mender-connect may reconnect once more: its read on the
    /// replaced connection fails when the server drops it first (app/daemon.go
    /// messageLoop), and a shell opened on the short-lived link would be cut.
    async fn wait_link(&self, old: Option<u64>) -> u64 {
        let deadline = tokio::time::Instant::now() + LIMIT;
        let mut seen: Option<(u64, tokio::time::Instant)> = None;
        loop {
            let now = tokio::time::Instant::now();
            let current = self.link().await.filter(|l| Some(*l) != old);
            match (current, seen) {
                (Some(l), Some((s, since))) if l == s => {
                    if now - since >= SETTLED {
                        return l;
                    }
                }
                (Some(l), _) => seen = Some((l, now)),
                (None, _) => seen = None,
            }
            assert!(
                now < deadline,
                "no new, settled mender-connect link within {LIMIT:?} (last {current:?}); {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a shell through the management API, sends `echo bridge-ok-$RANDOM`, reads the
    /// evaluated number back (the terminal echoes the command line too, among prompts and
    /// escape sequences; only the shell's answer has digits after "bridge-ok-"), stops it.
    async fn shell_round_trip(&self) {
        let sim = &self.sim;
        let r = sim
            .http
            .manage(
                Method::POST,
                &format!("/devices/{}/shell", self.id),
                Some(json!({"terminal_width": 120, "terminal_height": 40})),
            )
            .await;
        assert_eq!(r.status, 201, "{}\n{}", r.text(), self.logs());
        let sid = r.json()["session_id"]
            .as_str()
            .expect("session_id")
            .to_string();
        let r = sim
            .http
            .send(
                Method::POST,
                &format!("/api/sim/devices/{}/shell/{sid}/input", self.id),
                &[("content-type", "application/octet-stream")],
                common::sim::full(&b"echo bridge-ok-$RANDOM\n"[..]),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let read = format!("/devices/{}/shell/{sid}", self.id);
        let answer = poll(Duration::from_secs(20), || async {
            let out = sim.http.manage_ok(Method::GET, &read, None).await;
            let text = out["output"].as_str().unwrap_or_default().to_string();
            evaluated(&text).ok_or(text)
        })
        .await
        .unwrap_or_else(|seen| panic!("no answer in {seen:?}\n{}", self.logs()));
        assert!(answer.parse::<u16>().is_ok(), "{answer}");
        let r = sim
            .http
            .manage(
                Method::POST,
                &format!("/devices/{}/shell/{sid}/stop", self.id),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}\n{}", r.text(), self.logs());
        assert_eq!(r.json()["state"], "stopped", "{}", r.text());
    }
}

/// The number after the first "bridge-ok-" that is followed by a digit.
fn evaluated(text: &str) -> Option<String> {
    text.match_indices("bridge-ok-").find_map(|(i, m)| {
        let digits: String = text[i + m.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then_some(digits)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mender_connect_runs_a_remote_shell_on_the_bridges_token() {
    let mut dev = Device::start("02:00:00:00:c0:01").await;
    dev.shell_round_trip().await;
    assert_eq!(dev.daemon.stop(LIMIT), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mender_connect_reconnects_with_the_reissued_token() {
    let mut dev = Device::start("02:00:00:00:c0:02").await;
    let first = dev.wait_link(None).await;

    // The server expires the token: the daemon's next poll gets 401, it authenticates
    // again and signals the new token; mender-connect reconnects with it.
    dev.sim
        .http
        .manage_ok(
            Method::POST,
            &format!("/devices/{}/tokens/expire", dev.id),
            None,
        )
        .await;
    let second = dev.wait_link(Some(first)).await;
    assert!(second > first, "{first} -> {second}");
    assert!(
        dev.daemon.log().contains("token refused (401)"),
        "the daemon saw no 401: {}",
        dev.logs()
    );
    dev.shell_round_trip().await;
    assert_eq!(dev.daemon.stop(LIMIT), 0);
}
