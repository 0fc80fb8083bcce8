//! Shared helpers of the integration tests: running the real `mender-artifact`, test keys,
//! taking artifacts apart and putting them back together, and reading through the reader
//! while recording every payload byte it releases.
#![allow(dead_code)]

#[cfg(feature = "sim")]
pub mod attack;
pub mod bus;
#[cfg(feature = "sim")]
pub mod daemon;
#[cfg(feature = "sim")]
pub mod device;
pub mod modules;
pub mod openapi;
#[cfg(all(feature = "sim", feature = "rauc"))]
pub mod rauc;
#[cfg(feature = "sim")]
pub mod sim;
pub mod slots;
#[cfg(all(feature = "sim", feature = "swupdate"))]
pub mod swupdate;
pub mod tarw;
pub mod wait;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mender_artifact::render::ArtifactReport;
use mender_artifact::writer::ScriptFile;
use mender_artifact::{ArtifactError, ArtifactReader, ReadOptions, VerifyKey};
use sha2::{Digest, Sha256};
use tarw::TarEntry;

/// The device type of every test device.
pub const DEVICE_TYPE: &str = "test-dev";

/// Creates `<dir>/data` with a `device_type` file naming [`DEVICE_TYPE`], as a device's
/// data directory has; returns its path.
pub fn device_data_dir(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(
        data.join("device_type"),
        format!("device_type={DEVICE_TYPE}\n"),
    )
    .expect("device_type");
    data
}

/// `mender-bridge ARGS` for the device whose files are in `dir`: `-c dir/mender.conf`,
/// `-d dir/data`, `--bridge-config dir/bridge.toml`, and none of systemd's variables
/// (`NOTIFY_SOCKET`, `WATCHDOG_*`) inherited from the test runner.
pub fn bridge_command(dir: &Path, args: &[&str]) -> Command {
    device_command(Path::new(env!("CARGO_BIN_EXE_mender-bridge")), dir, args)
}

/// [`bridge_command`] for the binary at `program` (e.g. a link named `mender-update`).
pub fn device_command(program: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.arg("-c")
        .arg(dir.join("mender.conf"))
        .arg("-d")
        .arg(dir.join("data"))
        .arg("--bridge-config")
        .arg(dir.join("bridge.toml"))
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    c
}

/// The artifact states whose scripts ship in an artifact.
pub const ARTIFACT_STATES: [&str; 6] = [
    "ArtifactInstall",
    "ArtifactReboot",
    "ArtifactCommit",
    "ArtifactRollback",
    "ArtifactRollbackReboot",
    "ArtifactFailure",
];

/// A script for every artifact state × Enter/Leave/Error, named
/// `<State>_<Action>_<suffix>`, with the body `body(name)`.
pub fn every_artifact_script(suffix: &str, body: impl Fn(&str) -> String) -> Vec<ScriptFile> {
    let mut out = Vec::new();
    for state in ARTIFACT_STATES {
        for action in ["Enter", "Leave", "Error"] {
            let name = format!("{state}_{action}_{suffix}");
            let content = body(&name);
            out.push(ScriptFile::new(name, content));
        }
    }
    out
}

/// Every artifact script, each touching `<canary>/<its name>` when it runs.
pub fn canary_scripts(canary: &Path) -> Vec<ScriptFile> {
    every_artifact_script("01", |name| {
        format!("#!/bin/sh\ntouch {}/{name}\n", canary.display())
    })
}

/// The names in `dir`, sorted (none when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Writes an executable shell script `#!/bin/sh\n<body>` to `path`.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {cmd:?}: {e}. Install the test dependencies with scripts/setup-test-deps.sh"
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `len` deterministic, incompressible-looking bytes (xorshift), different for each `seed`.
pub fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `openssl <args>` run in `dir`; its stdout (panics with its output when it fails).
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    run(Command::new("openssl").current_dir(dir).args(args))
}

