//! The RAUC backend end to end against the real RAUC 1.8 service: the simulator as the
//! server, a private system bus, file-backed slots, the custom bootloader script (and once
//! RAUC's real U-Boot backend on a file environment), bundles
//! made with `rauc bundle` and wrapped with `mender-artifact write module-image -T rauc`.
//! What the dashboard sees (status history, substates, the deployment log) is checked.
#![cfg(all(feature = "sim", feature = "rauc"))]

mod common;

use std::time::Duration;

use common::device::{
    assert_one_final_still_release_1, history, kill_when, leave_script, run_or_kill_in_leave,
    Device,
};
use common::rauc::{engine, Bootloader, RaucRig, Signer, COMPATIBLE};
use common::sim::TestSim;
use common::wait::until;
use common::{finals, image};
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_bridge::deploy::engine::Outcome;
use mender_bridge_backends::Backend;

/// Uploads a `rauc` artifact around `bundle` and deploys it to the device.
async fn deploy_bundle(
    sim: &TestSim,
    dev: &Device,
    rig: &RaucRig,
    name: &str,
    bundle: &std::path::Path,
) -> String {
    let art = rig.artifact(bundle, name, "none");
    sim.http.upload(&art).await;
    sim.deploy(name, &dev.id).await
}

/// The deployment log the device uploaded, as text.
async fn device_log(sim: &TestSim, dep: &str, dev: &Device) -> String {
    sim.http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{}/log", dev.id),
            None,
        )
        .await
        .to_string()
}

/// The failure substate the dashboard shows.
fn failure_substate(h: &[(String, Option<String>)]) -> String {
    h.iter()
        .find(|(s, _)| s == "failure")
        .and_then(|(_, sub)| sub.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_install_reboot_into_the_new_slot_and_mark_good() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let img = image(2 << 20, 21);
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &img, Signer::Trusted);
    let slot0_before = rig.slot("rootfs-0", img.len());
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");

    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    assert!(
        rig.slot("rootfs-1", img.len()) == img,
        "rootfs.1 holds the bundle's image"
    );
    assert!(
        rig.slot("rootfs-0", img.len()) == slot0_before,
        "the booted slot is untouched"
    );
    assert!(rig.bootstate().contains("PRIMARY=B"), "{}", rig.bootstate());
    assert!(
        rig.spool_files().is_empty(),
        "spool file removed: {:?}",
        rig.spool_files()
    );
    let record = std::fs::read_to_string(store_dir.join("rauc-pending.json")).unwrap();
    assert!(
        record.contains("rootfs.1") && record.contains("\"B\""),
        "{record}"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(
        h.last().map(|(s, _)| s.as_str()),
        Some("rebooting"),
        "{h:?}"
    );
    // RAUC's progress as installing substates (throttled; the first and 100 % always go).
    let installing: Vec<&str> = h
        .iter()
        .filter(|(s, _)| s == "installing")
        .filter_map(|(_, sub)| sub.as_deref())
        .collect();
    assert!(installing.contains(&"installing 0% Installing"), "{h:?}");
    assert!(
        installing.contains(&"installing 100% Installing done."),
        "{h:?}"
    );
    drop(e);

    // The device reboots; the bootloader takes B; a new process resumes.
    assert_eq!(rig.reboot(), "B");
    rig.clear_bootloader_calls();
    let mut cfg = rig.config(&store_dir);
    cfg.health_check = Some(vec!["sh".into(), "-c".into(), "echo app is up >&2".into()]);
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
    assert_eq!(finals(&h), 1);
    assert!(!store_dir.join("rauc-pending.json").exists(), "trial over");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-2"
    );
    assert!(
        rig.bootstate()
            .contains("PRIMARY=B STATE_A=good STATE_B=good"),
        "{}",
        rig.bootstate()
    );
    assert_eq!(
        rig.bootloader_calls(),
        ["set-state B good"],
        "Mark(good, booted) reached the bootloader, and nothing else changed"
    );
    let inv: std::collections::HashMap<String, serde_json::Value> =
        e.backend().inventory().await.into_iter().collect();
    assert_eq!(inv["rauc_compatible"], COMPATIBLE);
    assert_eq!(inv["rauc_booted_slot"], "rootfs.1");
    assert_eq!(inv["rauc_boot_slot"], "B");
    assert_eq!(inv["rauc_slot_rootfs.1_version"], "2.0");
    assert!(inv.contains_key("rauc_variant"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootloader_fallback_after_the_reboot_is_a_failure_with_the_evidence() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 5), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    drop(e);

    // B never comes up: its attempts run out and the bootloader falls back to A.
    rig.exhaust_primary();
    assert_eq!(rig.reboot(), "A");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(
        failure_substate(&h).contains("not running the new software"),
        "{h:?}"
    );
    let log = device_log(&sim, &dep, &dev).await;
    assert!(
        log.contains("expected to boot rootfs.1 (B), booted rootfs.0 (BootSlot A)"),
        "{log}"
    );
    assert!(
        log.contains("slot rootfs.1 (B): state=inactive boot-status=bad"),
        "{log}"
    );
    assert!(rig.bootstate().contains("PRIMARY=A"), "{}", rig.bootstate());
    assert!(!store_dir.join("rauc-pending.json").exists());
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_rolls_back_to_the_old_slot() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 8), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    drop(e);
    assert_eq!(rig.reboot(), "B");
    let mut cfg = rig.config(&store_dir);
    cfg.health_check = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo app did not start >&2; exit 3".into(),
    ]);
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(
        failure_substate(&h).contains("health check sh failed"),
        "{h:?}"
    );
    let log = device_log(&sim, &dep, &dev).await;
    assert!(log.contains("health check: app did not start"), "{log}");
    assert!(
        log.contains("rollback: RAUC activated slot rootfs.0"),
        "{log}"
    );
    // Mark("active", "other") from B: A boots next.
    assert!(
        rig.bootstate().starts_with("PRIMARY=A"),
        "{}",
        rig.bootstate()
    );
    assert!(!store_dir.join("rauc-pending.json").exists());
    assert_eq!(rig.reboot(), "A");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// A bundle RAUC rejects: the deployment fails with RAUC's own message in the log and the
