//! The attack suite, raw A/B backend (issue 10): each attack is a crafted artifact served by
//! the simulator in place of a legitimate signed one (`PUT /api/sim/artifacts/{id}/content`:
//! tampered object storage, CDN or middlebox), deployed to the real daemon binary with
//! `ArtifactVerifyKey` set, then given to `mender-bridge install`, then followed by a
//! legitimate signed deployment that must succeed. Each is judged by its effects (see
//! `tests/common/attack.rs`): one `failure` naming the cause, no attacker script ran, no
//! attacker file left in the data dir, boot state and running slot unchanged, no success.
//!
//! Scripts: an attacker who writes the header ships scripts for every artifact state that
//! append to a canary. Where the header must stay the vendor's (signed) one, the vendor's
//! artifact carries those scripts: a deployment that fails verification must run no script
//! of that artifact either (DESIGN.md "Trust model").
//!
//! Each crafted artifact is checked to exercise its attack (the signature valid for the
//! manifest present, the attacker's header parsing, the byte really changed, the cut inside
//! the member, the bomb large) before it is served.
#![cfg(feature = "sim")]

mod common;

use common::attack::{
    attack_raw, cut_inside, data_entries, file_header, gzip_declared_len, gzip_with_zeros, index,
    insert_after, insert_before, must_read, set_data, with_after_header_info, with_plain_header,
    Kit, ATTACK_NAME, DEVICE_TYPE,
};
use common::tarw::{self, TarEntry};
use common::{gzip, run, sha256_hex, Parts};

/// The vendor's signed `attack-1` with the canary scripts: the base of every attack that
/// keeps the vendor's header. Checked to verify with the trusted key.
async fn signed_with_scripts(kit: &Kit) -> Vec<u8> {
    let a = kit.rootfs(ATTACK_NAME, true, Some(&kit.trusted), 1).await;
    let info = must_read(&a, kit.verify_keys(), "the signed base").await;
    assert_eq!(
        info.header.scripts.len(),
        18,
        "a script per state and action"
    );
    a
}

/// The signed manifest and its signature are those of `base`: the signature is valid for
/// the manifest present.
fn keeps_signature(crafted: &Parts, base: &[u8]) {
    let base = Parts::of(base);
    for m in ["version", "manifest", "manifest.sig"] {
        assert_eq!(crafted.get(m).data, base.get(m).data, "{m} kept");
    }
}

// ----- manifest-augment -----

/// The signed manifest lists `header.tar.gz`; the artifact carries the attacker's
/// `header.tar` (the vendor's header plus scripts), listed only in `manifest-augment`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn augment_covered_header() {
    let kit = Kit::new();
    let cover = kit.cover().await;
    must_read(&cover, kit.verify_keys(), "the cover").await;
    let mut p = Parts::of(&cover);
    let evil = tarw::write(&with_after_header_info(
        p.header_entries(),
        kit.script_entries(),
    ));
    // The attacker's header parses, scripts and all.
    let mut check = Parts::of(&cover);
    with_plain_header(&mut check, evil.clone());
    let info = must_read(&check.bytes(), vec![], "the attacker's header").await;
    assert_eq!(info.header.scripts.len(), 18);

    let i = index(&p, "header.tar.gz");
    p.members[i] = TarEntry::file("header.tar", evil.clone());
    insert_before(
        &mut p,
        "header.tar",
        TarEntry::file(
            "manifest-augment",
            format!("{}  header.tar\n", sha256_hex(&evil)),
        ),
    );
    keeps_signature(&p, &cover);
    attack_raw(kit, p.bytes(), &["header.tar", "manifest-augment"]).await;
}

/// The data tar carries the attacker's image `evil.ext4` instead of `rootfs.ext4`, listed
/// only in `manifest-augment`; the signed manifest and header are the vendor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn augment_covered_data_file() {
    let kit = Kit::new();
    let base = signed_with_scripts(&kit).await;
    let mut p = Parts::of(&base);
    let evil = kit.image(9);
    set_data(&mut p, &[TarEntry::file("evil.ext4", evil.clone())]);
    insert_before(
        &mut p,
        "header.tar.gz",
        TarEntry::file(
            "manifest-augment",
            format!("{}  data/0000/evil.ext4\n", sha256_hex(&evil)),
        ),
    );
    keeps_signature(&p, &base);
    attack_raw(kit, p.bytes(), &["evil.ext4", "manifest-augment"]).await;
}

// ----- signatures -----

/// The attacker's own artifact, with scripts, not signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_artifact() {
    let kit = Kit::new();
    let evil = kit.rootfs(ATTACK_NAME, true, None, 9).await;
    let info = must_read(&evil, vec![], "the unsigned artifact").await;
    assert_eq!(info.header.scripts.len(), 18);
    attack_raw(kit, evil, &["signature"]).await;
}

