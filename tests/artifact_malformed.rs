//! Malformed artifacts, each refused with an error that names what was wrong, and without
//! the reader ever releasing a complete payload that failed verification.
//! Base artifacts come from the real `mender-artifact`; the damage is done with the tests'
//! own tar writer (`common::tarw`), which can write what a correct tar library refuses.

mod common;

use common::tarw::{self, TarEntry};
use common::{keys_opts, read, Parts, Workdir};
use mender_artifact::{ArtifactError, Limits, ReadOptions};

/// A 300 KiB image: larger than two reader chunks, so partial delivery is visible.
const IMG_LEN: usize = 300 * 1024;

fn setup(compression: &str) -> (Workdir, Vec<u8>) {
    let w = Workdir::new();
    let bytes = base_artifact(&w, &["--compression", compression]);
    (w, bytes)
}

/// A `rootfs-image` artifact of the 300 KiB image, written by `mender-artifact` with
/// `extra` options.
fn base_artifact(w: &Workdir, extra: &[&str]) -> Vec<u8> {
    let img: Vec<u8> = (0..IMG_LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(w.path("big.bin"), &img).unwrap();
    let mut args = vec![
        "rootfs-image",
        "-t",
        "qemux86-64",
        "-n",
        "release-1",
        "-f",
        "big.bin",
    ];
    args.extend_from_slice(extra);
    std::fs::read(w.write("a.mender", &args)).unwrap()
}

/// Asserts the read failed with an error whose text contains every one of `needles`, and
/// that the complete payload was never released.
#[track_caller]
fn refused(bytes: Vec<u8>, opts: ReadOptions, needles: &[&str]) -> ArtifactError {
    let out = read(bytes, opts);
    let err = match out.result {
        Ok(_) => panic!("accepted; expected an error containing {needles:?}"),
        Err(e) => e,
    };
    let text = err.to_string();
    for n in needles {
        assert!(text.contains(n), "error {text:?} does not mention {n:?}");
    }
    assert!(
        out.delivered.len() < IMG_LEN,
        "the complete payload was released before the error ({text})"
    );
    err
}

#[test]
fn the_unmodified_artifacts_read() {
    for c in ["gzip", "none"] {
        let (_w, bytes) = setup(c);
        let out = read(bytes, ReadOptions::default());
        out.result.expect("reads");
        assert_eq!(out.delivered.len(), IMG_LEN);
    }
}

#[test]
fn truncated_at_every_member_boundary_and_inside_members() {
    for c in ["gzip", "none"] {
        let (_w, bytes) = setup(c);
        let (_, spans) = tarw::read(&bytes);
        let end = {
            let (_, d, s) = spans[spans.len() - 1];
            d + s.div_ceil(512) * 512
        };
        let mut cuts = vec![0, 100, end, end + 512];
        for (h, d, s) in &spans {
            cuts.extend([*h, *h + 200, *d, *d + s / 2, *d + s]);
        }
        for cut in cuts {
            let out = read(bytes[..cut].to_vec(), ReadOptions::default());
            assert!(out.result.is_err(), "{c}: truncation at {cut} was accepted");
            assert!(
                out.delivered.len() < IMG_LEN,
                "{c}: cut at {cut} released the whole payload"
            );
        }
    }
}

#[test]
fn flipped_payload_byte_is_caught_and_the_tail_withheld() {
    let (_w, bytes) = setup("none");
    let mut parts = Parts::of(&bytes);
    let data = &mut parts.get_mut("data/0000.tar").data;
    data[512 + IMG_LEN - 10] ^= 0x01; // inside the image, past the inner tar header
    let out = read(parts.bytes(), ReadOptions::default());
    let err = out.result.expect_err("accepted a corrupted payload");
    assert!(
        matches!(err, ArtifactError::Checksum { ref name, .. } if name == "data/0000/big.bin"),
        "{err}"
    );
    assert!(
        !out.delivered.is_empty(),
        "chunks before the tail are streamed"
    );
    assert!(out.delivered.len() < IMG_LEN, "the tail was withheld");

    // In a compressed artifact a flipped byte is caught by the decoder or the hash.
    let (_w, bytes) = setup("gzip");
    let mut parts = Parts::of(&bytes);
    let data = &mut parts.get_mut("data/0000.tar.gz").data;
    let mid = data.len() / 2;
    data[mid] ^= 0x40;
    refused(parts.bytes(), ReadOptions::default(), &["data/0000"]);
}

#[test]
fn flipped_header_byte_fails_the_manifest_check_before_any_payload() {
    let (_w, bytes) = setup("gzip");
    let mut parts = Parts::of(&bytes);
    let h = &mut parts.get_mut("header.tar.gz").data;
    let mid = h.len() / 2;
    h[mid] ^= 0x01;
    let e = refused(
        parts.bytes(),
        ReadOptions::default(),
        &["header.tar.gz", "checksum mismatch"],
    );
    assert!(matches!(e, ArtifactError::Checksum { .. }));
}

#[test]
fn signature_problems() {
    let w = Workdir::new();
    w.keys();
    let img: Vec<u8> = vec![0x5a; IMG_LEN];
    std::fs::write(w.path("big.bin"), &img).unwrap();
    let signed = std::fs::read(w.write(
        "s.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-1",
            "-f",
            "big.bin",
            "-k",
            "rsa.key",
        ],
    ))
    .unwrap();
    let unsigned = std::fs::read(w.write(
        "u.mender",
        &[
            "rootfs-image",
            "-t",
            "qemux86-64",
            "-n",
            "release-1",
            "-f",
            "big.bin",
        ],
    ))
    .unwrap();

    // Bad signature: one base64 character changed.
    let mut parts = Parts::of(&signed);
    let sig = &mut parts.get_mut("manifest.sig").data;
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    refused(
        parts.bytes(),
        keys_opts(vec![w.key("rsa.pub")]),
        &["does not verify", "rsa.pub"],
    );

    // Wrong key.
    refused(
        signed.clone(),
        keys_opts(vec![w.key("ec.pub")]),
        &["does not verify", "ECDSA P-256"],
    );

    // Unsigned while a key is configured.
    refused(
        unsigned,
        keys_opts(vec![w.key("rsa.pub")]),
        &["expecting signed artifact"],
    );

    // A manifest changed after signing (a payload hash swapped) is caught by the signature.
    let mut parts = Parts::of(&signed);
    let m = &mut parts.get_mut("manifest").data;
    m[0] = if m[0] == b'a' { b'b' } else { b'a' };
    refused(
        parts.bytes(),
        keys_opts(vec![w.key("rsa.pub")]),
        &["signature"],
    );

    // Not base64 at all.
    let mut parts = Parts::of(&signed);
    parts.get_mut("manifest.sig").data = b"%%%".to_vec();
    refused(
        parts.bytes(),
        keys_opts(vec![w.key("rsa.pub")]),
        &["base64"],
    );
}

