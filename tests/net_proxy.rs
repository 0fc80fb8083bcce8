//! The bridge behind a real proxy: Debian's `tinyproxy` with `BasicAuth`, the bridge's
//! daemon in a network namespace of its own that reaches nothing but the proxy, the
//! simulator on an address only the root namespace has.
//!
//! Layout per test (names and the `10.202.N.0/30` and `10.203.N.1` addresses unique per
//! test, removed by a drop guard even when the test panics): a veth pair, its root end
//! with `10.202.N.1/30` (tinyproxy listens there) and `10.203.N.1/32` (the simulator
//! listens there), its namespace end with `10.202.N.2/30` and no other route, so a direct
//! connection to the simulator is "network unreachable" and everything the simulator
//! sees came through the proxy's `CONNECT` tunnels (TLS end to end, the simulator's CA
//! verified by the bridge). Needs root (CI runs the tests as root).
#![cfg(feature = "sim")]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::daemon::{accept, sim_conf, write_device_files, Daemon, DeviceFiles};
use common::device::{deploy_with, statuses};
use common::sim::TestSim;
use common::slots::SlotRig;
use common::wait::wait_for;
use hyper::Method;
use mender_artifact::writer::WriteOptions;
use serde_json::json;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace and its veth pair; deleted on drop.
struct Net {
    ns: String,
    veth: String,
    n: u32,
}

