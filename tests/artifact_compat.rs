//! Artifacts written by the real `mender-artifact` (Debian 3.9.0) read back through the
//! streaming reader with exactly the fields `mender-artifact read` reports: the reader's
//! text rendering must equal that tool's output, byte for byte.

mod common;

use std::path::Path;

use common::{keys_opts, read_file, Workdir};
use mender_artifact::render::to_text;
use mender_artifact::{ReadOptions, SignatureStatus};

/// Reads `file` with `opts` and checks the rendering against `mender-artifact read`, and the
/// released payload bytes against the image.
fn assert_same(w: &Workdir, file: &Path, opts: ReadOptions, key: Option<&str>) -> String {
    let out = read_file(file, opts);
    let report = out
        .result
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let ours = to_text(&report);
    let theirs = w.mender_read(file, key);
    assert_eq!(ours, theirs, "rendering of {} differs", file.display());
    let img = std::fs::read(w.path("img.bin")).unwrap();
    if report.files.iter().any(|f| f.name == "img.bin") {
        assert!(
            out.delivered.starts_with(&img),
            "payload bytes released differ from the image"
        );
    }
    ours
}

#[test]
fn rootfs_unsigned_gzip() {
    let w = Workdir::new();
    let a = w.write(
        "a.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-1",
            "-f",
            "img.bin",
        ],
    );
    let text = assert_same(&w, &a, ReadOptions::default(), None);
    assert!(
        text.contains("Type:   rootfs-image"),
        "'type:\"\"' maps to rootfs-image"
    );
}

#[test]
fn rootfs_lzma_and_none_compression() {
    let w = Workdir::new();
    for c in ["lzma", "none"] {
        let a = w.write(
            &format!("{c}.mender"),
            &[
                "rootfs-image",
                "-t",
                "qemux86-64",
                "-n",
                "release-1",
                "-f",
                "img.bin",
                "--compression",
                c,
            ],
        );
        assert_same(&w, &a, ReadOptions::default(), None);
    }
}

#[test]
fn rsa_signed_with_spki_and_pkcs1_keys() {
    let w = Workdir::new();
    w.keys();
    let a = w.write(
        "rsa.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-t",
            "other",
            "-n",
            "release-1",
            "-f",
            "img.bin",
            "-k",
            "rsa.key",
            "-g",
            "grpA",
            "-N",
            "rel-0",
            "-N",
            "rel-00",
            "-G",
            "grp0",
            "-G",
            "grp1",
        ],
    );
    assert_same(&w, &a, keys_opts(vec![w.key("rsa.pub")]), Some("rsa.pub"));
    // The PKCS#1 form of the same key verifies too, and is named in the status.
    let out = read_file(&a, keys_opts(vec![w.key("ec.pub"), w.key("rsa-pkcs1.pub")]));
    let status = out.result.expect("verifies").info.signature;
    assert!(
        matches!(status, SignatureStatus::Verified { kind: "RSA", ref key } if key.ends_with("rsa-pkcs1.pub")),
        "{status:?}"
    );
    // Without keys the signature is reported, not checked.
    assert_same(&w, &a, ReadOptions::default(), None);
}

#[test]
fn ecdsa_signed_raw_r_s() {
    let w = Workdir::new();
    w.keys();
    // Several signatures: ECDSA is randomised, so both low and high s values turn up.
    for i in 0..6 {
        let a = w.write(
            &format!("ec{i}.mender"),
            &[
                "rootfs-image",
                "-t",
                "qemux86-64",
                "-n",
                "release-1",
                "-f",
                "img.bin",
                "-k",
                "ec.key",
            ],
        );
        let sig = common::Parts::of(&std::fs::read(&a).unwrap())
            .get("manifest.sig")
            .data
            .clone();
        assert_eq!(sig.len(), 88, "raw r||s, base64");
        assert_same(&w, &a, keys_opts(vec![w.key("ec.pub")]), Some("ec.pub"));
    }
}