#[test]
fn members_out_of_order_unknown_or_duplicated() {
    let (_w, bytes) = setup("gzip");
    let base = Parts::of(&bytes);
    let with = |f: &dyn Fn(&mut Vec<TarEntry>)| {
        let mut m = base.members.clone();
        f(&mut m);
        tarw::write(&m)
    };
    // manifest before version
    refused(
        with(&|m| m.swap(0, 1)),
        ReadOptions::default(),
        &["'manifest'", "'version' was expected"],
    );
    // header before manifest
    refused(
        with(&|m| m.swap(1, 2)),
        ReadOptions::default(),
        &["header.tar.gz"],
    );
    // data before header
    refused(
        with(&|m| m.swap(2, 3)),
        ReadOptions::default(),
        &["data/0000.tar.gz"],
    );
    // unknown member
    refused(
        with(&|m| m.insert(2, TarEntry::file("extra.txt", "x"))),
        ReadOptions::default(),
        &["extra.txt", "not a member"],
    );
    // unsupported payload index
    refused(
        with(&|m| m[3].name = "data/0001.tar.gz".into()),
        ReadOptions::default(),
        &["data/0001.tar.gz", "only payload 0000"],
    );
    // duplicates: version, header, data
    refused(
        with(&|m| {
            let v = m[0].clone();
            m.insert(1, v)
        }),
        ReadOptions::default(),
        &["'version'"],
    );
    refused(
        with(&|m| {
            let h = m[2].clone();
            m.insert(3, h)
        }),
        ReadOptions::default(),
        &["header.tar.gz", "repeated"],
    );
    refused(
        with(&|m| {
            let d = m[3].clone();
            m.push(d)
        }),
        ReadOptions::default(),
        &["data/0000.tar.gz", "last member"],
    );
    // a member after the data
    refused(
        with(&|m| m.push(TarEntry::file("manifest.sig", "x"))),
        ReadOptions::default(),
        &["manifest.sig", "after the data member"],
    );
    // garbage after the end of the outer tar
    let mut b = bytes.clone();
    b.extend_from_slice(b"trailing garbage");
    refused(b, ReadOptions::default(), &["after the end-of-archive"]);
}

