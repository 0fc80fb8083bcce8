//! The artifact writer: what it writes reads back through the streaming reader with the same
//! fields, has the layout mender-artifact 3.9.0 writes, and — the check that matters — is
//! accepted by the real `mender-artifact read` / `validate` (with `-k` for signed ones).
//! The tests that run `mender-artifact` print a notice and pass when it is not on PATH.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::image;
use mender_artifact::render::{to_text, ArtifactReport};
use mender_artifact::writer::{
    write_artifact, ArtifactSpec, Level, PayloadFile, ScriptFile, SigningKey, Spool, WriteError,
    WriteOptions, WriteSummary, VERSION_BYTES,
};
use mender_artifact::{
    ArtifactError, ArtifactReader, Compression, FileInfo, ReadOptions, SignatureStatus, VerifyKey,
};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------- helpers

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn file(name: &str, data: &[u8]) -> PayloadFile {
    PayloadFile::new(name, data.len() as u64, std::io::Cursor::new(data.to_vec()))
        .with_mtime(1_795_851_000)
}

fn ec_key() -> SigningKey {
    SigningKey::EcdsaP256(p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("scalar"))
}

/// A throwaway RSA-3072 key generated in process (only used by these tests).
fn rsa_key() -> SigningKey {
    use rsa::Generate as _;
    let key = rsa::PrivateKey::generate();
    SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
}

fn opts(compression: Compression) -> WriteOptions {
    WriteOptions {
        compression,
        mtime: Some(1_795_851_000),
        ..WriteOptions::default()
    }
}

async fn write(
    spec: &ArtifactSpec,
    files: Vec<PayloadFile>,
    o: &WriteOptions,
) -> (Vec<u8>, WriteSummary) {
    let mut out = Vec::new();
    let summary = write_artifact(&mut out, spec, files, o)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(summary.size, out.len() as u64);
    (out, summary)
}

struct ReadBack {
    report: ArtifactReport,
    contents: Vec<Vec<u8>>,
}

async fn read_back(bytes: Vec<u8>, keys: Vec<VerifyKey>) -> Result<ReadBack, ArtifactError> {
    let o = ReadOptions {
        verify_keys: keys,
        ..Default::default()
    };
    let mut r = ArtifactReader::open(std::io::Cursor::new(bytes), o).await?;
    let mut files: Vec<FileInfo> = Vec::new();
    let mut contents = Vec::new();
    while let Some(f) = r.next_file().await? {
        let mut data = Vec::new();
        while let Some(c) = r.read_chunk().await? {
            data.extend_from_slice(&c);
        }
        files.push(f);
        contents.push(data);
    }
    let info = r.finish().await?;
    Ok(ReadBack {
        report: ArtifactReport { info, files },
        contents,
    })
}

/// One entry of a ustar archive, parsed by hand (independently of the crate's tar code).
#[derive(Debug)]
struct Entry {
    name: String,
    mode: u32,
    mtime: u64,
    typeflag: u8,
    magic: Vec<u8>,
    uname: String,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(&s, 8).unwrap_or_else(|_| panic!("octal field {field:?}"))
}

