//! The D-Bus token API (`io.mender.AuthenticationManager`, feature `dbus`) of
//! `mender-bridge daemon` against the simulator, on a private system-like bus that
//! includes our policy file (`dbus/io.mender.AuthenticationManager.conf`): empty strings
//! before acceptance; the token and the server URL after, with `JwtTokenStateChange`;
//! again after `FetchJwtToken`, after a 401 (expired token), empty on rejection, and
//! after a restart; a caller that is not root is refused; and with no bus the daemon
//! still authenticates and says so in one line.
#![cfg(all(feature = "sim", feature = "dbus"))]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::daemon::{accept, sim_conf, write_device_files, Daemon, DeviceFiles};
use common::sim::TestSim;
use common::wait::wait_for;
use futures_util::StreamExt;
use hyper::Method;

const NAME: &str = "io.mender.AuthenticationManager";
const PATH: &str = "/io/mender/AuthenticationManager";
const IFACE: &str = "io.mender.Authentication1";
const LIMIT: Duration = Duration::from_secs(30);

/// A private bus like the system bus: default deny for calls and owning, our policy file
/// included; its socket reachable by `nobody`.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start(dir: &Path) -> Self {
        // `nobody` must reach the socket for the policy (not the file mode) to refuse it.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let policy =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/io.mender.AuthenticationManager.conf");
        let sock = dir.join("bus.sock");
        std::fs::write(
            dir.join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={sock}</listen><auth>EXTERNAL</auth>
<policy context="default">
  <allow user="*"/>
  <deny own="*"/>
  <deny send_type="method_call"/>
  <allow send_type="signal"/>
  <allow send_requested_reply="true" send_type="method_return"/>
  <allow send_requested_reply="true" send_type="error"/>
  <allow receive_type="method_call"/>
  <allow receive_type="method_return"/>
  <allow receive_type="error"/>
  <allow receive_type="signal"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
</policy>
<include>{policy}</include>
</busconfig>
"#,
                sock = sock.display(),
                policy = policy.display()
            ),
        )
        .expect("bus.conf");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", dir.join("bus.conf").display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "dbus-daemon: {e}; install the test dependencies (scripts/setup-test-deps.sh)"
                )
            });
        let start = std::time::Instant::now();
        while !sock.exists() {
            assert!(start.elapsed() < LIMIT, "the bus did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bus {
            child,
            address: format!("unix:path={}", sock.display()),
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device in `d` with `conf` as mender.conf and `extra` appended to its bridge.toml.
fn device(d: &Path, mac: &str, conf: serde_json::Value, extra: &str) {
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

fn start_daemon(d: &Path, n: u32) -> Daemon {
    Daemon::start(
        common::bridge_command(d, &["-l", "debug", "daemon"]),
        &d.join(format!("daemon-{n}.log")),
    )
}

/// The test's side of the bus: calls and every `JwtTokenStateChange`, whoever sends it.
struct Client {
    conn: zbus::Connection,
    signals: zbus::MessageStream,
}

impl Client {
    async fn connect(address: &str) -> Self {
        let conn = zbus::connection::Builder::address(address)
            .expect("address")
            .build()
            .await
            .expect("connect to the test bus");
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(IFACE)
            .expect("interface")
            .member("JwtTokenStateChange")
            .expect("member")
            .build();
        let signals = zbus::MessageStream::for_match_rule(rule, &conn, Some(64))
            .await
            .expect("match rule");
        Client { conn, signals }
    }

    async fn call<R>(&self, method: &str) -> zbus::Result<R>
    where
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        let reply = self
            .conn
            .call_method(Some(NAME), PATH, Some(IFACE), method, &())
            .await?;
        reply.body().deserialize::<R>()
    }

    async fn get(&self) -> (String, String) {
        self.call("GetJwtToken").await.expect("GetJwtToken")
    }

    /// The next `JwtTokenStateChange` within [`LIMIT`].
    async fn signal(&mut self, daemon: &Daemon, what: &str) -> (String, String) {
        match tokio::time::timeout(LIMIT, self.signals.next()).await {
            Ok(Some(Ok(m))) => m.body().deserialize().expect("signal body"),
            other => panic!(
                "no JwtTokenStateChange ({what}): {:?}\n{}",
                other.map(|o| o.map(|r| r.map(|_| ()))),
                daemon.log_tail(40)
            ),
        }
    }

    /// Drops the signals received so far.
    async fn drain(&mut self) {
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(300), self.signals.next()).await
        {}
    }
}

fn assert_token(t: &(String, String), url: &str) {
    assert_eq!(t.0.split('.').count(), 3, "a JWT");
    assert_eq!(t.1, url, "the configured server URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_api_on_the_bus() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bus = Bus::start(d);
    let mac = "02:00:00:00:db:01";
    device(
        d,
        mac,
        sim_conf(&sim, 1, 3600),
        &format!("\n[dbus]\nbus = \"{}\"\n", bus.address),
    );
    let url = sim.handle.base_url().trim_end_matches('/').to_string();
    let mut client = Client::connect(&bus.address).await;
    let mut daemon = start_daemon(d, 1);

    // Before acceptance: served, and empty.
    let before = wait_for(LIMIT, "the daemon to own the name", || async {
        client.call::<(String, String)>("GetJwtToken").await.ok()
    })
    .await;
    assert_eq!(before, (String::new(), String::new()));

    // Acceptance: the token and the server URL, signalled and returned.
    let id = accept(&sim, mac, LIMIT).await;
    let first = client.signal(&daemon, "after acceptance").await;
    assert_token(&first, &url);
    assert_eq!(client.get().await, first);

    // FetchJwtToken: true, then a signal.
    client.drain().await;
    assert!(client
        .call::<bool>("FetchJwtToken")
        .await
        .expect("FetchJwtToken"));
    assert_token(&client.signal(&daemon, "after FetchJwtToken").await, &url);

    // An expired token: the next call gets 401, re-authenticates, and the new token is
    // signalled. Tokens live 2 s while FetchJwtToken makes one, then 7 days again.
    let settings = |secs: u64| serde_json::json!({ "jwt_lifetime_secs": secs });
    sim.http
        .manage_ok(Method::PUT, "/settings", Some(settings(2)))
        .await;
    client.drain().await;
    assert!(client
        .call::<bool>("FetchJwtToken")
        .await
        .expect("FetchJwtToken"));
    let short = client.signal(&daemon, "the short-lived token").await;
    assert_token(&short, &url);
    sim.http
        .manage_ok(Method::PUT, "/settings", Some(settings(604_800)))
        .await;
    let renewed = client.signal(&daemon, "after the 401").await;
    assert_token(&renewed, &url);
    assert_ne!(renewed.0, short.0);
    assert!(
        daemon.log().contains("token refused (401)"),
        "{}",
        daemon.log_tail(40)
    );

    // Rejected: authorization is lost, signalled as empty strings.
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/reject"), None)
        .await;
    let lost = client.signal(&daemon, "after the rejection").await;
    assert_eq!(lost, (String::new(), String::new()));
    assert_eq!(client.get().await, lost);
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    assert_token(&client.signal(&daemon, "accepted again").await, &url);

    // Only root may call: `nobody` is refused by the policy.
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "busctl",
        ])
        .arg(format!("--address={}", bus.address))
        .args(["call", NAME, PATH, IFACE, "GetJwtToken"])
        .output()
        .expect("setpriv busctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nobody got an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("Access denied") || err.contains("AccessDenied"),
        "{err}"
    );

    // A restart authenticates again and signals the token.
    assert_eq!(daemon.stop(LIMIT), 0);
    client.drain().await;
    let mut daemon = start_daemon(d, 2);
    assert_token(&client.signal(&daemon, "after the restart").await, &url);

    // The token is never in the log.
    let log = daemon.log() + &std::fs::read_to_string(d.join("daemon-1.log")).unwrap_or_default();
    for t in [&first.0, &short.0, &renewed.0] {
        assert!(!log.contains(t.as_str()), "a token in the log");
    }
    assert_eq!(daemon.stop(LIMIT), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bus_no_problem() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mac = "02:00:00:00:db:02";
    let absent = d.join("absent.sock");
    device(
        d,
        mac,
        sim_conf(&sim, 1, 3600),
        &format!("\n[dbus]\nbus = \"unix:path={}\"\n", absent.display()),
    );
    let mut daemon = start_daemon(d, 1);
    accept(&sim, mac, LIMIT).await;
    wait_for(LIMIT, "the daemon to authenticate", || async {
        daemon.log().contains("authenticated")
    })
    .await;
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("D-Bus")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("not offered"), "{lines:?}");
    assert_eq!(daemon.stop(LIMIT), 0);

    // Disabled in mender.conf: one line, and the daemon runs.
    let mut conf = sim_conf(&sim, 1, 3600);
    conf["DBus"] = serde_json::json!({ "Enabled": false });
    std::fs::write(d.join("mender.conf"), conf.to_string()).expect("mender.conf");
    let mut daemon = start_daemon(d, 2);
    wait_for(LIMIT, "the daemon to authenticate", || async {
        daemon.log().contains("authenticated")
    })
    .await;
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("D-Bus")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("disabled"), "{lines:?}");
    assert_eq!(daemon.stop(LIMIT), 0);
}
