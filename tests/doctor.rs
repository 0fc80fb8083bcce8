//! `mender-bridge doctor` as a child process, with a device written in the test against the
//! simulator running in the test process: a passing device (file slots, U-Boot environment,
//! a verify key, an executable module, the token API's bus, then owned by the running
//! daemon), and for each check a failing
//! case — a bad config value, a key readable by others and an unparsable one, a failing
//! identity script, a closed port, TLS with an unknown CA, a wrong name and an expired
//! certificate, a pending,
//! an accepted and a rejected device, a bad verify key file, missing slots, a module that
//! is not executable, D-Bus disabled and a bus that is absent. (The clock check is
//! unit-tested with injected times in `src/doctor/clock.rs`.)
#![cfg(feature = "sim")]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::daemon::{accept, sim_conf, write_device_files, DeviceFiles};
use common::sim::TestSim;
use common::slots::SlotRig;
use common::{bridge_command, script};
use hyper::Method;
use mender_bridge::keys::{DeviceKey, KeyType};

const LIMIT: Duration = Duration::from_secs(20);

/// The doctor's exit code and stdout lines.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    /// The first line whose status is `status` and whose name is `name`, containing `part`.
    fn line(&self, status: &str, name: &str, part: &str) -> &str {
        let prefix = format!("{status:<4} {name}: ");
        self.out
            .lines()
            .find(|l| l.starts_with(&prefix) && l.contains(part))
            .unwrap_or_else(|| {
                panic!(
                    "no '{prefix}…{part}…' line in:\n{}\nstderr:\n{}",
                    self.out, self.err
                )
            })
    }

    fn has_no(&self, status: &str) {
        assert!(
            !self.out.lines().any(|l| l.starts_with(status)),
            "a '{status}' line in:\n{}",
            self.out
        );
    }
}