/// The attacker's artifact, with scripts, signed by a key the device does not trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_by_an_untrusted_key() {
    let kit = Kit::new();
    let evil = kit.rootfs(ATTACK_NAME, true, Some(&kit.untrusted), 9).await;
    must_read(
        &evil,
        kit.untrusted_keys(),
        "the artifact (with its own key)",
    )
    .await;
    attack_raw(kit, evil, &["signature"]).await;
}

/// The attacker's artifact with the `manifest.sig` of another artifact the vendor signed:
/// a valid signature, over a different manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_over_a_different_manifest() {
    let kit = Kit::new();
    let donor = kit.rootfs("release-0", false, Some(&kit.trusted), 3).await;
    must_read(&donor, kit.verify_keys(), "the donor").await;
    let evil = kit.rootfs(ATTACK_NAME, true, None, 9).await;
    must_read(&evil, vec![], "the attacker's artifact").await;
    let donor = Parts::of(&donor);
    let mut p = Parts::of(&evil);
    assert_ne!(p.get("manifest").data, donor.get("manifest").data);
    insert_after(
        &mut p,
        "manifest",
        TarEntry::file("manifest.sig", donor.get("manifest.sig").data.clone()),
    );
    attack_raw(kit, p.bytes(), &["signature"]).await;
}

/// The vendor's header with the attacker's scripts added, the manifest rehashed, and the
/// signature (which no longer matched) removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_with_scripts_but_no_signature() {
    let kit = Kit::new();
    let mut p = Parts::of(&kit.cover().await);
    let entries = with_after_header_info(p.header_entries(), kit.script_entries());
    p.set_header_gz(&entries);
    assert!(!p.members.iter().any(|m| m.name == "manifest.sig"));
    let bytes = p.bytes();
    let info = must_read(&bytes, vec![], "the re-hashed artifact").await;
    assert_eq!(info.header.scripts.len(), 18);
    attack_raw(kit, bytes, &["signature"]).await;
}

/// A format v2 artifact (mender-artifact `-v 2`) with scripts, unsigned, while keys are
/// configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_artifact_while_keys_are_configured() {
    let kit = Kit::new();
    std::fs::write(kit.path("v2.img"), kit.image(9)).unwrap();
    let mut cmd = std::process::Command::new("mender-artifact");
    cmd.current_dir(kit.dir.path()).args([
        "write",
        "rootfs-image",
        "-v",
        "2",
        "-t",
        DEVICE_TYPE,
        "-n",
        ATTACK_NAME,
        "-f",
        "v2.img",
        "-o",
        "v2.mender",
    ]);
    std::fs::create_dir_all(kit.path("v2-scripts")).unwrap();
    for s in kit.scripts() {
        let path = kit.path(&format!("v2-scripts/{}", s.name));
        std::fs::write(&path, &s.content).unwrap();
        cmd.arg("-s").arg(path);
    }
    run(&mut cmd);
    let evil = std::fs::read(kit.path("v2.mender")).unwrap();
    let info = must_read(&evil, vec![], "the v2 artifact").await;
    assert_eq!(info.format_version, 2);
    assert_eq!(info.header.scripts.len(), 18);
    attack_raw(kit, evil, &["signature"]).await;
}

// ----- payload checksums -----