fn cstr(field: &[u8]) -> String {
    String::from_utf8_lossy(field.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
}

/// Parses a whole tar and checks it ends with exactly two zero blocks and nothing after.
fn untar(bytes: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let h = &bytes[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            assert_eq!(
                bytes.len(),
                pos + 1024,
                "two end blocks and no record padding"
            );
            assert!(bytes[pos..].iter().all(|b| *b == 0));
            return out;
        }
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        assert_eq!(octal(&h[148..156]), sum, "header checksum");
        let size = octal(&h[124..136]) as usize;
        let data = bytes[pos + 512..pos + 512 + size].to_vec();
        out.push(Entry {
            name: cstr(&h[..100]),
            mode: octal(&h[100..108]) as u32,
            mtime: octal(&h[136..148]),
            typeflag: h[156],
            magic: h[257..265].to_vec(),
            uname: cstr(&h[265..297]),
            data,
        });
        pos += 512 + size.div_ceil(512) * 512;
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

fn rootfs_spec() -> ArtifactSpec {
    ArtifactSpec::rootfs("release-1", ["qemux86-64"])
}

/// A module artifact using every header feature.
fn module_spec() -> ArtifactSpec {
    let mut s = ArtifactSpec::module("mod-1", ["dev1", "dev2"], "single-file");
    s.group = Some("grpA".into());
    s.depends_artifact_names = vec!["rel-0".into(), "rel-00".into()];
    s.depends_groups = vec!["grp0".into()];
    s.provides
        .insert("single-file.f1.version".into(), "1".into());
    s.depends.insert("some.dep".into(), vec!["val".into()]);
    s.depends
        .insert("other.dep".into(), vec!["a".into(), "b".into()]);
    s.clears_provides = vec!["single-file.f1.*".into()];
    let md = serde_json::json!({"a": 1, "b": "x", "c": ["y", 2]});
    s.meta_data = md.as_object().cloned();
    s.scripts = vec![
        ScriptFile::new("ArtifactInstall_Enter_01", "#!/bin/sh\necho enter\n"),
        ScriptFile::new("ArtifactCommit_Leave_50_cleanup", "#!/bin/sh\necho leave\n"),
    ];
    s
}

// ---------------------------------------------------------------- round trips

#[tokio::test]
async fn rootfs_gzip_ecdsa_reads_back_with_the_same_fields() {
    let img = image(300_000, 1);
    let key = ec_key();
    let o = WriteOptions {
        signing_key: Some(key.clone()),
        ..opts(Compression::Gzip)
    };
    let (bytes, summary) = write(&rootfs_spec(), vec![file("rootfs.ext4", &img)], &o).await;
    assert!(summary.spooled);
    let rb = read_back(bytes, vec![key.verify_key("test-ec")])
        .await
        .expect("reads back");
    let info = &rb.report.info;
    assert_eq!(info.format_version, 3);
    assert_eq!(info.compression, Compression::Gzip);
    assert_eq!(
        info.signature,
        SignatureStatus::Verified {
            key: "test-ec".into(),
            kind: "ECDSA P-256"
        }
    );
    let h = &info.header;
    assert_eq!(h, &summary.header);
    assert_eq!(h.name, "release-1");
    assert_eq!(h.depends.device_type, ["qemux86-64"]);
    assert_eq!(h.group, None);
    assert_eq!(h.payload.payload_type.as_deref(), Some("rootfs-image"));
    let provides = h.payload.provides.clone().expect("provides");
    assert_eq!(provides["rootfs-image.version"], "release-1");
    assert_eq!(provides["rootfs-image.checksum"], hex::encode(sha(&img)));
    assert_eq!(provides.len(), 2);
    assert_eq!(
        h.payload.clears_provides.as_deref(),
        Some(&["artifact_group", "rootfs_image_checksum", "rootfs-image.*"].map(String::from)[..])
    );
    assert_eq!(h.payload.meta_data, None);
    assert_eq!(rb.report.files.len(), 1);
    let f = &rb.report.files[0];
    assert_eq!(
        (f.name.as_str(), f.size, f.mode, f.mtime, f.sha256),
        (
            "rootfs.ext4",
            img.len() as u64,
            0o644,
            1_795_851_000,
            sha(&img)
        )
    );
    assert_eq!(rb.contents[0], img);
    assert_eq!(summary.files[0].sha256, sha(&img));
}

#[tokio::test]
async fn rsa_signed_reads_back_and_other_keys_are_refused() {
    let key = rsa_key();
    let img = image(10_000, 2);
    let o = WriteOptions {
        signing_key: Some(key.clone()),
        ..opts(Compression::Gzip)
    };
    let (bytes, summary) = write(&rootfs_spec(), vec![file("img", &img)], &o).await;
    let sig = &summary.members[2];
    assert_eq!(sig.name, "manifest.sig");
    assert_eq!(sig.size, 512, "RSA-3072: 384 bytes, 512 base64 chars");
    let rb = read_back(bytes.clone(), vec![key.verify_key("rsa")])
        .await
        .expect("verifies");
    assert!(matches!(
        rb.report.info.signature,
        SignatureStatus::Verified { kind: "RSA", .. }
    ));
    // Through PEM, as a device gets the key.
    let pem = key.public_key_pem().unwrap();
    let vk = VerifyKey::from_pem(&pem, "rsa.pub").unwrap();
    read_back(bytes.clone(), vec![vk]).await.expect("pem key");
    let e = read_back(bytes, vec![ec_key().verify_key("ec")])
        .await
        .err()
        .expect("wrong key refused");
    assert!(matches!(e, ArtifactError::Signature(_)), "{e}");
}

#[tokio::test]
async fn module_with_everything_reads_back_direct_and_spooled() {
    let f1 = image(70_000, 3);
    let f2: Vec<u8> = Vec::new();
    let spec = module_spec();
    for (compression, declare) in [
        (Compression::None, true),
        (Compression::None, false),
        (Compression::Gzip, true),
    ] {
        let mk = |name: &str, data: &[u8]| {
            let f = file(name, data).with_mode(0o600);
            if declare {
                f.with_sha256(sha(data))
            } else {
                f
            }
        };
        let files = vec![mk("f1", &f1), mk("empty", &f2)];
        let (bytes, summary) = write(&spec, files, &opts(compression)).await;
        assert_eq!(
            summary.spooled,
            !(declare && compression == Compression::None)
        );
        let rb = read_back(bytes, vec![]).await.expect("reads back");
        let h = &rb.report.info.header;
        assert_eq!(h, &summary.header);
        assert_eq!(rb.report.info.signature, SignatureStatus::Unsigned);
        assert_eq!(h.group.as_deref(), Some("grpA"));
        assert_eq!(h.depends.device_type, ["dev1", "dev2"]);
        assert_eq!(h.depends.artifact_name, ["rel-0", "rel-00"]);
        assert_eq!(h.depends.artifact_group, ["grp0"]);
        assert_eq!(h.payload.payload_type.as_deref(), Some("single-file"));
        let p = h.payload.provides.clone().unwrap();
        assert_eq!(
            p,
            BTreeMap::from([
                (
                    "rootfs-image.single-file.version".to_string(),
                    "mod-1".to_string()
                ),
                ("single-file.f1.version".to_string(), "1".to_string()),
            ])
        );
        assert_eq!(h.payload.depends["some.dep"], ["val"]);
        assert_eq!(h.payload.depends["other.dep"], ["a", "b"]);
        assert_eq!(
            h.payload.clears_provides.as_deref(),
            Some(&["single-file.f1.*", "rootfs-image.single-file.*"].map(String::from)[..])
        );
        assert_eq!(
            serde_json::Value::Object(h.payload.meta_data.clone().unwrap()),
            serde_json::json!({"a": 1, "b": "x", "c": ["y", 2]})
        );
        let scripts: Vec<(&str, u32)> = h
            .scripts
            .iter()
            .map(|s| (s.name.as_str(), s.mode))
            .collect();
        assert_eq!(
            scripts,
            [
                ("ArtifactInstall_Enter_01", 0o755),
                ("ArtifactCommit_Leave_50_cleanup", 0o755)
            ]
        );
        assert_eq!(&h.scripts[0].content[..], b"#!/bin/sh\necho enter\n");
        let got: Vec<(&str, u64, u32)> = rb
            .report
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.size, f.mode))
            .collect();
        assert_eq!(got, [("f1", 70_000, 0o600), ("empty", 0, 0o600)]);
        assert_eq!(rb.contents, [f1.clone(), f2.clone()]);
    }
}