/// failure substate; nothing is activated, the spool is empty.
async fn rejected(signer: Signer, compatible: &str, want: &str) {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let rig = RaucRig::new();
    let bundle = rig.bundle("bad", compatible, "2.0", &image(1 << 20, 9), signer);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(failure_substate(&h).contains(want), "substate: {h:?}");
    let log = device_log(&sim, &dep, &dev).await;
    assert!(log.contains(want), "{log}");
    assert!(log.contains("RAUC Completed(1)"), "{log}");
    assert!(rig.bootstate().contains("PRIMARY=A"), "{}", rig.bootstate());
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
    assert!(!store_dir.join("rauc-pending.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_compatible_fails_with_raucs_message() {
    rejected(
        Signer::Trusted,
        "Other-Device",
        "Compatible mismatch: Expected 'Test-Device' but bundle manifest has 'Other-Device'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_signer_fails_with_raucs_message() {
    rejected(
        Signer::Untrusted,
        COMPATIBLE,
        "signature verification failed",
    )
    .await;
}

/// Starts `rauc install` of `bundle` and waits until RAUC holds it in progress (the rig's
/// bootloader waits in set-state). RAUC takes a new install only a moment after the last
/// one reported `Completed`: a refused CLI run is started again.
async fn start_held_install(rig: &RaucRig, bundle: &std::path::Path) -> common::rauc::OtherInstall {
    rig.hold();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = rig.rauc_install(bundle);
        loop {
            if rig.held() {
                return c;
            }
            if c.exited().is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rauc install never got going"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_rauc_fails_the_deployment_no_hang() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let rig = RaucRig::new();
    let other = rig.bundle(
        "other",
        COMPATIBLE,
        "1.5",
        &image(1 << 20, 2),
        Signer::Trusted,
    );
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(2 << 20, 3), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    // A slow download: RAUC gets busy while the bridge spools.
    sim.throttle(1 << 20).await;
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    let task = tokio::spawn(async move { e.check_update().await.unwrap() });
    until(Duration::from_secs(20), "download progress", || {
        rig.spool_files().len() == 1
    })
    .await;
    // Someone else starts an install (RAUC's own CLI), held in progress.
    let mut first = start_held_install(&rig, &other).await;
    sim.throttle(0).await;
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the deployment ends while RAUC is busy")
        .unwrap();
    assert_eq!(outcome, Outcome::Finished(DeploymentStatus::Failure));
    // (RAUC 1.8 reports Operation = idle after refusing a second install, although the
    // first still runs: only its Completed signal ends an install.)
    assert!(
        rig.property("Operation").contains("idle"),
        "RAUC 1.8 changed?"
    );
    rig.release();
    until(Duration::from_secs(30), "the other install to end", || {
        first.exited().is_some()
    })
    .await;
    assert!(
        first.exited().is_some_and(|s| s.success()),
        "the other install succeeded"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    let sub = failure_substate(&h);
    assert!(
        sub.contains("RAUC refused the install") && sub.contains("Already processing"),
        "{sub}"
    );
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
    assert!(!store_dir.join("rauc-pending.json").exists());

    // Busy before the payload: refused by the preflight once the verified header chose
    // RAUC; the download stops after the header.
    let _second = start_held_install(&rig, &other).await;
    let dep = deploy_bundle(&sim, &dev, &rig, "release-3", &bundle).await;
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    rig.release();
    common::device::assert_stopped_after_the_header(&e, std::fs::metadata(&bundle).unwrap().len());
    let sub = failure_substate(&history(&sim, &dep, &dev.id).await);
    assert!(
        sub.contains("RAUC is busy (Operation = installing)"),
        "{sub}"
    );
    assert!(rig.spool_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_dying_mid_install_fails_the_deployment_no_hang() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 4), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    rig.hold();
    let task = tokio::spawn(async move { e.check_update().await.unwrap() });
    until(
        Duration::from_secs(30),
        "the install to be in progress",
        || rig.held(),
    )
    .await;
    rig.kill_service();
    let outcome = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the deployment ends when RAUC dies")
        .unwrap();
    assert_eq!(outcome, Outcome::Finished(DeploymentStatus::Failure));
    rig.release();
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    let sub = failure_substate(&h);
    assert!(sub.contains("left the bus during the install"), "{sub}");
    let log = device_log(&sim, &dep, &dev).await;
    assert!(log.contains("left the bus"), "{log}");
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_absent_fails_before_the_payload_streams() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 4), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    rig.stop_service();
    let store_dir = dev.dir.path().join("store");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    common::device::assert_stopped_after_the_header(&e, std::fs::metadata(&bundle).unwrap().len());
    let sub = failure_substate(&history(&sim, &dep, &dev.id).await);
    assert!(
        sub.starts_with("backend not ready: not started: RAUC"),
        "{sub}"
    );
}

/// A 1 MiB tmpfs mounted on a directory of the test's own, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        common::run(
            std::process::Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_small_spool_is_refused_before_the_payload() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(2 << 20, 4), Signer::Trusted);
    let size = std::fs::metadata(&bundle).unwrap().len();
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let small = rig.path("small-spool");
    let _tmpfs = Tmpfs::mount(&small, "1m");
    let store_dir = dev.dir.path().join("store");
    let mut cfg = rig.config(&store_dir);
    cfg.spool_dir = small.clone();
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let sub = failure_substate(&history(&sim, &dep, &dev.id).await);
    assert!(
        sub.contains(&format!("spool directory {}", small.display()))
            && sub.contains("bytes free, the bundle")
            && sub.contains(&format!("needs {size}")),
        "{sub}"
    );
    let fetched = e.last_download().unwrap().fetched();
    assert!(
        fetched < size,
        "the payload was not downloaded: {fetched} of {size}"
    );
    assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0);
    assert!(rig.bootstate().contains("PRIMARY=A"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_dying_mid_install_leaves_the_booted_slot_primary() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 6), Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let store_dir = dev.dir.path().join("store");
    let e = engine(&dev, &sim, rig.config(&store_dir));
    rig.hold();
    // The bridge process dies while RAUC installs; RAUC goes on.
    kill_when(e, 30, "the install to be in progress", || rig.held()).await;
    // The bridge starts again while RAUC is still busy; RAUC then completes and activates
    // B, which the restarted bridge must undo.
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    let resumed = tokio::spawn(async move { e.resume().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.release();
    let outcome = tokio::time::timeout(Duration::from_secs(60), resumed)
        .await
        .expect("the resumed deployment ends")
        .unwrap();
    assert_eq!(outcome, Some(Outcome::Finished(DeploymentStatus::Failure)));
    assert!(
        rig.bootstate().starts_with("PRIMARY=A"),
        "{}",
        rig.bootstate()
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    let log = device_log(&sim, &dep, &dev).await;
    assert!(log.contains("its outcome is unknown"), "{log}");
    assert!(log.contains("RAUC: activated slot rootfs.0"), "{log}");
    assert!(!store_dir.join("rauc-started").exists());
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// The standalone commands through the built binary, configured by `mender-bridge.toml`:
/// `install` (exit 4: reboot needed), a simulated reboot, `commit` (Mark good), `commit`
/// again (exit 2: nothing in progress).
#[test]
fn standalone_install_and_commit_through_the_binary() {
    let mut rig = RaucRig::new();
    let img = image(1 << 20, 12);
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &img, Signer::Trusted);
    let art = rig.artifact(&bundle, "release-2", "gzip");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::device_data_dir(d);
    std::fs::write(d.join("mender.conf"), "{}\n").unwrap();
    std::fs::write(
        d.join("bridge.toml"),
        format!(
            "state_scripts_dir = \"{}\"\nartifact_info_file = \"{}\"\n[backend]\ntype = \"rauc\"\n\
             [backend.rauc]\nbus = \"{}\"\nhealth_check = [\"true\"]\ncall_timeout_seconds = 10\n",
            d.join("scripts").display(),
            d.join("artifact_info").display(),
            rig.address,
        ),
    )
    .unwrap();
    let bridge = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mender-bridge"))
            .arg("-c")
            .arg(d.join("mender.conf"))
            .arg("-d")
            .arg(d.join("data"))
            .arg("--bridge-config")
            .arg(d.join("bridge.toml"))
            .args(args)
            .output()
            .unwrap()
    };
    let say = |o: &std::process::Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let o = bridge(&["install", art.to_str().unwrap(), "--reboot-exit-code"]);
    assert_eq!(o.status.code(), Some(4), "{}", say(&o));
    assert!(
        rig.slot("rootfs-1", img.len()) == img,
        "rootfs.1 holds the image"
    );
    let spool = d.join("data/mender-bridge/rauc-spool");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "the default spool dir is used and emptied"
    );
    assert!(d.join("data/mender-bridge/rauc-pending.json").exists());
    assert_eq!(rig.reboot(), "B");
    rig.clear_bootloader_calls();
    let o = bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(0), "{}", say(&o));
    assert_eq!(rig.bootloader_calls(), ["set-state B good"]);
    let o = bridge(&["show-provides"]);
    assert!(say(&o).contains("artifact_name=release-2"), "{}", say(&o));
    let o = bridge(&["commit"]);
    assert_eq!(o.status.code(), Some(2), "{}", say(&o));
}

/// RAUC's real U-Boot backend on a file environment: an install sets `BOOT_ORDER`, the
/// simulated boot script uses an attempt, `Mark good` restores the attempts; a second
/// update whose slot runs out of attempts falls back, and the failure carries the evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uboot_backend_success_then_fallback() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::with(Bootloader::Uboot);
    let store_dir = dev.dir.path().join("store");
    let img = image(1 << 20, 31);
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &img, Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-2", &bundle).await;
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    assert_eq!(rig.uboot_var("BOOT_ORDER"), "B A");
    assert!(rig.slot("rootfs-1", img.len()) == img);
    drop(e);
    assert_eq!(rig.reboot(), "B");
    assert_eq!(rig.uboot_var("BOOT_B_LEFT"), "2", "one attempt used");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    assert_eq!(
        rig.uboot_var("BOOT_B_LEFT"),
        "3",
        "Mark good restored the attempts"
    );
    assert_eq!(finals(&history(&sim, &dep, &dev.id).await), 1);
    drop(e);

    // The next update goes to A, which never comes up.
    let img3 = image(1 << 20, 33);
    let bundle = rig.bundle("v3", COMPATIBLE, "3.0", &img3, Signer::Trusted);
    let dep = deploy_bundle(&sim, &dev, &rig, "release-3", &bundle).await;
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    assert_eq!(rig.uboot_var("BOOT_ORDER"), "A B");
    drop(e);
    rig.exhaust_primary();
    assert_eq!(rig.reboot(), "B", "fell back");
    let mut e = engine(&dev, &sim, rig.config(&store_dir));
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let log = device_log(&sim, &dep, &dev).await;
    assert!(
        log.contains("expected to boot rootfs.0 (A), booted rootfs.1 (BootSlot B)"),
        "{log}"
    );
    assert!(
        log.contains("slot rootfs.0 (A): state=inactive boot-status=bad"),
        "{log}"
    );
    assert_eq!(rig.uboot_var("BOOT_ORDER").split(' ').next(), Some("B"));
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-2"
    );
}

