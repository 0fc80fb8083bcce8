//! The D-Bus token API (`io.mender.AuthenticationManager`, feature `dbus`) of
//! `mender-bridge daemon` against the simulator, on a private system-like bus that
//! includes our policy file (`dbus/io.mender.AuthenticationManager.conf`): empty strings
//! before acceptance; the token and the server URL after, with `JwtTokenStateChange`;
//! again after `FetchJwtToken`, after a 401 (expired token), empty on rejection, and
//! after a restart; a caller that is not root is refused by the policy, and by the daemon
//! itself on a bus with no policy; and with no bus the daemon still authenticates and says
//! so in one line.
#![cfg(all(feature = "sim", feature = "dbus"))]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::bus::TestBus;
use common::daemon::{accept, device_with_toml as device, sim_conf, Daemon};
use common::sim::TestSim;
use common::wait::wait_for;
use futures_util::StreamExt;
use hyper::Method;

const NAME: &str = "io.mender.AuthenticationManager";
const PATH: &str = "/io/mender/AuthenticationManager";
const IFACE: &str = "io.mender.Authentication1";
const LIMIT: Duration = Duration::from_secs(30);

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

/// `busctl call` of `method` on the token API at `address`, run as `nobody`.
fn call_as_nobody(address: &str, method: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "busctl",
        ])
        .arg(format!("--address={address}"))
        .args(["call", NAME, PATH, IFACE, method])
        .output()
        .expect("setpriv busctl")
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
    let bus = TestBus::with_policy(d);
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
    let out = call_as_nobody(&bus.address, "GetJwtToken");
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
    let daemon = start_daemon(d, 1);
    accept(&sim, mac, LIMIT).await;
    authenticates_with_one_dbus_line(daemon, "not offered").await;

    // Disabled in mender.conf: one line, and the daemon runs.
    let mut conf = sim_conf(&sim, 1, 3600);
    conf["DBus"] = serde_json::json!({ "Enabled": false });
    std::fs::write(d.join("mender.conf"), conf.to_string()).expect("mender.conf");
    authenticates_with_one_dbus_line(start_daemon(d, 2), "disabled").await;
}

/// The daemon authenticates, its log has exactly one line about D-Bus and it contains
/// `why`; then it stops cleanly.
async fn authenticates_with_one_dbus_line(mut daemon: Daemon, why: &str) {
    wait_for(LIMIT, "the daemon to authenticate", || async {
        daemon.log().contains("authenticated")
    })
    .await;
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("D-Bus")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(why), "{lines:?}");
    assert_eq!(daemon.stop(LIMIT), 0);
}

/// The bus policy is the first gate; the daemon is the second. On a bus whose policy lets
/// anyone call anything (a custom `bus` address, a forgotten policy file), a process that
/// is neither root nor the daemon's user still gets no token: with it, it could act as the
/// device towards the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_bus_still_keeps_the_token_from_other_users() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bus = TestBus::open(d);
    let address = bus.address.clone();
    let mac = "02:00:00:00:db:03";
    device(
        d,
        mac,
        sim_conf(&sim, 1, 3600),
        &format!("\n[dbus]\nbus = \"{address}\"\n"),
    );
    let client = Client::connect(&address).await;
    let mut daemon = start_daemon(d, 1);
    accept(&sim, mac, LIMIT).await;
    let url = sim.handle.base_url().trim_end_matches('/').to_string();
    let token = wait_for(LIMIT, "a token over D-Bus (root)", || async {
        client
            .call::<(String, String)>("GetJwtToken")
            .await
            .ok()
            .filter(|t| !t.0.is_empty())
    })
    .await;
    assert_token(&token, &url);

    for method in ["GetJwtToken", "FetchJwtToken"] {
        let out = call_as_nobody(&address, method);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            !out.status.success(),
            "nobody got an answer to {method}: {stdout}"
        );
        assert!(!stdout.contains(&token.0), "the token reached nobody");
        assert!(stderr.contains("Access denied"), "{method}: {stderr}");
    }
    let log = daemon.log();
    for method in ["GetJwtToken", "FetchJwtToken"] {
        let line =
            format!("{method}: refused: caller uid 65534 is neither root nor the daemon's user");
        assert!(log.contains(&line), "{}", daemon.log_tail(20));
    }
    assert_eq!(daemon.stop(LIMIT), 0);
}
