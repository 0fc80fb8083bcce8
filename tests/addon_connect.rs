//! Interop ground truth for deviceconnect: the real add-on (Debian `mender-connect` 2.1)
//! against the simulator. mender-connect gets its token and server URL over D-Bus
//! (`io.mender.Authentication1.GetJwtToken` on the system bus); here a fake token service
//! on a private bus hands out a token the simulator issued to an accepted device (the
//! bridge's own service is on another branch). mender-connect 2.1 ignores
//! `ServerCertificate`/`SkipVerify` (deprecated: since client 4.x it talks to a local
//! forwarder), so it trusts the simulator's CA through Go's `SSL_CERT_FILE`; its
//! configuration comes from `--config` (and a missing `--fallback-config`), so no host file
//! is read or written. The test opens a shell through the management API, sends
//! `echo bridge-ok-$RANDOM`, reads the evaluated number back, and stops the shell.
#![cfg(feature = "sim")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bus::{bus_address, start_bus};
use common::sim::{TestKey, TestSim};
use common::wait::wait_for;
use hyper::Method;
use serde_json::json;

/// The fake `io.mender.Authentication1` service.
struct TokenService {
    token: String,
    server_url: String,
}

#[zbus::interface(name = "io.mender.Authentication1")]
impl TokenService {
    async fn get_jwt_token(&self) -> (String, String) {
        (self.token.clone(), self.server_url.clone())
    }

    async fn fetch_jwt_token(&self) -> bool {
        true
    }

    #[zbus(signal)]
    async fn jwt_token_state_change(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        token: &str,
        server_url: &str,
    ) -> zbus::Result<()>;
}

/// Kills and reaps a child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
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
async fn mender_connect_runs_a_remote_shell_through_the_simulator() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ec");
    let (id, token) = sim.admit(&key, "02:00:00:00:c0:01").await;

    let work = sim.dir.path().join("connect");
    std::fs::create_dir_all(&work).unwrap();
    let _bus = Reaped(start_bus(&work));
    let address = bus_address(&work);
    let sock = work.join("bus.sock");
    wait_for(Duration::from_secs(10), "the private bus", || async {
        sock.exists()
    })
    .await;
    let announced = token.clone();
    let service = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name("io.mender.AuthenticationManager")
        .unwrap()
        .serve_at(
            "/io/mender/AuthenticationManager",
            TokenService {
                token,
                server_url: sim.handle.base_url().to_string(),
            },
        )
        .unwrap()
        .build()
        .await
        .expect("the fake token service on the private bus");

    let config = work.join("mender-connect.conf");
    std::fs::write(
        &config,
        json!({"ShellCommand": "/bin/bash", "User": "root"}).to_string(),
    )
    .unwrap();
    let log = work.join("mender-connect.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("mender-connect")
        .arg("--config")
        .arg(&config)
        .arg("--fallback-config")
        .arg(work.join("absent.conf"))
        .arg("--debug")
        .arg("daemon")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .env("SSL_CERT_FILE", sim.handle.ca_path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "mender-connect: {e}; install the test dependencies (scripts/setup-test-deps.sh)"
            )
        });
    let _connect = Reaped(child);

    // mender-connect acts on its reconnect request only after JwtTokenStateChange arrives or
    // its 10 s wait for the signal ends (app/daemon.go dbusEventLoop); announce the token
    // as mender-auth does after fetching one, until the link is up.
    let (token, url) = (announced, sim.handle.base_url().to_string());
    let conn = service.clone();
    let announcer = tokio::spawn(async move {
        let iface = conn
            .object_server()
            .interface::<_, TokenService>("/io/mender/AuthenticationManager")
            .await
            .expect("the token service object");
        loop {
            let _ =
                TokenService::jwt_token_state_change(iface.signal_emitter(), &token, &url).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let status = format!("/devices/{id}/connect");
    let limit = Duration::from_secs(30);
    common::wait::poll(limit, || async {
        sim.http.manage_ok(Method::GET, &status, None).await["connected"] == true
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "mender-connect did not connect within {limit:?}; log:\n{}",
            log_tail(&log)
        )
    });

    announcer.abort();
    let r = sim
        .http
        .manage(
            Method::POST,
            &format!("/devices/{id}/shell"),
            Some(json!({"terminal_width": 120, "terminal_height": 40})),
        )
        .await;
    assert_eq!(r.status, 201, "{}\nlog:\n{}", r.text(), log_tail(&log));
    let sid = r.json()["session_id"].as_str().unwrap().to_string();

    let r = sim
        .http
        .send(
            Method::POST,
            &format!("/api/sim/devices/{id}/shell/{sid}/input"),
            &[("content-type", "application/octet-stream")],
            common::sim::full(&b"echo bridge-ok-$RANDOM\n"[..]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // The terminal echoes the command line ("echo bridge-ok-$RANDOM", among prompts and
    // escape sequences); the shell's answer is "bridge-ok-" followed by digits.
    let read = format!("/devices/{id}/shell/{sid}");
    let answer = common::wait::poll(Duration::from_secs(20), || async {
        let out = sim.http.manage_ok(Method::GET, &read, None).await;
        let text = out["output"].as_str().unwrap_or_default().to_string();
        evaluated(&text).ok_or(text)
    })
    .await
    .unwrap_or_else(|seen| panic!("no answer in {seen:?}\nlog:\n{}", log_tail(&log)));
    assert!(answer.parse::<u16>().is_ok(), "{answer}");

    let r = sim
        .http
        .manage(
            Method::POST,
            &format!("/devices/{id}/shell/{sid}/stop"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}\nlog:\n{}", r.text(), log_tail(&log));
    assert_eq!(r.json()["state"], "stopped", "{}", r.text());
}
