//! The attack suite, RAUC backend (issue 10): through the real daemon binary with
//! `[backend.rauc]` on the rig's private bus, the real `rauc service` behind it
//! (`tests/common/rauc.rs`), then through `mender-bridge install`, then a legitimate
//! signed deployment across a simulated reboot. Judged as every attack is
//! (`tests/common/attack.rs`), and on RAUC's side: its slot images, bootloader state and
//! `LastError` unchanged, no install in its log, the spool emptied.
#![cfg(all(feature = "sim", feature = "rauc"))]

mod common;

use common::attack::{
    data_entries, must_read, rauc_artifact, set_data, Attack, Boot, Kit, Rig, ATTACK_NAME,
};
use common::rauc::{RaucRig, Signer, COMPATIBLE};
use common::{run, Parts};

/// The vendor's signed `rauc` artifact around a bundle RAUC trusts, with the canary
/// scripts; its bundle swapped for another bundle RAUC also trusts (an older version: a
/// downgrade), so the Mender checksum is all that stands between it and RAUC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_bundle_with_a_mismatching_mender_checksum() {
    let kit = Kit::new();
    let rauc = RaucRig::new();
    let bundle = rauc.bundle(
        ATTACK_NAME,
        COMPATIBLE,
        "1.5",
        &kit.image(5),
        Signer::Trusted,
    );
    let cover = rauc_artifact(&kit, ATTACK_NAME, &bundle, false, Some(&kit.trusted)).await;
    let base = rauc_artifact(&kit, ATTACK_NAME, &bundle, true, Some(&kit.trusted)).await;
    let info = must_read(&base, kit.verify_keys(), "the signed base").await;
    assert_eq!(info.header.scripts.len(), 18);

    let old = rauc.bundle("old", COMPATIBLE, "0.9", &kit.image(6), Signer::Trusted);
    // RAUC would take the swapped bundle: its signature verifies against RAUC's keyring.
    run(std::process::Command::new("rauc")
        .arg(format!("--keyring={}", rauc.path("pki/ca.pem").display()))
        .arg("info")
        .arg(&old));
    let mut p = Parts::of(&base);
    let mut files = data_entries(&p);
    assert_eq!(files.len(), 1);
    let name = files[0].name.clone();
    files[0].data = std::fs::read(&old).unwrap();
    set_data(&mut p, &files);
    let b = Parts::of(&base);
    for m in ["version", "manifest", "manifest.sig", "header.tar.gz"] {
        assert_eq!(p.get(m).data, b.get(m).data, "{m} kept");
    }

    Rig::start(kit, Boot::Rauc(rauc))
        .await
        .run(Attack {
            crafted: p.bytes(),
            cover,
            causes: vec!["checksum".into(), name],
        })
        .await;
}