#[test]
fn traversal_absolute_names_links_and_devices() {
    let (_w, bytes) = setup("none");
    let base = Parts::of(&bytes);
    let outer = |f: &dyn Fn(&mut Vec<TarEntry>)| {
        let mut m = base.members.clone();
        f(&mut m);
        tarw::write(&m)
    };
    refused(
        outer(&|m| m[0].name = "../version".into()),
        ReadOptions::default(),
        &["unsafe path", "../version"],
    );
    refused(
        outer(&|m| m[0].name = "/version".into()),
        ReadOptions::default(),
        &["unsafe path", "/version"],
    );
    refused(
        outer(&|m| m.insert(2, TarEntry::file("manifest.sig", "").with_type(b'2'))),
        ReadOptions::default(),
        &["manifest.sig", "symbolic link"],
    );
    refused(
        outer(&|m| m[0].typeflag = b'3'),
        ReadOptions::default(),
        &["version", "character device"],
    );

    // Inside the data tar.
    let data_with = |f: &dyn Fn(&mut Vec<TarEntry>)| {
        let mut parts = Parts::of(&bytes);
        let (mut inner, _) = tarw::read(&parts.get("data/0000.tar").data);
        f(&mut inner);
        parts.get_mut("data/0000.tar").data = tarw::write(&inner);
        parts.bytes()
    };
    refused(
        data_with(&|i| i[0].name = "../big.bin".into()),
        ReadOptions::default(),
        &["unsafe path", "../big.bin"],
    );
    refused(
        data_with(&|i| i[0].name = "/etc/shadow".into()),
        ReadOptions::default(),
        &["unsafe path", "/etc/shadow"],
    );
    refused(
        data_with(&|i| {
            i[0].typeflag = b'2';
            i[0].link = "/etc/shadow".into();
            i[0].data.clear()
        }),
        ReadOptions::default(),
        &["big.bin", "symbolic link"],
    );
    refused(
        data_with(&|i| {
            i[0].typeflag = b'1';
            i[0].data.clear()
        }),
        ReadOptions::default(),
        &["hard link"],
    );
    refused(
        data_with(&|i| i.push(TarEntry::file("extra.bin", "x"))),
        ReadOptions::default(),
        &["extra.bin", "not listed in 'manifest'"],
    );

    // Inside the header tar.
    let (_w, gz) = setup("gzip");
    let mut parts = Parts::of(&gz);
    let mut h = parts.header_entries();
    h.push(TarEntry::file("scripts/../../evil", "#!/bin/sh\n"));
    parts.set_header_gz(&h);
    refused(
        parts.bytes(),
        ReadOptions::default(),
        &["unsafe path", "scripts/../../evil"],
    );
}

#[test]
fn oversized_header_json_and_decompression_bombs() {
    let (_w, bytes) = setup("gzip");
    // header-info of 2 MiB.
    let mut parts = Parts::of(&bytes);
    let mut h = parts.header_entries();
    let big = format!(
        r#"{{"payloads":[{{"type":"rootfs-image"}}],"pad":"{}"}}"#,
        "A".repeat(2 << 20)
    );
    h[0].data = big.into_bytes();
    parts.set_header_gz(&h);
    refused(
        parts.bytes(),
        ReadOptions::default(),
        &[
            "header.tar.gz/header-info",
            "larger than the limit of 1048576",
        ],
    );

    // A header whose files stay under the per-file limit but add up past the total.
    let mut parts = Parts::of(&bytes);
    let mut h = parts.header_entries();
    for i in 0..20 {
        h.insert(
            1,
            TarEntry::file(
                &format!("scripts/ArtifactInstall_Enter_{i:02}"),
                vec![0u8; 1000 * 1024],
            ),
        );
    }
    parts.set_header_gz(&h);
    assert!(
        parts.get("header.tar.gz").data.len() < 100 * 1024,
        "the bomb is small on the wire"
    );
    let e = refused(
        parts.bytes(),
        ReadOptions::default(),
        &["header.tar.gz (decompressed)", "larger than the limit"],
    );
    assert!(matches!(e, ArtifactError::TooLarge { .. }), "{e:?}");

    // A data file far larger than the configured payload limit: refused from its tar header,
    // before a single byte is released.
    let mut parts = Parts::of(&bytes);
    let inner = tarw::write(&[TarEntry::file("big.bin", vec![0u8; 64 << 20])]);
    parts.get_mut("data/0000.tar.gz").data = common::gzip(&inner);
    let opts = ReadOptions {
        limits: Limits {
            payload_file: Some(1 << 20),
            ..Limits::default()
        },
        ..Default::default()
    };
    let out = read(parts.bytes(), opts);
    let e = out.result.expect_err("bomb accepted").to_string();
    assert!(
        e.contains("big.bin") && e.contains("larger than the limit of 1048576"),
        "{e}"
    );
    assert!(out.delivered.is_empty());
}