#[tokio::test]
async fn bootstrap_reads_back_with_an_empty_data_tar() {
    let mut spec = ArtifactSpec::bootstrap("boot-1", ["qemux86-64"]);
    spec.provides
        .insert("rootfs-image.version".into(), "boot-1".into());
    let (bytes, summary) = write(&spec, vec![], &opts(Compression::Gzip)).await;
    let outer = untar(&bytes);
    assert_eq!(
        names(&outer),
        ["version", "manifest", "header.tar.gz", "data/0000.tar.gz"]
    );
    assert_eq!(gunzip(&outer[3].data), vec![0u8; 1024], "an empty tar");
    let manifest = String::from_utf8(outer[1].data.clone()).unwrap();
    assert_eq!(manifest.lines().count(), 2, "header and version only");
    let header = untar(&gunzip(&outer[2].data));
    assert_eq!(names(&header), ["header-info", "headers/0000/type-info"]);
    assert_eq!(
        String::from_utf8_lossy(&header[1].data),
        r#"{"type":null,"artifact_provides":{"rootfs-image.version":"boot-1"}}"#
    );
    let rb = read_back(bytes, vec![]).await.expect("reads back");
    assert!(rb.report.files.is_empty());
    let h = &rb.report.info.header;
    assert_eq!(h, &summary.header);
    assert_eq!(h.payload.payload_type, None);
    assert_eq!(h.payload.clears_provides, None);
    assert_eq!(h.payload.meta_data, None);
}

