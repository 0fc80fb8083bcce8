//! A real SWUpdate 2022.12 daemon for tests: a test CA and signer (openssl), signed .swu
//! files (cpio newc, `sw-description` first) whose `raw`/`rawfile` handlers write plain
//! files, the daemon started with `TMPDIR` pointing into a temp dir (its own sockets) and
//! killed on drop; Mender artifacts around a .swu made with the real `mender-artifact`; an
//! engine over the SWUpdate backend against the simulator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use mender_artifact::ReadOptions;
use mender_bridge::deploy::engine::{Engine, EngineConfig};
use mender_bridge::deploy::scripts::ScriptRunner;
use mender_bridge::deploy::store::Store;
use mender_bridge_backends::swupdate::abi::{Abi, InstallRequest, RunType};
use mender_bridge_backends::swupdate::control::{Control, InstallStart};
use mender_bridge_backends::swupdate::{SwupdateBackend, SwupdateConfig};
use serde_json::json;

use super::device::{Device, DEVICE_TYPE};
use super::run;
use super::sim::{full, TestSim};

pub const HW: &str = "testboard:1.0";

/// A temp dir with a CA (`pki/ca.pem`) and a signer it issued (`pki/dev.pem`, `dev.key`,
/// emailProtection as SWUpdate wants), plus `other` signed by an untrusted CA.
pub struct SwuDir {
    pub dir: tempfile::TempDir,
}

