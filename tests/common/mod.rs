//! Shared helpers of the integration tests: running the real `mender-artifact`, test keys,
//! taking artifacts apart and putting them back together, and reading through the reader
//! while recording every payload byte it releases.
#![allow(dead_code)]

#[cfg(feature = "sim")]
pub mod attack;
#[cfg(feature = "sim")]
pub mod device;
pub mod openapi;
#[cfg(all(feature = "sim", feature = "rauc"))]
pub mod rauc;
#[cfg(feature = "sim")]
pub mod sim;
pub mod slots;
#[cfg(all(feature = "sim", feature = "swupdate"))]
pub mod swupdate;
pub mod tarw;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use mender_artifact::render::ArtifactReport;
use mender_artifact::writer::ScriptFile;
use mender_artifact::{ArtifactError, ArtifactReader, ReadOptions, VerifyKey};
use sha2::{Digest, Sha256};
use tarw::TarEntry;

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

/// A temp dir with test keys and a 16 KiB random image.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workdir { dir };
        let mut img = vec![0u8; 16 * 1024];
        // Deterministic but incompressible-looking content.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for b in img.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(w.path("img.bin"), &img).expect("write image");
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// RSA-3072 (PKCS#1 private, SPKI public) and EC P-256 keys, made with openssl.
    pub fn keys(&self) {
        let p = |n| self.path(n);
        run(Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(p("rsa.key"))
            .arg("3072"));
        run(Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(p("rsa.key"))
            .arg("-out")
            .arg(p("rsa.pub")));
        run(Command::new("openssl")
            .args(["rsa", "-RSAPublicKey_out", "-in"])
            .arg(p("rsa.key"))
            .arg("-out")
            .arg(p("rsa-pkcs1.pub")));
        run(Command::new("openssl")
            .args([
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
            ])
            .arg(p("ec.key")));
        run(Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(p("ec.key"))
            .arg("-out")
            .arg(p("ec.pub")));
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