#[tokio::test]
async fn every_compression_and_spool_reads_back() {
    let img = image(200_000, 4);
    let dir = tempfile::tempdir().unwrap();
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
    ] {
        for spool in [Spool::Memory, Spool::Dir(dir.path().to_path_buf())] {
            let o = WriteOptions {
                spool: spool.clone(),
                level: Level::Fastest,
                ..opts(compression)
            };
            let (bytes, _) = write(&rootfs_spec(), vec![file("img", &img)], &o).await;
            let rb = read_back(bytes, vec![])
                .await
                .unwrap_or_else(|e| panic!("{compression:?} {spool:?}: {e}"));
            assert_eq!(rb.report.info.compression, compression);
            assert_eq!(rb.contents[0], img);
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "spool files are gone"
    );
}

// ---------------------------------------------------------------- layout

#[tokio::test]
async fn layout_is_what_mender_artifact_writes() {
    let img = image(5000, 5);
    let o = WriteOptions {
        signing_key: Some(ec_key()),
        ..opts(Compression::Gzip)
    };
    let (bytes, summary) = write(&rootfs_spec(), vec![file("img", &img)], &o).await;
    let outer = untar(&bytes);
    assert_eq!(
        names(&outer),
        [
            "version",
            "manifest",
            "manifest.sig",
            "header.tar.gz",
            "data/0000.tar.gz"
        ]
    );
    for (i, e) in outer.iter().enumerate() {
        assert_eq!(e.mode, 0o600, "{}", e.name);
        assert_eq!(e.typeflag, b'0');
        assert_eq!(e.magic, b"ustar\x0000", "Go's USTAR magic and version");
        assert_eq!(e.mtime, if i < 3 { 0 } else { 1_795_851_000 }, "{}", e.name);
        assert_eq!(e.uname, "");
        assert_eq!(summary.members[i].name, e.name);
        assert_eq!(summary.members[i].size, e.data.len() as u64);
    }
    assert_eq!(outer[0].data, VERSION_BYTES);
    assert_eq!(outer[0].data, br#"{"format":"mender","version":3}"#);
    let manifest = String::from_utf8(outer[1].data.clone()).unwrap();
    assert_eq!(
        manifest,
        format!(
            "{}  data/0000/img\n{}  header.tar.gz\n{}  version\n",
            hex::encode(sha(&img)),
            hex::encode(sha(&outer[3].data)),
            "96bcd965947569404798bcbdb614f103db5a004eb6e364cfc162c146890ea35b"
        )
    );
    assert_eq!(summary.manifest, outer[1].data);
    assert_eq!(outer[2].data.len(), 88, "ECDSA P-256 r||s in base64");
    let header = untar(&gunzip(&outer[3].data));
    assert_eq!(
        names(&header),
        [
            "header-info",
            "headers/0000/type-info",
            "headers/0000/meta-data"
        ]
    );
    assert!(header.iter().all(|e| e.mode == 0o600 && e.mtime == 0));
    assert!(header[2].data.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&header[0].data),
        r#"{"payloads":[{"type":"rootfs-image"}],"artifact_provides":{"artifact_name":"release-1"},"artifact_depends":{"device_type":["qemux86-64"]}}"#
    );
    assert_eq!(
        String::from_utf8_lossy(&header[1].data),
        format!(
            r#"{{"type":"rootfs-image","artifact_provides":{{"rootfs-image.checksum":"{}","rootfs-image.version":"release-1"}},"clears_artifact_provides":["artifact_group","rootfs_image_checksum","rootfs-image.*"]}}"#,
            hex::encode(sha(&img))
        )
    );
    let data = untar(&gunzip(&outer[4].data));
    assert_eq!(names(&data), ["img"]);
    assert_eq!((data[0].mode, data[0].mtime), (0o644, 1_795_851_000));
    assert_eq!(data[0].data, img);
    // Offsets point at the content.
    let m = &summary.members[4];
    assert_eq!(
        &bytes[m.offset as usize..(m.offset + m.size) as usize],
        &outer[4].data[..]
    );
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn wrong_declared_digest_fails_before_output_when_spooled() {
    let img = image(1000, 6);
    let f = file("img", &img).with_sha256([0u8; 32]);
    let mut out = Vec::new();
    let e = write_artifact(&mut out, &rootfs_spec(), vec![f], &opts(Compression::Gzip))
        .await
        .unwrap_err();
    assert!(matches!(e, WriteError::DigestMismatch { .. }), "{e}");
    assert!(out.is_empty(), "nothing written");

    // Direct streaming: detected at the end of the file, after the bytes went out.
    let f = file("img", &img).with_sha256([0u8; 32]);
    let e = write_artifact(&mut out, &rootfs_spec(), vec![f], &opts(Compression::None))
        .await
        .unwrap_err();
    assert!(matches!(e, WriteError::DigestMismatch { .. }), "{e}");
}

#[tokio::test]
async fn short_and_long_payload_readers_fail() {
    let data = image(1000, 7);
    for compression in [Compression::Gzip, Compression::None] {
        let short = PayloadFile::new("img", 1001, std::io::Cursor::new(data.clone()))
            .with_sha256(sha(&data));
        let e = write_artifact(
            &mut Vec::new(),
            &rootfs_spec(),
            vec![short],
            &opts(compression),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                WriteError::ShortPayload {
                    read: 1000,
                    size: 1001,
                    ..
                }
            ),
            "{e}"
        );
        let long = PayloadFile::new("img", 999, std::io::Cursor::new(data.clone()))
            .with_sha256(sha(&data[..999]));
        let e = write_artifact(
            &mut Vec::new(),
            &rootfs_spec(),
            vec![long],
            &opts(compression),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, WriteError::LongPayload { size: 999, .. }),
            "{e}"
        );
    }
}