/// `openssl <args>` with `stdin` fed to it; its stdout as bytes (a signature).
pub fn openssl_piped(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl (scripts/setup-test-deps.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write");
    let out = child.wait_with_output().expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An EC P-256 key pair made with openssl: `<dir>/<name>.key` (SEC1 PEM) and
/// `<dir>/<name>.pub` (SPKI PEM); returns the private key's path.
pub fn ec_key_pair(dir: &Path, name: &str) -> PathBuf {
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            &key,
        ],
    );
    openssl(
        dir,
        &["ec", "-pubout", "-in", &key, "-out", &format!("{name}.pub")],
    );
    dir.join(key)
}

/// A self-signed certificate made by `openssl req -x509` in `dir`: a new `newkey` key (with
/// `-pkeyopt` `opts`) written to `key`, the certificate to `cert`, for `subject`, valid
/// `days`, with the `-addext` extensions `ext`.
pub struct SelfSigned<'a> {
    pub newkey: &'a str,
    pub opts: &'a [&'a str],
    pub key: &'a str,
    pub cert: &'a str,
    pub subject: &'a str,
    pub days: &'a str,
    pub ext: &'a [&'a str],
}

impl SelfSigned<'_> {
    pub fn write(&self, dir: &Path) {
        let mut args = vec!["req", "-x509", "-newkey", self.newkey];
        for o in self.opts {
            args.extend(["-pkeyopt", o]);
        }
        args.extend(["-nodes", "-keyout", self.key, "-out", self.cert]);
        args.extend(["-subj", self.subject, "-days", self.days]);
        for e in self.ext {
            args.extend(["-addext", e]);
        }
        openssl(dir, &args);
    }
}

/// A self-signed test CA in `pki`: `<name>.key`, `<name>.pem` (CN=test-ca).
pub fn test_ca(pki: &Path, name: &str) {
    SelfSigned {
        newkey: "rsa:2048",
        opts: &[],
        key: &format!("{name}.key"),
        cert: &format!("{name}.pem"),
        subject: "/CN=test-ca",
        days: "3650",
        ext: &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    }
    .write(pki);
}

/// A code-signing (emailProtection) certificate in `pki` issued by CA `ca`:
/// `<name>.key`, `<name>.pem` (CN=test-signer).
pub fn test_signer(pki: &Path, name: &str, ca: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    std::fs::write(
        pki.join("ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=emailProtection\n",
    )
    .expect("ext");
    openssl(
        pki,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=test-signer",
        ],
    );
    openssl(
        pki,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "3650",
            "-extfile",
            "ext",
        ],
    );
}

/// A deployment status as the dashboard lists it: a bare status or (status, substate).
pub trait Status {
    fn status(&self) -> &str;
}

impl Status for String {
    fn status(&self) -> &str {
        self
    }
}

impl Status for (String, Option<String>) {
    fn status(&self) -> &str {
        &self.0
    }
}

/// Whether `status` ends a deployment.
pub fn is_final(status: &str) -> bool {
    matches!(status, "success" | "failure" | "already-installed")
}

/// How many final statuses (`success`, `failure`, `already-installed`) `history` holds.
pub fn finals<S: Status>(history: &[S]) -> usize {
    history.iter().filter(|h| is_final(h.status())).count()
}