#[test]
fn module_image_with_scripts_meta_data_depends_provides_clears() {
    let w = Workdir::new();
    w.keys();
    std::fs::write(w.path("meta.json"), r#"{"a":1,"b":"x","c":["y",2.5]}"#).unwrap();
    std::fs::write(w.path("f2.txt"), "second file\n").unwrap();
    std::fs::create_dir(w.path("scripts")).unwrap();
    for s in ["ArtifactInstall_Enter_01_hello", "ArtifactCommit_Leave_50"] {
        std::fs::write(w.path(&format!("scripts/{s}")), "#!/bin/sh\necho hi\n").unwrap();
    }
    let a = w.write(
        "module.mender",
        &[
            "module-image",
            "-T",
            "single-file",
            "-t",
            "qemux86-64",
            "-t",
            "beaglebone",
            "-n",
            "mod-1",
            "-f",
            "img.bin",
            "-f",
            "f2.txt",
            "-s",
            "scripts/ArtifactInstall_Enter_01_hello",
            "-s",
            "scripts/ArtifactCommit_Leave_50",
            "-m",
            "meta.json",
            "-d",
            "rootfs-image.version:rel-0",
            "-p",
            "single-file.f1.version:1",
            "--clears-provides",
            "single-file.f1.*",
            "-g",
            "grpB",
            "-G",
            "grp0",
            "-k",
            "ec.key",
            "--compression",
            "none",
        ],
    );
    let text = assert_same(&w, &a, keys_opts(vec![w.key("ec.pub")]), Some("ec.pub"));
    assert!(text.contains("ArtifactCommit_Leave_50"));
    let out = read_file(&a, keys_opts(vec![w.key("ec.pub")]));
    let r = out.result.unwrap();
    let p = &r.info.header.payload;
    assert_eq!(p.payload_type.as_deref(), Some("single-file"));
    assert_eq!(
        p.depends.get("rootfs-image.version"),
        Some(&vec!["rel-0".to_string()])
    );
    assert_eq!(
        p.clears_provides.as_deref(),
        Some(
            &[
                "single-file.f1.*".to_string(),
                "rootfs-image.single-file.*".to_string()
            ][..]
        )
    );
    let scripts = &r.info.header.scripts;
    assert_eq!(scripts[0].content.as_ref(), b"#!/bin/sh\necho hi\n");
    assert_eq!(r.files.len(), 2);
    let mut expected = std::fs::read(w.path("img.bin")).unwrap();
    expected.extend_from_slice(b"second file\n");
    assert_eq!(
        out.delivered, expected,
        "both files, in order, byte for byte"
    );
}

#[test]
fn bootstrap_artifact_null_payload() {
    let w = Workdir::new();
    let a = w.write(
        "boot.mender",
        &[
            "bootstrap-artifact",
            "-t",
            "qemux86-64",
            "-n",
            "boot-1",
            "-p",
            "rootfs-image.version:boot-1",
        ],
    );
    let text = assert_same(&w, &a, ReadOptions::default(), None);
    assert!(text.contains("Type:   Empty type") && text.contains("Files: None"));
}

#[test]
fn format_v2_read_only() {
    let w = Workdir::new();
    let a = w.write(
        "v2.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-v2",
            "-f",
            "img.bin",
            "-v",
            "2",
        ],
    );
    assert_same(&w, &a, ReadOptions::default(), None);
}

/// zstd: mender-artifact 3.9.0 cannot write it, so a real gzip artifact's header and data
/// members are re-packed with zstd (manifest rehashed, unsigned); the fields must stay those
/// `mender-artifact read` reports for the original.
#[test]
fn zstd_repacked_artifact() {
    let w = Workdir::new();
    let a = w.write(
        "gz.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-1",
            "-f",
            "img.bin",
        ],
    );
    let mut parts = common::Parts::of(&std::fs::read(&a).unwrap());
    for (old, new) in [
        ("header.tar.gz", "header.tar.zst"),
        ("data/0000.tar.gz", "data/0000.tar.zst"),
    ] {
        let raw = common::gunzip(&parts.get(old).data);
        let z = zstd::encode_all(&raw[..], 3).unwrap();
        if old.starts_with("header") {
            let manifest = String::from_utf8(parts.get("manifest").data.clone()).unwrap();
            let manifest = manifest
                .lines()
                .map(|l| {
                    if l.ends_with("  header.tar.gz") {
                        format!("{}  header.tar.zst", common::sha256_hex(&z))
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
            parts.get_mut("manifest").data = manifest.into_bytes();
        }
        let m = parts.get_mut(old);
        m.name = new.to_string();
        m.data = z;
    }
    let repacked = w.path("zst.mender");
    std::fs::write(&repacked, parts.bytes()).unwrap();
    let out = read_file(&repacked, ReadOptions::default());
    let report = out.result.expect("zstd artifact reads");
    assert_eq!(to_text(&report), w.mender_read(&a, None));
    assert_eq!(out.delivered, std::fs::read(w.path("img.bin")).unwrap());
}