#[tokio::test]
async fn invalid_descriptions_are_refused_before_any_io() {
    let one = || vec![file("img", b"x")];
    let cases: Vec<(ArtifactSpec, Vec<PayloadFile>)> = vec![
        (rootfs_spec(), vec![]),
        (rootfs_spec(), vec![file("a", b"1"), file("b", b"2")]),
        (ArtifactSpec::rootfs("", ["d"]), one()),
        (ArtifactSpec::rootfs("n", Vec::<String>::new()), one()),
        (ArtifactSpec::bootstrap("b", ["d"]), one()),
        (ArtifactSpec::module("m", ["d"], "a/b"), vec![]),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("a", b"1"), file("a", b"2")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("a/b", b"1")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("a\nb", b"1")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("..", b"1")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("dätä.bin", b"1")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("a b", b"1")],
        ),
        (
            ArtifactSpec::module("m", ["d"], "x"),
            vec![file("a+b", b"1")],
        ),
        (
            {
                let mut s = rootfs_spec();
                s.scripts
                    .push(ScriptFile::new("ArtifactInstall_Enter_1", "x"));
                s
            },
            one(),
        ),
        (
            {
                let mut s = rootfs_spec();
                s.provides.insert("artifact_name".into(), "x".into());
                s
            },
            one(),
        ),
        (
            {
                let mut s = rootfs_spec();
                s.meta_data = serde_json::json!({"a": {"b": 1}}).as_object().cloned();
                s
            },
            one(),
        ),
        (
            {
                let mut s = rootfs_spec();
                s.group = Some(String::new());
                s
            },
            one(),
        ),
    ];
    for (spec, files) in cases {
        let mut out = Vec::new();
        let e = write_artifact(&mut out, &spec, files, &opts(Compression::Gzip))
            .await
            .expect_err("refused");
        assert!(
            matches!(
                e,
                WriteError::InvalidSpec(_) | WriteError::InvalidFile { .. }
            ),
            "{e}"
        );
        assert!(out.is_empty());
    }
}