/// The vendor's signed artifact with one payload byte flipped at `at(len)`.
async fn flipped(kit: &Kit, at: impl Fn(usize) -> usize) -> Vec<u8> {
    let base = signed_with_scripts(kit).await;
    let mut p = Parts::of(&base);
    let mut files = data_entries(&p);
    assert_eq!(files.len(), 1);
    let i = at(files[0].data.len());
    files[0].data[i] ^= 0x01;
    let manifest = String::from_utf8(p.get("manifest").data.clone()).unwrap();
    assert!(
        !manifest.contains(&sha256_hex(&files[0].data)),
        "the flipped image no longer matches"
    );
    set_data(&mut p, &files);
    keeps_signature(&p, &base);
    p.bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_mismatch_at_the_first_byte() {
    let kit = Kit::new();
    let evil = flipped(&kit, |_| 0).await;
    attack_raw(kit, evil, &["checksum", "rootfs.ext4"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_mismatch_at_a_middle_byte() {
    let kit = Kit::new();
    let evil = flipped(&kit, |n| n / 2 + 7).await;
    attack_raw(kit, evil, &["checksum", "rootfs.ext4"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_mismatch_at_the_last_byte() {
    let kit = Kit::new();
    let evil = flipped(&kit, |n| n - 1).await;
    attack_raw(kit, evil, &["checksum", "rootfs.ext4"]).await;
}

// ----- truncation -----

/// How a cut is named: the reader's "artifact is truncated" (tokio-tar's "unexpected EOF
/// while reading archive entry data" is recognised as a truncation too).
const TRUNCATED: &str = "truncated";

/// The vendor's signed artifact cut in the middle of `member`.
async fn truncated(kit: &Kit, member: &str) -> Vec<u8> {
    let base = signed_with_scripts(kit).await;
    let (cut, start, size) = cut_inside(&base, member);
    assert!(
        cut.len() > start && cut.len() < start + size,
        "inside {member}"
    );
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_inside_version() {
    let kit = Kit::new();
    let evil = truncated(&kit, "version").await;
    attack_raw(kit, evil, &[TRUNCATED, "version"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_inside_manifest() {
    let kit = Kit::new();
    let evil = truncated(&kit, "manifest").await;
    attack_raw(kit, evil, &[TRUNCATED, "manifest"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_inside_manifest_sig() {
    let kit = Kit::new();
    let evil = truncated(&kit, "manifest.sig").await;
    attack_raw(kit, evil, &[TRUNCATED, "manifest.sig"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_inside_the_header() {
    let kit = Kit::new();
    let evil = truncated(&kit, "header.tar.gz").await;
    attack_raw(kit, evil, &[TRUNCATED, "header.tar.gz"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_inside_the_data() {
    let kit = Kit::new();
    let evil = truncated(&kit, "data/0000.tar.gz").await;
    attack_raw(kit, evil, &[TRUNCATED, "data/0000.tar.gz"]).await;
}

// ----- extra members -----

/// A member after the data: the attacker's scripts as a tar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_member_after_the_data() {
    let kit = Kit::new();
    let base = signed_with_scripts(&kit).await;
    let mut p = Parts::of(&base);
    let extra = gzip(&tarw::write(&kit.script_entries()));
    p.members.push(TarEntry::file("extra.tar.gz", extra));
    keeps_signature(&p, &base);
    attack_raw(kit, p.bytes(), &["extra.tar.gz"]).await;
}

/// A second data member `data/0001.tar.gz` with the attacker's image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_data_member() {
    let kit = Kit::new();
    let base = signed_with_scripts(&kit).await;
    let mut p = Parts::of(&base);
    let evil = tarw::write(&[TarEntry::file("evil.ext4", kit.image(9))]);
    p.members
        .push(TarEntry::file("data/0001.tar.gz", gzip(&evil)));
    keeps_signature(&p, &base);
    attack_raw(kit, p.bytes(), &["data/0001"]).await;
}

// ----- decompression bombs -----

/// Decompressed size of each bomb: far past every bound (header 16 MiB, header file 1 MiB,
/// tar trailer 64 KiB), compressed to about 64 KiB.
const BOMB: u64 = 64 << 20;

/// `header-augment.tar.gz`, the one member unsigned `manifest-augment` may vouch for: a
/// `header-info`, then a `type-info` of 64 MiB of zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_in_the_header() {
    let kit = Kit::new();
    let base = signed_with_scripts(&kit).await;
    let mut p = Parts::of(&base);
    let mut prefix = tarw::write(&[TarEntry::file(
        "header-info",
        r#"{"payloads":[{"type":"rootfs-image"}]}"#,
    )]);
    prefix.truncate(prefix.len() - 1024); // no end-of-archive yet
    prefix.extend_from_slice(&file_header("headers/0000/type-info", BOMB));
    let bomb = gzip_with_zeros(&prefix, BOMB + 1024);
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());
    assert_eq!(
        u64::from(gzip_declared_len(&bomb)),
        (prefix.len() as u64 + BOMB + 1024) % (1 << 32)
    );
    insert_before(
        &mut p,
        "header.tar.gz",
        TarEntry::file(
            "manifest-augment",
            format!("{}  header-augment.tar.gz\n", sha256_hex(&bomb)),
        ),
    );
    insert_after(
        &mut p,
        "header.tar.gz",
        TarEntry::file("header-augment.tar.gz", bomb),
    );
    keeps_signature(&p, &base);
    attack_raw(kit, p.bytes(), &["header-augment", "limit"]).await;
}

/// `data/0000.tar.gz`, whose compressed stream no checksum covers: the vendor's data tar
/// (every file matching the signed manifest) followed by 64 MiB of zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_in_the_data() {
    let kit = Kit::new();
    let base = signed_with_scripts(&kit).await;
    let mut p = Parts::of(&base);
    let tar = tarw::write(&data_entries(&p));
    let bomb = gzip_with_zeros(&tar, BOMB);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    p.get_mut("data/0000.tar.gz").data = bomb;
    keeps_signature(&p, &base);
    attack_raw(kit, p.bytes(), &["data/0000.tar.gz", "limit"]).await;
}