impl Net {
    fn new() -> Self {
        let pid = std::process::id();
        let c = NEXT.fetch_add(1, Ordering::SeqCst);
        let n = (pid * 7 + c) % 200 + 20;
        let net = Net {
            ns: format!("mbn{pid}x{c}"),
            veth: format!("mbv{pid}x{c}"),
            n,
        };
        let peer = format!("mbw{pid}x{c}");
        ip(&["netns", "add", &net.ns]);
        ip(&[
            "link", "add", &net.veth, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &net.ns]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", net.proxy_ip()),
            "dev",
            &net.veth,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/32", net.sim_ip()),
            "dev",
            &net.veth,
        ]);
        ip(&["link", "set", &net.veth, "up"]);
        let inside = |args: &[&str]| {
            let mut a = vec!["-n", net.ns.as_str()];
            a.extend_from_slice(args);
            ip(&a);
        };
        inside(&["addr", "add", &format!("10.202.{n}.2/30"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        net
    }

    fn proxy_ip(&self) -> String {
        format!("10.202.{}.1", self.n)
    }

    fn sim_ip(&self) -> String {
        format!("10.203.{}.1", self.n)
    }

    /// `cmd` run inside the namespace (`ip netns exec`, which execs: the child's pid is the
    /// command's).
    fn command(&self, cmd: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// Whether a TCP connection to `addr` succeeds from inside the namespace.
    fn reaches(&self, addr: &str) -> bool {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{host}/{port}"))
            .stderr(Stdio::null())
            .status()
            .expect("bash")
            .success()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end and with it the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
    }
}

/// A proxy server process on the namespace's proxy address; killed on drop.
struct ProxyProcess {
    child: Child,
    addr: String,
}

impl ProxyProcess {
    /// Runs `command(ip, port)` for a free port of the proxy address; waits until it listens.
    fn start(net: &Net, name: &str, command: impl FnOnce(&str, u16) -> Command) -> Self {
        let ip = net.proxy_ip();
        let port = TcpListener::bind(format!("{ip}:0"))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = command(&ip, port)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} (apt-get install {name}): {e}"));
        let addr = format!("{ip}:{port}");
        let sa: SocketAddr = addr.parse().expect("addr");
        common::wait::poll_blocking(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&sa, Duration::from_millis(200))
                .ok()
                .map(drop)
        })
        .unwrap_or_else(|_| panic!("{name} did not listen on {addr}"));
        ProxyProcess { child, addr }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tinyproxy -d` on the namespace's proxy address with `BasicAuth user pass`.
struct Tinyproxy {
    server: ProxyProcess,
    log: PathBuf,
}

impl Tinyproxy {
    fn start(net: &Net, dir: &Path, user: &str, pass: &str) -> Self {
        let conf = dir.join("tinyproxy.conf");
        let log = dir.join("tinyproxy.log");
        let server = ProxyProcess::start(net, "tinyproxy", |ip, port| {
            std::fs::write(
                &conf,
                format!(
                    "Port {port}\nListen {ip}\nTimeout 60\nMaxClients 20\nLogLevel Connect\n\
                     BasicAuth {user} {pass}\n"
                ),
            )
            .expect("tinyproxy.conf");
            let mut c = Command::new("tinyproxy");
            c.arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdout(std::fs::File::create(&log).expect("log"));
            c
        });
        Tinyproxy { server, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Debian's `microsocks` (SOCKS5) on the namespace's proxy address with a user and password.
fn microsocks(net: &Net, user: &str, pass: &str) -> ProxyProcess {
    ProxyProcess::start(net, "microsocks", |ip, port| {
        let mut c = Command::new("microsocks");
        c.args(["-i", ip, "-p", &port.to_string(), "-u", user, "-P", pass])
            .stdout(Stdio::null());
        c
    })
}

/// The whole rig: namespace, simulator on the isolated address, tinyproxy, a device dir.
struct Rig {
    proxy: Tinyproxy,
    sim: TestSim,
    dir: tempfile::TempDir,
    _rig: SlotRig,
    net: Net,
}

async fn rig(mac: &str) -> Option<Rig> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: network namespaces need root");
        return None;
    }
    let net = Net::new();
    let listen: SocketAddr = format!("{}:0", net.sim_ip()).parse().expect("addr");
    let sim = TestSim::start_with(|c| c.listen = listen).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = Tinyproxy::start(&net, dir.path(), "bridge", "pa55-w0rd");
    let rig = SlotRig::new(&dir.path().join("slots"), 4 << 20);
    write_device_files(
        dir.path(),
        DeviceFiles {
            mac,
            conf: sim_conf(&sim, 1, 3600),
            reboot: Path::new("/bin/true"),
            modules_dir: None,
            raw_toml: rig.raw_backend_toml(),
        },
    );
    Some(Rig {
        proxy,
        sim,
        dir,
        _rig: rig,
        net,
    })
}

impl Rig {
    fn sim_addr(&self) -> String {
        self.sim
            .handle
            .base_url()
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Accepts the device `mac` once it asked, then waits for its first inventory; its id.
    async fn admitted(&self, mac: &str) -> String {
        let id = accept(&self.sim, mac, Duration::from_secs(30)).await;
        wait_for(Duration::from_secs(30), "the inventory", || async {
            let inv = self.sim.inventory(&id).await;
            inv.as_array()?
                .iter()
                .any(|a| a["name"] == "artifact_name" && a["value"] == "release-1")
                .then_some(())
        })
        .await;
        id
    }

    /// Deploys a 1 MiB image (`seed`) to `id` with its payload corrupted `corrupt` bytes
    /// into the data (and the download cut `cut` bytes in, if given), then waits for the
    /// failure status and the uploaded log: (deployment id, log, the cut's offset).
    async fn failing_deployment(
        &self,
        id: &str,
        seed: u64,
        cut: Option<u64>,
        corrupt: u64,
    ) -> (String, String, Option<u64>) {
        let img = common::image(1 << 20, seed);
        let (dep, size, data) = deploy_with(
            &self.sim,
            id,
            "release-2",
            &img,
            None,
            WriteOptions::default(),
        )
        .await;
        let cut = cut.map(|c| data + c);
        let corrupt = data + corrupt;
        assert!(corrupt < size, "{corrupt} < {size}");
        if let Some(cut) = cut {
            self.sim
                .http
                .manage_ok(Method::POST, "/faults/cut", Some(json!({"offsets": [cut]})))
                .await;
        }
        self.sim
            .http
            .manage_ok(
                Method::POST,
                "/faults/corrupt",
                Some(json!({"offsets": [corrupt]})),
            )
            .await;
        wait_for(Duration::from_secs(60), "the failure status", || async {
            statuses(&self.sim, &dep, id)
                .await
                .iter()
                .any(|s| s == "failure")
                .then_some(())
        })
        .await;
        let log = wait_for(Duration::from_secs(30), "the deployment log", || async {
            let l = self.sim.deployment_log(&dep, id).await;
            (!l.is_empty()).then_some(l)
        })
        .await;
        (dep, log, cut)
    }

    /// `mender-bridge daemon` in the namespace with `HTTPS_PROXY` set to `proxy_url`.
    fn daemon(&self, proxy_url: &str) -> Daemon {
        let cmd = self.bridge(&["-l", "debug", "daemon"], Some(proxy_url));
        Daemon::start(cmd, &self.dir.path().join("daemon.log"))
    }

    /// `mender-bridge ARGS` in the namespace, with `HTTPS_PROXY` set to `proxy_url` (or
    /// none) and no other proxy variable.
    fn bridge(&self, args: &[&str], proxy_url: Option<&str>) -> Command {
        let mut cmd = common::bridge_command(self.dir.path(), args);
        cmd.env_remove("https_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        match proxy_url {
            Some(p) => cmd.env("HTTPS_PROXY", p),
            None => cmd.env_remove("HTTPS_PROXY"),
        };
        self.net.command(&cmd)
    }
}

/// Auth, inventory, update check, a download cut once and resumed, status reports and the
/// deployment log, all through the proxy's tunnels; nothing reaches the simulator directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_through_an_authenticating_proxy() {
    let mac = "02:00:00:00:e0:01";
    let Some(r) = rig(mac).await else { return };
    let sim_addr = r.sim_addr();
    assert!(
        !r.net.reaches(&sim_addr),
        "the namespace reaches the simulator directly"
    );
    assert!(
        r.net.reaches(&r.proxy.server.addr),
        "the namespace reaches the proxy"
    );

    let mut daemon = r.daemon(&format!("http://bridge:pa55-w0rd@{}", r.proxy.server.addr));
    let id = r.admitted(mac).await;
    // A download cut once (then resumed by Range) and corrupted further on.
    let (dep, log, cut) = r.failing_deployment(&id, 11, Some(300_000), 800_000).await;
    assert!(!log.contains("pa55-w0rd"), "{log}");
    let h = statuses(&r.sim, &dep, &id).await;
    assert!(h.iter().any(|s| s == "downloading"), "{h:?}");

    let downloads = r.sim.downloads().await;
    assert!(downloads.len() >= 2, "{downloads:#?}");
    assert!(
        downloads
            .iter()
            .any(|d| d["cut_at"] == json!(cut.expect("cut"))),
        "{downloads:#?}"
    );
    assert!(
        downloads.iter().any(
            |d| d["range"].as_str().is_some_and(|r| r.starts_with("bytes=")) && d["status"] == 206
        ),
        "the download resumed by Range: {downloads:#?}"
    );

    daemon.stop(Duration::from_secs(10));
    let dlog = std::fs::read_to_string(r.dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        dlog.contains(&format!("https via {}", r.proxy.server.addr)),
        "the daemon names the proxy it uses\n{dlog}"
    );
    assert!(
        !dlog.contains("pa55-w0rd"),
        "the password in the daemon log"
    );
    assert!(
        !dlog.contains("YnJpZGdlOnBhNTUtdzByZA"),
        "the credentials, base64, in the log"
    );
    let tlog = r.proxy.log();
    assert!(
        tlog.contains(&format!("CONNECT {sim_addr}")),
        "tinyproxy saw the tunnels\n{tlog}"
    );
    r.sim.handle.shutdown().await;
}

/// The daemon's log line saying the proxy refused the credentials (waited for).
async fn refusal(daemon: &Daemon) -> String {
    wait_for(
        Duration::from_secs(30),
        "the refusal in the log",
        || async {
            daemon
                .log()
                .lines()
                .find(|l| l.contains("refused the credentials"))
                .map(str::to_string)
        },
    )
    .await
}

/// A wrong password: the daemon logs that the proxy (host:port) refused the credentials,
/// with the status, and never the password; the simulator sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_proxy_login_is_a_clear_error_without_the_password() {
    let mac = "02:00:00:00:e0:02";
    let Some(r) = rig(mac).await else { return };
    let daemon = r.daemon(&format!(
        "http://bridge:Wr0ng-s3cret@{}",
        r.proxy.server.addr
    ));
    let line = refusal(&daemon).await;
    assert!(
        line.contains(&format!("proxy {}", r.proxy.server.addr)),
        "{line}"
    );
    assert!(
        line.contains("HTTP 401") || line.contains("HTTP 407"),
        "{line}"
    );
    let log = daemon.log();
    assert!(
        !log.contains("Wr0ng-s3cret"),
        "the password in the log\n{log}"
    );
    assert!(
        !log.contains("YnJpZGdlOldyMG5nLXMzY3JldA"),
        "base64 credentials in the log"
    );
    let requests = r.sim.http.manage_ok(Method::GET, "/requests", None).await;
    assert_eq!(requests, json!([]), "nothing reached the simulator");
    drop(daemon);
    r.sim.handle.shutdown().await;
}

/// The same through a SOCKS5 proxy (Debian's `microsocks`, user and password): auth,
/// inventory, the update check, the download, status reports and the deployment log go
/// through it (the namespace reaches nothing else); a wrong password is a clear error that
/// shows neither password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_through_a_socks5_proxy() {
    let mac = "02:00:00:00:e0:03";
    let Some(r) = rig(mac).await else { return };
    let socks = microsocks(&r.net, "bridge", "s0cks-pa55");

    let daemon = r.daemon(&format!("socks5://bridge:Wr0ng-s3cret@{}", socks.addr));
    let line = refusal(&daemon).await;
    assert!(
        line.contains(&format!("proxy socks5://{}", socks.addr)),
        "{line}"
    );
    assert!(!daemon.log().contains("Wr0ng-s3cret"), "{}", daemon.log());
    drop(daemon);

    let mut daemon = r.daemon(&format!("socks5://bridge:s0cks-pa55@{}", socks.addr));
    let id = r.admitted(mac).await;
    // The whole download through the proxy, its payload corrupted near the end.
    let (dep, log, _) = r.failing_deployment(&id, 12, None, 900_000).await;
    assert!(log.contains("checksum"), "{log}");
    assert!(!log.contains("s0cks-pa55"), "{log}");
    let h = statuses(&r.sim, &dep, &id).await;
    assert!(h.iter().any(|s| s == "downloading"), "{h:?}");
    assert!(!r.sim.downloads().await.is_empty());

    daemon.stop(Duration::from_secs(10));
    let dlog = std::fs::read_to_string(r.dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        dlog.contains(&format!("https via socks5://{}", socks.addr)),
        "the daemon names the proxy it uses\n{dlog}"
    );
    assert!(
        !dlog.contains("s0cks-pa55"),
        "the password in the daemon log"
    );
    r.sim.handle.shutdown().await;
}

/// `doctor` in the namespace that reaches the server only through a proxy: it takes the
/// way the client takes (the proxy line, TCP through the tunnel, the server's certificate
/// verified inside it), for an HTTP and a SOCKS5 proxy; a wrong password fails the TCP
/// check naming the proxy and never the password; without the proxy, TCP fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_server_through_the_proxy() {
    let mac = "02:00:00:00:e0:04";
    let Some(r) = rig(mac).await else { return };
    let socks = microsocks(&r.net, "bridge", "s0cks-pa55");
    let doctor = |proxy: Option<String>| {
        let out = r
            .bridge(&["doctor"], proxy.as_deref())
            .output()
            .expect("run doctor");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = |out: &str, start: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no '{start}' line in:\n{out}"))
            .to_string()
    };
    let sim_host = r
        .sim_addr()
        .rsplit_once(':')
        .expect("host:port")
        .0
        .to_string();
    for (proxy, shown) in [
        (
            format!("http://bridge:pa55-w0rd@{}", r.proxy.server.addr),
            r.proxy.server.addr.clone(),
        ),
        (
            format!("socks5://bridge:s0cks-pa55@{}", socks.addr),
            format!("socks5://{}", socks.addr),
        ),
    ] {
        let out = tokio::task::block_in_place(|| doctor(Some(proxy)));
        assert!(line(&out, "ok   proxy: ").contains(&shown), "{out}");
        assert!(
            line(&out, "ok   tcp: ").contains(&format!("{sim_host} connected through {shown}")),
            "{out}"
        );
        assert!(
            line(&out, "ok   tls: ").contains("certificate verified"),
            "{out}"
        );
    }
    let out = tokio::task::block_in_place(|| {
        doctor(Some(format!("socks5://bridge:Wr0ng-s3cret@{}", socks.addr)))
    });
    assert!(
        line(&out, "fail tcp: ").contains("refused the credentials"),
        "{out}"
    );
    assert!(!out.contains("Wr0ng-s3cret"), "{out}");
    let out = tokio::task::block_in_place(|| doctor(None));
    assert!(line(&out, "fail tcp: ").contains(&sim_host), "{out}");
    r.sim.handle.shutdown().await;
}