/// After RAUC activated the new slot, `ArtifactInstall_Leave` fails (or the bridge dies
/// while it runs): the deployment ends as a failure with the booted slot primary again.
async fn failure_after_activation(kill: bool) {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let rig = RaucRig::new();
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &image(1 << 20, 8), Signer::Trusted);
    let marker = rig.path("leave-started");
    let script = leave_script(kill, &marker);
    let art = rig.artifact_with_scripts(
        &bundle,
        "release-2",
        "none",
        &[("ArtifactInstall_Leave_01", &script)],
    );
    sim.http.upload(&art).await;
    let dep = sim.deploy("release-2", &dev.id).await;
    let store_dir = dev.dir.path().join("store");
    let e = engine(&dev, &sim, rig.config(&store_dir));
    let activated = || {
        assert!(
            rig.bootstate().starts_with("PRIMARY=B"),
            "RAUC activated B: {}",
            rig.bootstate()
        )
    };
    let restart = || engine(&dev, &sim, rig.config(&store_dir));
    let outcome = run_or_kill_in_leave(e, kill, &marker, activated, restart).await;
    assert_eq!(outcome, Some(Outcome::Finished(DeploymentStatus::Failure)));
    assert!(
        rig.bootstate().starts_with("PRIMARY=A"),
        "the booted slot is primary again: {}",
        rig.bootstate()
    );
    assert_one_final_still_release_1(&sim, &dep, &dev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_artifact_install_leave_after_rauc_activated_rolls_back() {
    failure_after_activation(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_artifact_install_leave_after_rauc_activated_rolls_back() {
    failure_after_activation(true).await;
}

/// `--stop-before ArtifactInstall_Enter` with RAUC: the verified bundle is kept in the
/// spool (a name the spool's cleaning leaves alone) and RAUC sees nothing; `resume` in a
/// later process hashes the kept file again before RAUC gets it. A kept bundle changed on
/// disk is refused by the bridge itself (not only by RAUC's signature check) and removed;
/// an intact one installs, and the device reboots into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stop_after_the_download_keeps_the_bundle_and_resume_installs_it() {
    use mender_bridge::deploy::standalone::{InstallOutcome, Standalone, StopPoint, Stops};
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let mut rig = RaucRig::new();
    let img = image(1 << 20, 23);
    let bundle = rig.bundle("v2", COMPATIBLE, "2.0", &img, Signer::Trusted);
    let art = rig.artifact(&bundle, "release-2", "none");
    let store_dir = dev.dir.path().join("store");
    let slot1_before = rig.slot("rootfs-1", img.len());
    let cfg = rig.config(&store_dir);
    let standalone = || {
        Standalone::new(
            dev.store(),
            mender_bridge_backends::rauc::RaucBackend::new(cfg.clone()),
            common::device::engine_config(&dev),
        )
    };
    let stop = Stops::parse(&["ArtifactInstall_Enter"]).unwrap();
    let install = |stops: Stops| {
        let art = art.clone();
        let mut s = standalone();
        async move {
            let file = tokio::fs::File::open(&art).await.unwrap();
            s.install(file, &stops, &mut |_, _| {}).await
        }
    };

    let done = install(stop.clone()).await.unwrap();
    assert_eq!(
        done.outcome,
        InstallOutcome::Stopped(StopPoint::ArtifactInstallEnter)
    );
    let kept = rig.spool_files();
    assert!(
        kept.len() == 1 && kept[0].starts_with("kept-mender-bridge-"),
        "{kept:?}"
    );
    assert!(
        rig.slot("rootfs-1", img.len()) == slot1_before,
        "RAUC installed nothing"
    );
    assert!(!store_dir.join("rauc-pending.json").exists());

    // The kept bundle changes on disk (same size): the resume refuses it and removes it.
    let kept = rig.path("spool").join(&kept[0]);
    let mut bytes = std::fs::read(&kept).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&kept, bytes).unwrap();
    let e = standalone().resume(&Stops::default()).await.unwrap_err();
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert!(
        rig.slot("rootfs-1", img.len()) == slot1_before,
        "RAUC installed nothing"
    );
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
    assert!(
        dev.store().standalone().unwrap().is_none(),
        "the failed install is over"
    );

    // An intact kept bundle: installed by the resume, then the reboot and the commit.
    install(stop).await.unwrap();
    let done = standalone().resume(&Stops::default()).await.unwrap();
    assert_eq!(done.outcome, InstallOutcome::RebootRequired);
    assert!(
        rig.slot("rootfs-1", img.len()) == img,
        "rootfs.1 holds the image"
    );
    assert!(rig.spool_files().is_empty(), "{:?}", rig.spool_files());
    assert_eq!(rig.reboot(), "B");
    let done = standalone().commit(&Stops::default()).await.unwrap();
    assert_eq!(done.outcome, InstallOutcome::Committed);
}