/// Runs `mender-bridge doctor` for the device in `d` (off the runtime's threads, so the
/// simulator in this process answers meanwhile).
async fn doctor(d: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = bridge_command(d, &["doctor"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run doctor");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A device of `sim` with file slots, an identity script printing `mac`, extra `toml`
/// appended to bridge.toml, and the `[dbus]` table given.
fn device(d: &Path, conf: serde_json::Value, mac: &str, toml: &str) -> SlotRig {
    let rig = SlotRig::new(&d.join("slots"), 1 << 20);
    let modules = d.join("modules");
    std::fs::create_dir_all(&modules).expect("modules");
    write_device_files(
        d,
        DeviceFiles {
            mac,
            conf,
            reboot: Path::new("/bin/true"),
            modules_dir: Some(&modules),
            raw_toml: rig.raw_backend_toml(),
        },
    );
    let mut t = std::fs::read_to_string(d.join("bridge.toml")).expect("bridge.toml");
    t.push_str(toml);
    std::fs::write(d.join("bridge.toml"), t).expect("bridge.toml");
    write_key(d, KeyType::P256);
    rig
}

/// The device key, written as the daemon writes it (0600).
fn write_key(d: &Path, kind: KeyType) {
    DeviceKey::generate(kind)
        .expect("key")
        .write_atomic(&d.join("data/mender-agent.pem"))
        .expect("write key");
}

/// A PEM public key (P-256) as an artifact verify key.
fn verify_key(path: &Path) {
    let key = rcgen::KeyPair::generate().expect("key");
    std::fs::write(path, key.public_key_pem()).expect("verify key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_device_pending_accepted_then_rejected() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bus = common::bus::TestBus::with_policy(d);
    verify_key(&d.join("verify.pem"));
    let mut conf = sim_conf(&sim, 3600, 3600);
    conf["ArtifactVerifyKey"] = d.join("verify.pem").display().to_string().into();
    let mac = "02:00:00:00:d0:01";
    // Without the token API built in, the device turns it off (else a warning says so).
    let dbus = if cfg!(feature = "dbus") {
        format!("[dbus]\nenabled = true\nbus = \"{}\"\n", bus.address)
    } else {
        "[dbus]\nenabled = false\n".to_string()
    };
    device(d, conf, mac, &dbus);
    script(&d.join("modules/single-file"), "exit 0");

    // No key yet: the daemon makes it at its first start, the doctor never does.
    std::fs::remove_file(d.join("data/mender-agent.pem")).expect("remove key");
    let before = doctor(d, &[]).await;
    assert_eq!(before.code, 0, "{}\n{}", before.out, before.err);
    before.line("warn", "device key", "none yet");
    before.line("skip", "auth", "no device key");
    assert!(
        !d.join("data/mender-agent.pem").exists(),
        "the doctor never makes a key"
    );
    write_key(d, KeyType::P256);

    let pending = doctor(d, &[]).await;
    assert_eq!(pending.code, 0, "{}\n{}", pending.out, pending.err);
    pending.line("ok", "config", "mender.conf");
    pending.line("ok", "device key", "ECDSA P-256");
    pending.line("ok", "device key", "mode 0600");
    pending.line("ok", "identity", mac);
    pending.line("ok", "clock", "system time");
    pending.line("ok", "dns", "127.0.0.1");
    pending.line("ok", "tcp", "connected");
    pending.line("ok", "tls", "certificate verified");
    pending.line("ok", "auth request", "verified with its public key");
    pending.line("warn", "auth", "pending");
    pending.line("warn", "auth", "accept the device on the dashboard");
    pending.line("ok", "verify keys", "ECDSA P-256");
    pending.line("ok", "backend", "running slot a");
    pending.line("ok", "backend", "slot b");
    pending.line("ok", "backend", "writable");
    pending.line("ok", "boot env", "mender_boot_part=2");
    pending.line("ok", "modules", "single-file");
    pending.line("ok", "install in progress", "no standalone install waiting");
    if cfg!(feature = "dbus") {
        pending.line("ok", "dbus", "can be owned");
    }

    let id = accept(&sim, mac, LIMIT).await;
    let accepted = doctor(d, &[]).await;
    println!("{}", accepted.out);
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.out, accepted.err);
    accepted.line("ok", "auth", "accepted");
    accepted.has_no("warn");
    accepted.has_no("fail");
    accepted.has_no("skip");
    // No secret: neither the private key nor a JWT.
    let pem = std::fs::read_to_string(d.join("data/mender-agent.pem")).expect("pem");
    let body = pem.lines().nth(1).expect("a base64 line");
    for text in [&accepted.out, &accepted.err] {
        assert!(!text.contains(body), "the private key is printed");
        assert!(!text.contains("eyJ"), "a JWT is printed: {text}");
    }

    // With the daemon running, its token API owns the name: said, and left alone.
    if cfg!(feature = "dbus") {
        let mut daemon = common::daemon::Daemon::start(
            bridge_command(d, &["-l", "debug", "daemon"]),
            &d.join("daemon.log"),
        );
        let start = std::time::Instant::now();
        loop {
            let r = doctor(d, &[]).await;
            if r.out.contains("is owned by pid") {
                r.line("ok", "dbus", "the running daemon's token API");
                break;
            }
            assert!(
                start.elapsed() < LIMIT,
                "the daemon never owned the name:\n{}\n{}",
                r.out,
                daemon.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(daemon.stop(LIMIT), 0, "{}", daemon.log_tail(20));
    }

    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/reject"), None)
        .await;
    let rejected = doctor(d, &[]).await;
    assert_eq!(rejected.code, 1, "{}\n{}", rejected.out, rejected.err);
    rejected.line("fail", "auth", "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_value_is_named_and_the_rest_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    device(
        d,
        serde_json::json!({"ServerURL": "https://127.0.0.1:1", "UpdatePollIntervalSeconds": "abc"}),
        "02:00:00:00:d0:02",
        "",
    );
    let r = doctor(d, &[]).await;
    assert_eq!(r.code, 1, "{}", r.out);
    let line = r.line("fail", "config", "UpdatePollIntervalSeconds");
    assert!(
        line.contains(&d.join("mender.conf").display().to_string()),
        "{line}"
    );
    assert!(line.contains("expected a number"), "{line}");
    assert!(
        line.contains("fix: correct UpdatePollIntervalSeconds"),
        "{line}"
    );
    r.line("ok", "clock", "");
    for name in [
        "device key",
        "identity",
        "servers",
        "backend",
        "install in progress",
        "dbus",
    ] {
        r.line("skip", name, "did not load");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_identity_port_verify_key_slots_modules_and_bus() {
    // A device with one fault per check: a key readable by others, a failing identity
    // script, a closed port, an unparsable verify key, a missing slot, a module that is
    // not executable, and a bus that does not exist.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let closed = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    std::fs::write(d.join("verify.pem"), "not a key\n").expect("verify key");
    let conf = serde_json::json!({
        "ServerURL": format!("https://127.0.0.1:{closed}"),
        "ArtifactVerifyKey": d.join("verify.pem"),
    });
    let rig = device(
        d,
        conf,
        "02:00:00:00:d0:03",
        &format!(
            "[dbus]\nenabled = true\nbus = \"unix:path={}\"\n",
            d.join("no-bus.sock").display()
        ),
    );
    std::fs::remove_file(rig.dir.join("b.img")).expect("remove slot b");
    script(&d.join("identity"), "echo broken >&2; exit 3");
    std::fs::write(d.join("modules/directory"), "#!/bin/sh\n").expect("module");
    let key_path = d.join("data/mender-agent.pem");
    write_key(d, KeyType::Ed25519);
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let r = doctor(d, &[]).await;
    println!("{}", r.out);
    assert_eq!(r.code, 1, "{}", r.out);
    let key = r.line("warn", "device key", "readable by group or others");
    assert!(
        key.contains("mode 0644") && key.contains("Ed25519"),
        "{key}"
    );
    assert!(
        key.contains(&format!("chmod 600 {}", key_path.display())),
        "{key}"
    );
    let id = r.line("fail", "identity", "exit status: 3");
    assert!(id.contains("broken"), "its stderr is shown: {id}");
    r.line("ok", "dns", "127.0.0.1");
    r.line("fail", "tcp", &format!("127.0.0.1:{closed}"));
    r.line("skip", "tls", "tcp failed");
    r.line("skip", "auth request", "no identity");
    r.line(
        "fail",
        "verify keys",
        "not a PEM RSA or ECDSA P-256 public key",
    );
    r.line("fail", "backend", "slot b");
    r.line("ok", "backend", "running slot a");
    r.line("warn", "modules", "directory is not executable");
    if cfg!(feature = "dbus") {
        r.line("warn", "dbus", "not reachable");
    } else {
        r.line("warn", "dbus", "not built in");
    }

    // An unparsable key fails (and the auth request is skipped for it).
    std::fs::write(
        &key_path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("garbage key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // And D-Bus switched off is said as such.
    let mut t = std::fs::read_to_string(d.join("bridge.toml")).expect("toml");
    t = t.replace("[dbus]\nenabled = true", "[dbus]\nenabled = false");
    std::fs::write(d.join("bridge.toml"), t).expect("toml");
    let r = doctor(d, &[]).await;
    assert_eq!(r.code, 1, "{}", r.out);
    r.line("fail", "device key", &key_path.display().to_string());
    r.line("skip", "auth request", "no device key");
    r.line("ok", "dbus", "disabled");
}

/// A TLS server on 127.0.0.1 with a certificate made from `leaf`, issued by a CA written
/// to `ca_path`: it only shakes hands.
async fn tls_server(ca_path: &Path, leaf: rcgen::CertificateParams) -> SocketAddr {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    std::fs::write(ca_path, ca_cert.pem()).expect("ca pem");
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &issuer).expect("cert");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(s).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_an_unknown_ca_a_wrong_name_and_an_expired_certificate() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let other_name =
        rcgen::CertificateParams::new(vec!["other.example".to_string()]).expect("params");
    let addr = tls_server(&d.join("other-ca.pem"), other_name).await;
    let mut expired = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    expired
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired_addr = tls_server(&d.join("expired-ca.pem"), expired).await;

    // The simulator, but ServerCertificate is another CA: neither its CA nor pinned.
    let mut conf = sim_conf(&sim, 3600, 3600);
    conf["ServerCertificate"] = d.join("other-ca.pem").display().to_string().into();
    device(d, conf, "02:00:00:00:d0:04", "");
    let r = doctor(d, &[]).await;
    assert_eq!(r.code, 1, "{}", r.out);
    let line = r.line("fail", "tls", "unknown CA");
    assert!(line.contains("pinned certificate mismatch"), "{line}");
    assert!(line.contains("fix: make ServerCertificate"), "{line}");
    r.line("skip", "auth", "not reachable");

    // A server whose certificate (from the trusted CA) names another host.
    let conf = serde_json::json!({
        "ServerURL": format!("https://{addr}"),
        "ServerCertificate": d.join("other-ca.pem"),
    });
    std::fs::write(d.join("mender.conf"), conf.to_string()).expect("conf");
    let r = doctor(d, &[]).await;
    assert_eq!(r.code, 1, "{}", r.out);
    let line = r.line("fail", "tls", "wrong name");
    assert!(line.contains("other.example"), "{line}");

    // A server whose certificate (from the trusted CA) has expired.
    let conf = serde_json::json!({
        "ServerURL": format!("https://{expired_addr}"),
        "ServerCertificate": d.join("expired-ca.pem"),
    });
    std::fs::write(d.join("mender.conf"), conf.to_string()).expect("conf");
    let r = doctor(d, &[]).await;
    assert_eq!(r.code, 1, "{}", r.out);
    let line = r.line("fail", "tls", "expired at 2021-01-01");
    assert!(line.contains("clock"), "{line}");
}

/// A device whose server is a closed port and whose `[backend]` is `toml` (D-Bus off).
#[cfg(any(feature = "rauc", feature = "swupdate"))]
fn backend_device(d: &Path, toml: &str) {
    device(
        d,
        serde_json::json!({"ServerURL": "https://127.0.0.1:1"}),
        "02:00:00:00:d0:05",
        &format!("[dbus]\nenabled = false\n{toml}"),
    );
}

#[cfg(feature = "rauc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_on_its_bus_then_gone() {
    let mut rig = common::rauc::RaucRig::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mender_bridge_backends::Bus::Address(bus) = rig.config(d).bus else {
        panic!("the rig's bus is an address")
    };
    backend_device(
        d,
        &format!(
            "[backend]\ntype = \"rauc\"\n[backend.rauc]\nbus = \"{}\"\nspool_dir = \"{}\"\n",
            bus,
            rig.path("spool").display()
        ),
    );
    let r = doctor(d, &[]).await;
    println!("{}", r.out);
    let line = r.line("ok", "backend", "rauc on bus");
    assert!(
        line.contains(&format!("rauc_compatible={}", common::rauc::COMPATIBLE)),
        "{line}"
    );
    assert!(line.contains("rauc_booted_slot=rootfs.0"), "{line}");
    // Not probed beside a running install (its preflight cleans the spool directory).
    let lock = mender_bridge::deploy::lock::InstallLock::try_acquire(&d.join("data/mender-bridge"))
        .expect("lock")
        .expect("free");
    let r = doctor(d, &[]).await;
    r.line("skip", "backend", "an install is in progress");
    drop(lock);
    rig.stop_service();
    let r = doctor(d, &[]).await;
    println!("{}", r.out);
    assert_eq!(r.code, 1, "{}", r.out);
    r.line("fail", "backend", "rauc on bus");
}

#[cfg(feature = "swupdate")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swupdate_answers_and_enforces_signatures_then_gone() {
    let sd = common::swupdate::SwuDir::new();
    let daemon = common::swupdate::SwuDaemon::start(&sd);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    backend_device(
        d,
        &format!(
            "[backend]\ntype = \"swupdate\"\n[backend.swupdate]\ncontrol_socket = \"{}\"\n\
             progress_socket = \"{}\"\nspool_dir = \"{}\"\n",
            daemon.control().display(),
            daemon.progress().display(),
            daemon.spool.display()
        ),
    );
    let r = doctor(d, &[]).await;
    println!("{}", r.out);
    let line = r.line("ok", "backend", "swupdate at");
    assert!(line.contains("enforces signed images"), "{line}");
    drop(daemon);
    let r = doctor(d, &[]).await;
    println!("{}", r.out);
    assert_eq!(r.code, 1, "{}", r.out);
    r.line("fail", "backend", "swupdate at");
}