impl SwuDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = SwuDir { dir };
        std::fs::create_dir_all(d.path("pki")).unwrap();
        std::fs::create_dir_all(d.path("run")).unwrap();
        std::fs::create_dir_all(d.path("out")).unwrap();
        for ca in ["ca", "other-ca"] {
            run(Command::new("openssl")
                .current_dir(d.path("pki"))
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
                .arg(format!("{ca}.key"))
                .arg("-out")
                .arg(format!("{ca}.pem"))
                .args(["-days", "3650", "-subj", "/CN=test-ca"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        }
        std::fs::write(
            d.path("pki/ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=emailProtection\n",
        )
        .unwrap();
        for (signer, ca) in [("dev", "ca"), ("other", "other-ca")] {
            run(Command::new("openssl")
                .current_dir(d.path("pki"))
                .args(["req", "-newkey", "rsa:2048", "-nodes", "-keyout"])
                .arg(format!("{signer}.key"))
                .arg("-out")
                .arg(format!("{signer}.csr"))
                .args(["-subj", "/CN=test-signer"]));
            run(Command::new("openssl")
                .current_dir(d.path("pki"))
                .args(["x509", "-req", "-in"])
                .arg(format!("{signer}.csr"))
                .arg("-CA")
                .arg(format!("{ca}.pem"))
                .arg("-CAkey")
                .arg(format!("{ca}.key"))
                .args(["-CAcreateserial", "-out"])
                .arg(format!("{signer}.pem"))
                .args(["-days", "3650", "-extfile", "ext"]));
        }
        d
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The raw handler's target (it opens an existing file) and the rawfile handler's.
    pub fn target(&self) -> PathBuf {
        self.path("out/target.img")
    }
    pub fn copy(&self) -> PathBuf {
        self.path("out/copy.bin")
    }

    /// A signed .swu installing `img` with `raw` into [`Self::target`] (created here,
    /// `target_size` bytes of 0xee) and with `rawfile` into [`Self::copy`]. `hw` is the
    /// hardware-compatibility revision; `signer` `dev` (trusted) or `other` (not).
    pub fn swu(&self, name: &str, img: &[u8], hw: &str, signer: &str) -> PathBuf {
        self.swu_with(name, img, hw, signer, false)
    }

    /// As [`Self::swu`]; `direct`: the raw image is `installed-directly` (SWUpdate writes
    /// it as the stream arrives instead of after the stream's end).
    pub fn swu_with(
        &self,
        name: &str,
        img: &[u8],
        hw: &str,
        signer: &str,
        direct: bool,
    ) -> PathBuf {
        std::fs::write(self.target(), vec![0xee; img.len() + 4096]).unwrap();
        let sha = super::sha256_hex(img);
        // An image installed directly is consumed from the stream: it cannot feed a second
        // handler, so the rawfile copy is left out then.
        let files = if direct {
            String::new()
        } else {
            format!(
                "  files: ( {{ filename = \"rootfs.img\"; path = \"{}\"; type = \"rawfile\"; \
                 sha256 = \"{sha}\"; }} );\n",
                self.copy().display()
            )
        };
        let desc = format!(
            "software = {{\n  version = \"1.0.0\";\n  hardware-compatibility = [ \"{hw}\" ];\n  \
             images: ( {{ filename = \"rootfs.img\"; device = \"{}\"; type = \"raw\"; sha256 = \"{sha}\";{direct} }} );\n\
             {files}}}\n",
            self.target().display(),
            direct = if direct { " installed-directly = true;" } else { "" },
        );
        self.swu_files(name, &desc, &[("rootfs.img", img)], signer)
    }

    /// A .swu of `sw-description` (`desc`), its CMS signature by `signer` (`dev`: trusted,
    /// `other`: not) and `files`, in that order (cpio newc).
    pub fn swu_files(
        &self,
        name: &str,
        desc: &str,
        files: &[(&str, &[u8])],
        signer: &str,
    ) -> PathBuf {
        let work = self.path(&format!("swu-{name}"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("sw-description"), desc).unwrap();
        for (f, data) in files {
            std::fs::write(work.join(f), data).unwrap();
        }
        run(Command::new("openssl")
            .current_dir(&work)
            .args([
                "cms",
                "-sign",
                "-in",
                "sw-description",
                "-out",
                "sw-description.sig",
            ])
            .arg("-signer")
            .arg(self.path(&format!("pki/{signer}.pem")))
            .arg("-inkey")
            .arg(self.path(&format!("pki/{signer}.key")))
            .args(["-outform", "DER", "-nosmimecap", "-binary"]));
        let out = self.path(&format!("{name}.swu"));
        let mut cpio = Command::new("cpio")
            .current_dir(&work)
            .args(["-o", "-H", "newc", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        let mut list = String::from("sw-description\nsw-description.sig\n");
        for (f, _) in files {
            list.push_str(&format!("{f}\n"));
        }
        use std::io::Write;
        cpio.stdin
            .take()
            .unwrap()
            .write_all(list.as_bytes())
            .unwrap();
        assert!(cpio.wait().unwrap().success());
        out
    }

    /// `mender-artifact write module-image -T swu` around `swu`, uncompressed (so a byte
    /// offset in the .swu maps to one in the artifact).
    pub fn artifact(&self, name: &str, swu: &Path) -> Vec<u8> {
        self.artifact_signed(name, swu, None)
    }

    /// As [`Self::artifact`], signed with `key` (`mender-artifact -k`) when given.
    pub fn artifact_signed(&self, name: &str, swu: &Path, key: Option<&Path>) -> Vec<u8> {
        self.artifact_with(name, swu, key, &[])
    }

    /// As [`Self::artifact_signed`], with state scripts (`(name, body)`, passed with `-s`).
    pub fn artifact_with(
        &self,
        name: &str,
        swu: &Path,
        key: Option<&Path>,
        scripts: &[(&str, &str)],
    ) -> Vec<u8> {
        let out = self.path(&format!("{name}.mender"));
        let mut sign = Vec::new();
        if let Some(k) = key {
            sign.push("-k".into());
            sign.push(k.as_os_str().to_owned());
        }
        for (script, body) in scripts {
            let dir = self.path(&format!("scripts-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(script);
            std::fs::write(&p, body).unwrap();
            sign.push("-s".into());
            sign.push(p.into_os_string());
        }
        run(Command::new("mender-artifact")
            .args([
                "write",
                "module-image",
                "-T",
                "swu",
                "-n",
                name,
                "-t",
                DEVICE_TYPE,
            ])
            .args(&sign)
            .args(["--compression", "none", "-f"])
            .arg(swu)
            .arg("-o")
            .arg(&out));
        std::fs::read(out).unwrap()
    }

    /// Every file under `dir` (recursively), for "nothing was spooled" checks.
    pub fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(Self::files_under(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}

/// A running `swupdate` daemon, killed on drop.
pub struct SwuDaemon {
    child: Child,
    pub run: PathBuf,
    pub log: PathBuf,
    /// The spool directory [`Self::config`] names.
    pub spool: PathBuf,
}

/// Where `scripts/build-swupdate-unsigned.sh` installs SWUpdate 2022.12 built without
/// signed-image support (`$SWUPDATE_UNSIGNED` overrides).
pub fn unsigned_swupdate() -> PathBuf {
    let p = std::env::var_os("SWUPDATE_UNSIGNED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/lib/mender-bridge-test/swupdate-unsigned"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it runs build-swupdate-unsigned.sh)",
        p.display()
    );
    p
}

impl SwuDaemon {
    /// `swupdate -v -k ca.pem -H testboard:1.0` with `TMPDIR=<dir>/run`: Debian's build,
    /// which enforces signed images.
    pub fn start(d: &SwuDir) -> Self {
        Self::start_with(d, None)
    }

    /// `swupdate-unsigned -v -H testboard:1.0` (no `-k`): a SWUpdate that installs
    /// unsigned images ([`unsigned_swupdate`]).
    pub fn start_unsigned(d: &SwuDir) -> Self {
        let run_dir = d.path("run");
        let log = d.path("daemon.log");
        let child = Command::new(unsigned_swupdate())
            .args(["-v", "-H", HW])
            .env("TMPDIR", &run_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(d.path("daemon.stderr")).unwrap())
            .spawn()
            .expect("start swupdate-unsigned");
        Self::wait_ready(SwuDaemon {
            child,
            run: run_dir,
            log,
            spool: d.path("spool"),
        })
    }

    /// As [`Self::start`]; with `uboot_env = Some(fw_env.config)` the daemon runs with
    /// `-B uboot` in a private mount namespace whose `/etc` is an overlay holding that
    /// `fw_env.config` (the machine's `/etc` is never touched) and whose `/run/lock` is a
    /// private tmpfs: libubootenv takes a machine-wide `flock` on
    /// `/run/lock/fw_printenv.lock`, which the raw backend's tests running in parallel hold
    /// too, and a daemon blocked on it stalls the install.
    pub fn start_with(d: &SwuDir, uboot_env: Option<&Path>) -> Self {
        let run_dir = d.path("run");
        let log = d.path("daemon.log");
        let args = format!("-v -k {} -H {HW}", d.path("pki/ca.pem").display());
        let mut cmd = match uboot_env {
            None => {
                let mut c = Command::new("swupdate");
                c.args(args.split(' '));
                c
            }
            Some(fw_env) => {
                let ov = d.path("etc-overlay");
                std::fs::create_dir_all(ov.join("up")).unwrap();
                std::fs::create_dir_all(ov.join("wk")).unwrap();
                std::fs::copy(fw_env, ov.join("up/fw_env.config")).unwrap();
                let shell = format!(
                    "mount -t overlay overlay -o lowerdir=/etc,upperdir={up},workdir={wk} /etc \
                     && mount -t tmpfs tmpfs /run/lock \
                     && exec swupdate -B uboot {args}",
                    up = ov.join("up").display(),
                    wk = ov.join("wk").display(),
                );
                let mut c = Command::new("unshare");
                c.args(["--mount", "--", "sh", "-c", &shell]);
                c
            }
        };
        let child = cmd
            .env("TMPDIR", &run_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(d.path("daemon.stderr")).unwrap())
            .spawn()
            .expect("start swupdate (scripts/setup-test-deps.sh installs it)");
        Self::wait_ready(SwuDaemon {
            child,
            run: run_dir,
            log,
            spool: d.path("spool"),
        })
    }

    fn wait_ready(daemon: SwuDaemon) -> Self {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(daemon.control().exists() && daemon.progress().exists()) {
            assert!(
                Instant::now() < deadline,
                "swupdate did not create its sockets: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    pub fn control(&self) -> PathBuf {
        self.run.join("sockinstctrl")
    }

    /// Opens an install directly over the control socket, as another client would; the
    /// daemon is busy with it until the returned connection is closed.
    pub async fn open_install(&self, info: &str) -> tokio::net::UnixStream {
        let control = Control::new(&self.control(), Abi::NATIVE, Duration::from_secs(5));
        let req = InstallRequest {
            run: RunType::Default,
            info: info.into(),
            software_set: String::new(),
            running_mode: String::new(),
            disable_store_swu: false,
        };
        match control.start_install(&req).await.unwrap() {
            InstallStart::Accepted(s) => s,
            other => panic!("the install '{info}' was not accepted: {other:?}"),
        }
    }
    pub fn progress(&self) -> PathBuf {
        self.run.join("swupdateprog")
    }

    /// The daemon's output: stdout, then stderr (where its ERROR lines go).
    pub fn log_text(&self) -> String {
        let mut t = std::fs::read_to_string(&self.log).unwrap_or_default();
        t.push_str(
            &std::fs::read_to_string(self.log.with_file_name("daemon.stderr")).unwrap_or_default(),
        );
        t
    }

    /// How many installs the daemon started, the bridge's signature probes included.
    pub fn runs_started(&self) -> usize {
        self.log_text().matches("Software update started").count()
    }

    /// How many signature probes it saw: refused for their signature (`-k`), or accepted
    /// (their image named in the log at `-v`).
    pub fn probes(&self) -> usize {
        let t = self.log_text();
        t.matches("sw-description.sig cannot be parsed").count()
            + t.matches("filename mender-bridge-probe").count()
    }

    /// How many installs the daemon started, the bridge's signature probes left out.
    pub fn installs_started(&self) -> usize {
        self.runs_started() - self.probes()
    }

    /// The backend configuration for this daemon: explicit socket paths, no reboot, no
    /// ustate, short waits.
    pub fn config(&self) -> SwupdateConfig {
        SwupdateConfig {
            control_socket: Some(self.control()),
            progress_socket: Some(self.progress()),
            reboot: false,
            ustate: false,
            timeout: Duration::from_secs(10),
            install_timeout: Duration::from_secs(120),
            busy_retries: 2,
            busy_backoff: Duration::from_millis(100),
            sw_versions_file: None,
            spool_dir: self.spool.clone(),
            ..SwupdateConfig::default()
        }
    }
}

impl Drop for SwuDaemon {
    fn drop(&mut self) {
        // SIGTERM first, so the daemon unlinks its sockets; then make sure.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fw_printenv` / `fw_setenv` with `args`, in a private mount namespace with its own
/// `/run/lock` (see [`SwuDaemon::start_with`]); returns stdout.
pub fn uboot_tool(tool: &str, args: &[&str]) -> String {
    let mut shell = format!("mount -t tmpfs tmpfs /run/lock && exec {tool}");
    for a in args {
        shell.push_str(&format!(" '{a}'"));
    }
    run(Command::new("unshare").args(["--mount", "--", "sh", "-c", &shell]))
}

/// An engine over the SWUpdate backend for `dev`, as a (re)started process builds it.
pub fn engine(dev: &Device, sim: &TestSim, cfg: SwupdateConfig) -> Engine<SwupdateBackend> {
    let d = dev.dir.path();
    let ec = EngineConfig {
        device_type: DEVICE_TYPE.into(),
        read: ReadOptions::default(),
        scripts: ScriptRunner {
            rootfs_dir: d.join("rootfs-scripts"),
            artifact_dir: d.join("store/scripts"),
            timeout: Duration::from_secs(10),
            retry_interval: Duration::from_millis(100),
            retry_timeout: Duration::from_secs(1),
        },
        artifact_info: d.join("artifact_info"),
        retry_initial: Duration::from_millis(50),
        retry_cap: Duration::from_millis(500),
        progress_interval: Duration::from_millis(50),
        progress_step: 10,
    };
    Engine::new(
        dev.client(sim),
        Store::new(d.join("store")),
        SwupdateBackend::new(cfg),
        ec,
    )
}

/// Uploads `artifact` and deploys it (named `name`) to `device`; returns the deployment id.
pub async fn upload_and_deploy(
    sim: &TestSim,
    device: &str,
    name: &str,
    artifact: Vec<u8>,
) -> String {
    let r = sim
        .http
        .send(
            Method::POST,
            "/api/sim/artifacts",
            &[("content-type", "application/octet-stream")],
            full(artifact),
        )
        .await;
    assert_eq!(r.status, 201, "upload: {}", r.text());
    let v = sim
        .http
        .manage_ok(
            Method::POST,
            "/deployments",
            Some(json!({"artifact_name": name, "devices": [device]})),
        )
        .await;
    v["id"].as_str().unwrap().to_string()
}

/// The deployment log the device uploaded, as text.
pub async fn deployment_log(sim: &TestSim, dep: &str, dev: &str) -> String {
    sim.http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{dev}/log"),
            None,
        )
        .await
        .to_string()
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