/// A temp dir with test keys and a 16 KiB random image.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workdir { dir };
        std::fs::write(w.path("img.bin"), image(16 * 1024, 0x9e3779b97f4a7c15))
            .expect("write image");
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// RSA-3072 (PKCS#1 private, SPKI public) and EC P-256 keys, made with openssl.
    pub fn keys(&self) {
        let d = self.dir.path();
        openssl(d, &["genrsa", "-traditional", "-out", "rsa.key", "3072"]);
        openssl(d, &["rsa", "-pubout", "-in", "rsa.key", "-out", "rsa.pub"]);
        openssl(
            d,
            &[
                "rsa",
                "-RSAPublicKey_out",
                "-in",
                "rsa.key",
                "-out",
                "rsa-pkcs1.pub",
            ],
        );
        ec_key_pair(d, "ec");
    }

    /// `mender-artifact write <args> -o <out>`; returns the artifact path.
    pub fn write(&self, out: &str, args: &[&str]) -> PathBuf {
        let path = self.path(out);
        run(Command::new("mender-artifact")
            .current_dir(self.dir.path())
            .arg("write")
            .args(args)
            .arg("-o")
            .arg(&path));
        path
    }

    /// `mender-artifact read [-k key] <file>` stdout.
    pub fn mender_read(&self, file: &Path, key: Option<&str>) -> String {
        let mut cmd = Command::new("mender-artifact");
        cmd.arg("read");
        if let Some(k) = key {
            cmd.arg("-k").arg(self.path(k));
        }
        run(cmd.arg(file))
    }

    pub fn key(&self, name: &str) -> VerifyKey {
        VerifyKey::from_file(&self.path(name)).expect("load key")
    }
}

/// What a consumer of the reader saw: the outcome and every payload byte released to it.
pub struct Outcome {
    pub result: Result<ArtifactReport, ArtifactError>,
    pub delivered: Vec<u8>,
}

/// Reads `bytes` the way a backend would, keeping every released chunk.
pub fn read(bytes: Vec<u8>, opts: ReadOptions) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut delivered = Vec::new();
        let result = async {
            let mut r = ArtifactReader::open(std::io::Cursor::new(bytes), opts).await?;
            let mut files = Vec::new();
            while let Some(f) = r.next_file().await? {
                while let Some(c) = r.read_chunk().await? {
                    delivered.extend_from_slice(&c);
                }
                files.push(f);
            }
            let info = r.finish().await?;
            Ok(ArtifactReport { info, files })
        }
        .await;
        Outcome { result, delivered }
    })
}

pub fn read_file(path: &Path, opts: ReadOptions) -> Outcome {
    read(std::fs::read(path).expect("read artifact"), opts)
}

pub fn keys_opts(keys: Vec<VerifyKey>) -> ReadOptions {
    ReadOptions {
        verify_keys: keys,
        ..Default::default()
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// An artifact taken apart into its outer members.
pub struct Parts {
    pub members: Vec<TarEntry>,
}

impl Parts {
    pub fn of(bytes: &[u8]) -> Self {
        Parts {
            members: tarw::read(bytes).0,
        }
    }

    pub fn get(&self, name: &str) -> &TarEntry {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn get_mut(&mut self, name: &str) -> &mut TarEntry {
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn remove(&mut self, name: &str) -> TarEntry {
        let i = self
            .members
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"));
        self.members.remove(i)
    }

    /// Rewrites the manifest line of `name` with the SHA-256 of `data` (the signature, if
    /// any, no longer matches; tests that need a valid one remove manifest.sig).
    pub fn rehash(&mut self, name: &str, data: &[u8]) {
        let manifest = String::from_utf8(self.get("manifest").data.clone()).expect("utf8");
        let mut out = String::new();
        for line in manifest.lines() {
            let (_, n) = line.split_once("  ").expect("manifest line");
            if n == name {
                out.push_str(&format!("{}  {n}\n", sha256_hex(data)));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.get_mut("manifest").data = out.into_bytes();
    }

    /// Replaces the header tar (given uncompressed entries), gzipped, fixing the manifest.
    pub fn set_header_gz(&mut self, entries: &[TarEntry]) {
        let gz = gzip(&tarw::write(entries));
        self.rehash("header.tar.gz", &gz);
        self.get_mut("header.tar.gz").data = gz;
        let _ = self
            .members
            .iter()
            .position(|m| m.name == "manifest.sig")
            .map(|i| self.members.remove(i));
    }

    /// The header tar's entries (for a gzip artifact).
    pub fn header_entries(&self) -> Vec<TarEntry> {
        tarw::read(&gunzip(&self.get("header.tar.gz").data)).0
    }

    pub fn bytes(&self) -> Vec<u8> {
        tarw::write(&self.members)
    }
}

/// The permission bits (and setuid/setgid/sticky) of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