#[test]
fn signing_keys_load_from_the_usual_pem_forms() {
    use p256::pkcs8::EncodePrivateKey as _;
    let ec = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
    let sec1 = ec.to_sec1_pem(p256::pkcs8::LineEnding::LF).unwrap();
    // What `openssl ecparam -genkey` writes: parameters first, then the key.
    let with_params = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
        &*sec1
    );
    let pkcs8 = ec.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    for pem in [&*sec1, &with_params, &*pkcs8] {
        let k = SigningKey::from_pem(pem, "ec").expect("ec key");
        assert_eq!(k.kind(), "ECDSA P-256");
        assert_eq!(k.sign(b"m").unwrap().len(), 64, "raw r||s");
    }
    let rsa = match rsa_key() {
        SigningKey::Rsa(k) => k,
        _ => unreachable!(),
    };
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::signature::Keypair as _;
    let _ = rsa.verifying_key();
    let inner: &rsa::PrivateKey = rsa.as_ref().as_ref();
    let pkcs1 = inner.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let pkcs8 =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(inner, rsa::pkcs8::LineEnding::LF).unwrap();
    for pem in [&*pkcs1, &*pkcs8] {
        let k = SigningKey::from_pem(pem, "rsa").expect("rsa key");
        assert_eq!(k.kind(), "RSA");
        assert_eq!(k.sign(b"m").unwrap().len(), 384);
    }
    let public = SigningKey::EcdsaP256(ec.into()).public_key_pem().unwrap();
    let e = SigningKey::from_pem(&public, "pub").unwrap_err();
    assert!(matches!(e, WriteError::Key { .. }), "{e}");
    let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let e = SigningKey::from_pem(enc, "enc").unwrap_err().to_string();
    assert!(e.contains("encrypted"), "{e}");
}

// ---------------------------------------------------------------- mender-artifact

fn have_mender_artifact() -> bool {
    let found = Command::new("mender-artifact")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("NOTICE: mender-artifact is not on PATH; skipping the compatibility check");
    }
    found
}