#[test]
fn huge_extension_headers_are_refused_without_buffering_them() {
    // tokio-tar reads extension entries whole into memory; a PAX header of 100 MiB inside the
    // data tar compresses to ~100 KiB. The reader's guard must stop it at its tar header.
    let (_w, bytes) = setup("gzip");
    let mut parts = Parts::of(&bytes);
    let bomb = TarEntry::file("PaxHeaders/big.bin", vec![b'a'; 100 << 20]).with_type(b'x');
    let inner = tarw::write(&[bomb, TarEntry::file("big.bin", vec![0u8; 16])]);
    parts.get_mut("data/0000.tar.gz").data = common::gzip(&inner);
    assert!(parts.get("data/0000.tar.gz").data.len() < 1 << 20);
    let e = refused(
        parts.bytes(),
        ReadOptions::default(),
        &[
            "PAX extension header of 104857600 bytes in data/0000.tar.gz",
            "65536",
        ],
    );
    assert!(
        matches!(e, ArtifactError::TooLarge { limit: 65536, .. }),
        "{e:?}"
    );

    // The same in the outer tar.
    let mut m = Parts::of(&bytes).members;
    m.insert(
        1,
        TarEntry::file("PaxHeaders/manifest", vec![b'a'; 1 << 20]).with_type(b'x'),
    );
    refused(
        tarw::write(&m),
        ReadOptions::default(),
        &["PAX extension header of 1048576 bytes in artifact"],
    );
}

#[test]
fn pax_size_desync_is_refused() {
    // TARmageddon: a PAX header claims one size, the ustar header another. A reader that
    // believed the wrong one would see different members than mender-artifact does.
    let (_w, bytes) = setup("none");
    let base = Parts::of(&bytes);
    let mut m = base.members.clone();
    let data_len = m[3].data.len();
    m.insert(3, TarEntry::pax(&[("size", "0")]));
    let _ = data_len;
    refused(
        tarw::write(&m),
        ReadOptions::default(),
        &["desync", "data/0000.tar"],
    );

    // The same inside the data tar.
    let mut parts = Parts::of(&bytes);
    let (mut inner, _) = tarw::read(&parts.get("data/0000.tar").data);
    inner.insert(0, TarEntry::pax(&[("size", "512")]));
    parts.get_mut("data/0000.tar").data = tarw::write(&inner);
    refused(
        parts.bytes(),
        ReadOptions::default(),
        &["desync", "big.bin"],
    );
}

#[test]
fn decoder_memory_is_named() {
    let (_w, bytes) = setup("lzma");
    let opts = ReadOptions {
        limits: Limits {
            decoder_memory: 4 << 20,
            ..Limits::default()
        },
        ..Default::default()
    };
    refused(
        bytes.clone(),
        opts,
        &["header.tar.xz", "decoder memory", "decoder_memory"],
    );
    read(bytes, ReadOptions::default())
        .result
        .expect("the default limit fits mender-artifact's 64 MiB dictionary");
}