/// Runs `mender-artifact <args>`; returns (success, stdout, stderr).
fn mender_artifact(args: &[&str], file: &Path) -> (bool, String, String) {
    let out = Command::new("mender-artifact")
        .args(args)
        .arg(file)
        .output()
        .expect("run mender-artifact");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mender-artifact read` and `validate` accept the artifact (with `-k pub` when given), and
/// `read` prints exactly what our reader renders for it.
async fn assert_accepted(dir: &Path, name: &str, bytes: &[u8], key: Option<&SigningKey>) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut args = vec![];
    let pub_path = dir.join(format!("{name}.pub"));
    let mut keys = vec![];
    if let Some(k) = key {
        std::fs::write(&pub_path, k.public_key_pem().unwrap()).unwrap();
        args = vec!["-k", pub_path.to_str().unwrap()];
        keys.push(k.verify_key(pub_path.to_str().unwrap()));
    }
    let read_args: Vec<&str> = ["read"]
        .iter()
        .copied()
        .chain(args.iter().copied())
        .collect();
    let (ok, stdout, stderr) = mender_artifact(&read_args, &path);
    assert!(
        ok,
        "mender-artifact read {name} failed:\n{stdout}\n{stderr}"
    );
    let validate_args: Vec<&str> = ["validate"]
        .iter()
        .copied()
        .chain(args.iter().copied())
        .collect();
    let (ok, vout, verr) = mender_artifact(&validate_args, &path);
    assert!(
        ok,
        "mender-artifact validate {name} failed:\n{vout}\n{verr}"
    );
    if key.is_some() {
        assert!(
            stdout.contains("Signature: signed and verified correctly"),
            "{stdout}"
        );
    }
    let rb = read_back(bytes.to_vec(), keys).await.expect("our reader");
    assert_eq!(
        to_text(&rb.report),
        stdout,
        "{name}: our rendering vs mender-artifact read"
    );
}

#[tokio::test]
async fn mender_artifact_accepts_what_the_writer_writes() {
    if !have_mender_artifact() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(100_000, 8);
    let rsa = rsa_key();
    let ec = ec_key();
    let signed = |k: &SigningKey, c| WriteOptions {
        signing_key: Some(k.clone()),
        ..opts(c)
    };
    let cases: Vec<(&str, ArtifactSpec, bool, WriteOptions, Option<&SigningKey>)> = vec![
        (
            "rootfs-gzip.mender",
            rootfs_spec(),
            true,
            opts(Compression::Gzip),
            None,
        ),
        (
            "rootfs-rsa.mender",
            rootfs_spec(),
            true,
            signed(&rsa, Compression::Gzip),
            Some(&rsa),
        ),
        (
            "rootfs-ec.mender",
            rootfs_spec(),
            true,
            signed(&ec, Compression::Gzip),
            Some(&ec),
        ),
        (
            "rootfs-none.mender",
            rootfs_spec(),
            true,
            opts(Compression::None),
            None,
        ),
        (
            "rootfs-xz.mender",
            rootfs_spec(),
            true,
            signed(&ec, Compression::Xz),
            Some(&ec),
        ),
        (
            "module-ec.mender",
            module_spec(),
            true,
            signed(&ec, Compression::Gzip),
            Some(&ec),
        ),
        (
            "module-none.mender",
            module_spec(),
            true,
            opts(Compression::None),
            None,
        ),
        (
            "bootstrap.mender",
            {
                let mut s = ArtifactSpec::bootstrap("boot-1", ["qemux86-64"]);
                s.provides
                    .insert("rootfs-image.version".into(), "boot-1".into());
                s
            },
            false,
            signed(&rsa, Compression::Gzip),
            Some(&rsa),
        ),
        (
            "rootfs-software.mender",
            {
                let mut s = rootfs_spec();
                s.software.name = Some("foo".into());
                s.software.version = Some("9".into());
                s.group = Some("grpA".into());
                s
            },
            true,
            opts(Compression::Gzip),
            None,
        ),
    ];
    let mut none_module = Vec::new();
    for (name, spec, with_files, o, key) in cases {
        let files = match (&spec.payload, with_files) {
            (_, false) => vec![],
            (mender_artifact::writer::PayloadKind::Module { .. }, _) => vec![
                file("f1", &img[..50_000]).with_sha256(sha(&img[..50_000])),
                file("f2", &img[50_000..]).with_sha256(sha(&img[50_000..])),
            ],
            _ => vec![file("rootfs.ext4", &img)],
        };
        let (bytes, _) = write(&spec, files, &o).await;
        assert_accepted(dir.path(), name, &bytes, key).await;
        if name == "module-none.mender" {
            none_module = bytes;
        }
    }

    // Negative controls: the acceptance above means something only if mender-artifact
    // refuses a wrong key and a corrupted payload.
    let (bytes, _) = write(
        &rootfs_spec(),
        vec![file("rootfs.ext4", &img)],
        &signed(&ec, Compression::Gzip),
    )
    .await;
    let path = dir.path().join("wrong-key.mender");
    std::fs::write(&path, &bytes).unwrap();
    let other = dir.path().join("other.pub");
    let other_key = SigningKey::EcdsaP256(p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap());
    std::fs::write(&other, other_key.public_key_pem().unwrap()).unwrap();
    // `read` reports a failed verification but exits 0; `validate` fails.
    let (_, stdout, _) = mender_artifact(&["read", "-k", other.to_str().unwrap()], &path);
    assert!(
        stdout.contains("Signature: signed; verification using provided key failed"),
        "{stdout}"
    );
    let (ok, _, _) = mender_artifact(&["validate", "-k", other.to_str().unwrap()], &path);
    assert!(
        !ok,
        "mender-artifact validate accepted a signature by another key"
    );

    let mut corrupt = none_module.clone();
    let data = untar(&corrupt).pop().unwrap();
    let at = corrupt.len() - 1024 - data.data.len().div_ceil(512) * 512 + 512 + 1000;
    corrupt[at] ^= 0x01;
    let path = dir.path().join("corrupt.mender");
    std::fs::write(&path, &corrupt).unwrap();
    let (ok, _, stderr) = mender_artifact(&["read"], &path);
    assert!(!ok, "mender-artifact accepted a corrupted payload");
    assert!(stderr.to_lowercase().contains("checksum"), "{stderr}");
}

#[tokio::test]
async fn same_layout_as_mender_artifact_for_the_same_input() {
    if !have_mender_artifact() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(20_000, 9);
    let img_path = dir.path().join("img");
    std::fs::write(&img_path, &img).unwrap();
    let theirs_path = dir.path().join("theirs.mender");
    let out = Command::new("mender-artifact")
        .args([
            "write",
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-1",
            "-f",
        ])
        .arg(&img_path)
        .arg("-o")
        .arg(&theirs_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read(&theirs_path).unwrap();
    let f = PayloadFile::from_path(&img_path).await.unwrap();
    let (ours, _) = write(&rootfs_spec(), vec![f], &WriteOptions::default()).await;

    let (t, o) = (untar(&theirs), untar(&ours));
    assert_eq!(names(&t), names(&o));
    for (a, b) in t.iter().zip(&o) {
        assert_eq!(
            (a.mode, a.typeflag, &a.magic),
            (b.mode, b.typeflag, &b.magic),
            "{}",
            a.name
        );
    }
    assert_eq!(t[0].data, o[0].data, "version");
    let (tm, om) = (
        String::from_utf8(t[1].data.clone()).unwrap(),
        String::from_utf8(o[1].data.clone()).unwrap(),
    );
    let (tl, ol): (Vec<&str>, Vec<&str>) = (tm.lines().collect(), om.lines().collect());
    assert_eq!(tl.len(), ol.len());
    assert_eq!(tl[0], ol[0], "data file line");
    assert_eq!(tl[2], ol[2], "version line");
    assert!(ol[1].ends_with("  header.tar.gz"));

    let (th, oh) = (untar(&gunzip(&t[2].data)), untar(&gunzip(&o[2].data)));
    assert_eq!(names(&th), names(&oh));
    for (a, b) in th.iter().zip(&oh) {
        assert_eq!((a.mode, a.mtime), (b.mode, b.mtime), "{}", a.name);
    }
    assert_eq!(th[0].data, oh[0].data, "header-info identical");
    // type-info differs only in "type": 3.9.0 writes "" (fixed in mender-artifact 4.4).
    assert_eq!(
        String::from_utf8_lossy(&th[1].data).replace(r#""type":"""#, r#""type":"rootfs-image""#),
        String::from_utf8_lossy(&oh[1].data)
    );
    assert_eq!(th[2].data, oh[2].data, "meta-data (empty)");
    let (td, od) = (untar(&gunzip(&t[3].data)), untar(&gunzip(&o[3].data)));
    assert_eq!(names(&td), names(&od));
    assert_eq!((td[0].mode, td[0].mtime), (od[0].mode, od[0].mtime));
    assert!(td[0].data == od[0].data, "same payload bytes");
}

#[tokio::test]
async fn long_names_go_through_pax_headers() {
    let long = format!("{}.bin", "n".repeat(150));
    let a = image(3000, 10);
    let b = image(700, 11);
    let spec = ArtifactSpec::module("pax-1", ["dev1"], "single-file");
    let files = vec![file(&long, &a), file("A,b_c-d.e", &b)];
    let (bytes, _) = write(&spec, files, &opts(Compression::Gzip)).await;
    let rb = read_back(bytes.clone(), vec![]).await.expect("reads back");
    let got: Vec<&str> = rb.report.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(got, [long.as_str(), "A,b_c-d.e"]);
    assert_eq!(rb.contents, [a.clone(), b.clone()]);
    if have_mender_artifact() {
        let dir = tempfile::tempdir().unwrap();
        assert_accepted(dir.path(), "pax.mender", &bytes, None).await;
    }
}