#[test]
fn zstd_window_is_capped_by_the_decoder_memory_limit() {
    // A zstd frame may ask for a window of up to 2 GiB; the decoder refuses one larger than
    // decoder_memory instead of allocating it.
    let (_w, bytes) = setup("none");
    let mut parts = Parts::of(&bytes);
    let raw = parts.get("data/0000.tar").data.clone();
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
        .unwrap();
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    let z = enc.finish().unwrap();
    let m = parts.get_mut("data/0000.tar");
    m.name = "data/0000.tar.zst".into();
    m.data = z;
    let small = ReadOptions {
        limits: Limits {
            decoder_memory: 16 << 20,
            ..Limits::default()
        },
        ..Default::default()
    };
    refused(
        parts.bytes(),
        small,
        &["data/0000.tar.zst", "decoder memory"],
    );
    let out = read(parts.bytes(), ReadOptions::default());
    out.result.expect("a 128 MiB window fits the default limit");
    assert_eq!(out.delivered.len(), IMG_LEN);
}

/// A signed artifact and what an attacker can do with it: the signature stays valid for the
/// manifest present, while unsigned `manifest-augment` lines try to vouch for members the
/// signed manifest does not list.
fn signed_with_keys() -> (Workdir, Vec<u8>) {
    let w = Workdir::new();
    w.keys();
    let bytes = base_artifact(&w, &["-k", "rsa.key"]);
    (w, bytes)
}

/// Opens `bytes` and returns the error of `ArtifactReader::open` itself: the refusal must
/// come when the offending member is read, before any payload (not at the end).
fn open_error(bytes: Vec<u8>, opts: ReadOptions) -> ArtifactError {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        match mender_artifact::ArtifactReader::open(std::io::Cursor::new(bytes), opts)
            .await
        {
            Ok(r) => panic!(
                "open accepted the artifact (header {:?}); the refusal must come before any payload",
                r.info().header.name
            ),
            Err(e) => e,
        }
    })
}

/// Inserts an unsigned `manifest-augment` vouching for `name` (content `data`) just
/// before the header, where the format puts it; returns the header's new position.
fn insert_augment(parts: &mut Parts, name: &str, data: &[u8]) -> usize {
    let i = parts
        .members
        .iter()
        .position(|m| m.name == "header.tar.gz")
        .unwrap();
    let line = format!("{}  {name}\n", common::sha256_hex(data));
    parts
        .members
        .insert(i, TarEntry::file("manifest-augment", line));
    i + 1
}

/// Asserts `ArtifactReader::open` refuses `parts` naming every one of `needles`.
#[track_caller]
fn open_refused(parts: &Parts, w: &Workdir, needles: &[&str]) {
    let e = open_error(parts.bytes(), keys_opts(vec![w.key("rsa.pub")]));
    let text = e.to_string();
    for n in needles {
        assert!(text.contains(n), "{text:?} does not mention {n:?}");
    }
}

#[test]
fn manifest_augment_cannot_vouch_for_a_header() {
    let (w, bytes) = signed_with_keys();
    let mut parts = Parts::of(&bytes);
    // The attacker's header: the legit one with a state script added, stored as an
    // uncompressed `header.tar` that only manifest-augment lists.
    let mut entries = parts.header_entries();
    let mut script = TarEntry::file(
        "scripts/ArtifactFailure_Enter_01",
        "#!/bin/sh\ntouch /tmp/pwned\n",
    );
    script.mode = 0o755;
    entries.push(script);
    let evil = tarw::write(&entries);
    let i = insert_augment(&mut parts, "header.tar", &evil);
    parts.members[i] = TarEntry::file("header.tar", evil);
    open_refused(&parts, &w, &["header.tar", "manifest-augment"]);
}

#[test]
fn manifest_augment_cannot_vouch_for_a_data_file() {
    let (w, bytes) = signed_with_keys();
    let mut parts = Parts::of(&bytes);
    let evil_img = vec![0xee; 4096];
    let data = tarw::write(&[TarEntry::file("evil.bin", evil_img.clone())]);
    parts.get_mut("data/0000.tar.gz").data = common::gzip(&data);
    insert_augment(&mut parts, "data/0000/evil.bin", &evil_img);
    open_refused(&parts, &w, &["data/0000/evil.bin", "manifest-augment"]);
}

#[test]
fn manifest_augment_cannot_vouch_for_version() {
    let (w, bytes) = signed_with_keys();
    let mut parts = Parts::of(&bytes);
    let v = parts.get("version").data.clone();
    insert_augment(&mut parts, "version", &v);
    open_refused(&parts, &w, &["version", "manifest-augment"]);
}
