//! The SWUpdate backend end to end against the real SWUpdate 2022.12 daemon (Debian
//! `swupdate`): a signed .swu (raw + rawfile handlers writing plain files) wrapped with
//! `mender-artifact write module-image -T swu`, deployed from the simulator through the
//! engine, streamed into the daemon's install socket. What the dashboard sees (the sim's
//! status history) and what the daemon did (its targets, its log) are checked.
#![cfg(all(feature = "sim", feature = "swupdate"))]

mod common;

use std::time::Duration;

use common::device::{
    assert_one_final_still_release_1, history, leave_script, run_or_kill_in_leave, Device,
};
use common::sim::TestSim;
use common::swupdate::{
    deployment_log, engine, find, uboot_tool, upload_and_deploy, SwuDaemon, SwuDir,
};
use common::wait::{poll, until, Lazy};
use common::{finals, image};
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_bridge::deploy::engine::Engine;
use mender_bridge::deploy::engine::Outcome;
use mender_bridge_backends::swupdate::probe::Verdict;
use mender_bridge_backends::swupdate::{SwupdateBackend, SwupdateConfig, SwupdateMode};
use mender_bridge_backends::Backend;
use serde_json::json;

/// Every scenario's start: a simulator, a device on it and a SWUpdate directory.
async fn parts() -> (TestSim, Device, SwuDir) {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    (sim, dev, SwuDir::new())
}

#[tokio::test]
async fn a_swu_streams_into_swupdate_and_succeeds() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(3 << 20, 21);
    let swu = d.swu("ok", &img, "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;

    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(std::fs::read(d.copy()).unwrap(), img, "rawfile target");
    assert_eq!(
        &std::fs::read(d.target()).unwrap()[..img.len()],
        &img[..],
        "raw target"
    );
    assert_eq!(daemon.installs_started(), 1);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
    assert_eq!(finals(&h), 1);
    assert!(
        h.iter().any(|(s, sub)| s == "installing"
            && sub
                .as_deref()
                .is_some_and(|t| t.contains("step ") && t.contains("rootfs.img"))),
        "SWUpdate's progress on the dashboard: {h:?}"
    );
    // Nothing of the payload was written by the bridge: the device's directory (store,
    // scripts; the raw backend's unused slots aside) holds only small records. The bridge
    // has no spool or temp directory of its own; the benchmark also reads its write_bytes.
    let slots = dev.dir.path().join("slots");
    let all = SwuDir::files_under(dev.dir.path());
    assert!(
        all.iter()
            .any(|p| p.starts_with(dev.dir.path().join("store"))),
        "the check looks where the bridge writes: {all:?}"
    );
    let large: Vec<_> = all
        .into_iter()
        .filter(|p| !p.starts_with(&slots))
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() > 64 * 1024)
                .unwrap_or(false)
        })
        .collect();
    assert!(large.is_empty(), "payload-sized files written: {large:?}");
    let provides = dev.store().installed().unwrap().unwrap();
    assert_eq!(provides["artifact_name"], "release-2");
}

#[tokio::test]
async fn three_download_cuts_still_one_swupdate_install() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(4 << 20, 23);
    let swu = d.swu("cuts", &img, "1.0", "dev");
    let artifact = d.artifact("release-2", &swu);
    let size = artifact.len() as u64;
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", artifact).await;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/cut",
            Some(json!({"offsets": [size / 5, size / 2, size * 4 / 5]})),
        )
        .await;
    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(
        engine.last_download().unwrap().resumes(),
        3,
        "three resumes"
    );
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    assert_eq!(
        daemon.installs_started(),
        1,
        "one install, not restarted: {}",
        daemon.log_text()
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
}

#[tokio::test]
async fn a_mender_checksum_mismatch_makes_swupdate_fail_and_activates_nothing() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(2 << 20, 25);
    let swu_path = d.swu("flip", &img, "1.0", "dev");
    let swu = std::fs::read(&swu_path).unwrap();
    let target_before = std::fs::read(d.target()).unwrap();
    let artifact = d.artifact("release-2", &swu_path);
    // The byte flipped is the .swu's last: cpio block padding, which SWUpdate does not
    // check. Only the Mender checksum catches it; the held-back tail makes SWUpdate fail.
    assert_eq!(swu.last(), Some(&0), "the .swu ends in cpio padding");
    let at = find(&artifact, &swu[..512]).unwrap() + swu.len() - 1;
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", artifact).await;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/corrupt",
            Some(json!({"offsets": [at]})),
        )
        .await;
    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        std::fs::read(d.target()).unwrap(),
        target_before,
        "raw target untouched"
    );
    assert!(!d.copy().exists(), "rawfile target not written");
    assert_eq!(daemon.installs_started(), 1);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"), "{h:?}");
    assert_eq!(finals(&h), 1);
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(log.contains("checksum mismatch"), "{log}");
    assert!(log.contains("ended in FAILURE"), "SWUpdate's result: {log}");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// Deploys a .swu SWUpdate refuses; returns the uploaded log.
async fn rejected(name: &str, hw: &str, signer: &str) -> (String, SwuDir) {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(1 << 20, 27);
    let swu = d.swu(name, &img, hw, signer);
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert!(!d.copy().exists(), "nothing installed");
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"), "{h:?}");
    assert_eq!(finals(&h), 1);
    let log = deployment_log(&sim, &dep, &dev.id).await;
    (log, d)
}

#[tokio::test]
async fn swupdate_rejects_a_bad_signature_with_its_message() {
    let (log, _d) = rejected("badsig", "1.0", "other").await;
    assert!(
        log.contains("install failed")
            && log.contains("SWUpdate: FAILURE: ERROR : Authentication of all signatures failed"),
        "{log}"
    );
}

#[tokio::test]
async fn swupdate_rejects_the_wrong_hardware_with_its_message() {
    let (log, _d) = rejected("badhw", "2.0", "dev").await;
    assert!(
        log.contains("install failed")
            && log.contains("SWUpdate: FAILURE: ERROR : SW not compatible with hardware"),
        "{log}"
    );
}

#[tokio::test]
async fn a_busy_daemon_is_retried_then_the_deployment_fails() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    // Another client holds an install open: every other REQ_INSTALL gets NACK.
    let _holder = daemon.open_install("holder").await;
    let swu = d.swu("busy", &image(1 << 20, 29), "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("SWUpdate is busy")
            && log.contains("Installation in progress")
            && log.contains("after 3 attempts"),
        "{log}"
    );
    assert!(!d.copy().exists());
}

#[tokio::test]
async fn an_absent_daemon_fails_before_the_payload_streams() {
    let (sim, dev, d) = parts().await;
    let swu = d.swu("absent", &image(1 << 20, 31), "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let mut cfg = SwupdateConfig {
        control_socket: Some(d.path("run/sockinstctrl")),
        progress_socket: Some(d.path("run/swupdateprog")),
        ..SwupdateConfig::default()
    };
    cfg.timeout = Duration::from_secs(2);
    let mut engine = engine(&dev, &sim, cfg);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    common::device::assert_stopped_after_the_header(&engine, 1 << 20);
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("backend not ready")
            && log.contains("sockinstctrl")
            && log.contains("is the swupdate daemon running"),
        "{log}"
    );
}

/// A file-backed U-Boot environment with `ustate=0`; returns its `fw_env.config`.
fn uboot_env(d: &SwuDir) -> std::path::PathBuf {
    common::slots::uboot_env_file(d.dir.path(), "ustate=0\nbootcount=0\n")
}

fn ustate(d: &SwuDir) -> String {
    let cfg = d.path("fw_env.config");
    uboot_tool("fw_printenv", &["-c", cfg.to_str().unwrap(), "ustate"])
        .trim()
        .to_string()
}

fn set_ustate(d: &SwuDir, v: &str) {
    let cfg = d.path("fw_env.config");
    uboot_tool("fw_setenv", &["-c", cfg.to_str().unwrap(), "ustate", v]);
}

#[tokio::test]
async fn ustate_installed_before_the_reboot_then_committed() {
    let (sim, dev, d) = parts().await;
    let env = uboot_env(&d);
    let daemon = SwuDaemon::start_with(&d, Some(&env));
    let img = image(1 << 20, 33);
    let swu = d.swu("ustate", &img, "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let cfg = SwupdateConfig {
        reboot: true,
        ustate: true,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg.clone());
    let outcome = e.check_update().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::RebootRequired,
        "{}\n{}",
        deployment_log(&sim, &dep, &dev.id).await,
        daemon.log_text()
    );
    assert_eq!(ustate(&d), "ustate=1", "INSTALLED before the reboot");
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    drop(e);
    // The reboot: the bootloader starts the new software on trial (TESTING).
    set_ustate(&d, "2");
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    assert_eq!(ustate(&d), "ustate=0", "committed");
    let h = history(&sim, &dep, &dev.id).await;
    let statuses: Vec<&str> = h.iter().map(|(s, _)| s.as_str()).collect();
    assert!(statuses.contains(&"rebooting"), "{h:?}");
    assert_eq!(statuses.last(), Some(&"success"));
    assert_eq!(finals(&h), 1);
    let inv = e.backend().inventory().await;
    assert!(
        inv.contains(&("swupdate.hw_board".into(), "testboard".into()))
            && inv.contains(&("swupdate.hw_revision".into(), "1.0".into())),
        "{inv:?}"
    );
}

#[tokio::test]
async fn ustate_failed_after_the_reboot_is_a_failure() {
    let (sim, dev, d) = parts().await;
    let env = uboot_env(&d);
    let daemon = SwuDaemon::start_with(&d, Some(&env));
    let swu = d.swu("fellback", &image(1 << 20, 35), "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let cfg = SwupdateConfig {
        reboot: true,
        ustate: true,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg.clone());
    let outcome = e.check_update().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::RebootRequired,
        "{}\n{}",
        deployment_log(&sim, &dep, &dev.id).await,
        daemon.log_text()
    );
    drop(e);
    // The new software did not boot: the bootloader fell back and marked it FAILED.
    set_ustate(&d, "3");
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"), "{h:?}");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

#[tokio::test]
async fn without_the_progress_socket_get_status_gives_the_result() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    // A failed run first: its FAILURE stays in GET_STATUS's last_result until the next run
    // ends, so an early IDLE poll that believed it would fail this deployment.
    drop(daemon.open_install("to fail").await);
    let what = Lazy(|| format!("SWUpdate to wait again: {}", daemon.log_text()));
    until(Duration::from_secs(10), what, || {
        daemon.log_text().contains("Waiting for requests")
    })
    .await;
    let img = image(1 << 20, 37);
    let swu = d.swu("poll", &img, "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let cfg = SwupdateConfig {
        progress_socket: Some(d.path("run/no-progress-socket")),
        ..daemon.config()
    };
    let mut engine = engine(&dev, &sim, cfg);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    assert_eq!(daemon.installs_started(), 2);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
}

#[tokio::test]
async fn a_dry_run_verifies_and_writes_nothing() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let swu = d.swu("dry", &image(1 << 20, 39), "1.0", "dev");
    let target_before = std::fs::read(d.target()).unwrap();
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let cfg = SwupdateConfig {
        dry_run: true,
        ..daemon.config()
    };
    let mut engine = engine(&dev, &sim, cfg);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert!(!d.copy().exists(), "a dry run writes nothing");
    assert_eq!(std::fs::read(d.target()).unwrap(), target_before);
    assert!(
        daemon
            .log_text()
            .contains("Found installer for stream rootfs.img dummy"),
        "the daemon ran it as a dry run: {}",
        daemon.log_text()
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
}

#[tokio::test]
async fn ustate_without_a_bootloader_fails_after_the_reboot_with_a_hint() {
    let (sim, dev, d) = parts().await;
    // -B none: SWUpdate keeps ustate in memory only, so a restart loses it.
    let daemon = SwuDaemon::start(&d);
    let swu = d.swu("nobl", &image(1 << 20, 41), "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let cfg = SwupdateConfig {
        reboot: true,
        ustate: true,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg.clone());
    assert_eq!(e.check_update().await.unwrap(), Outcome::RebootRequired);
    drop(e);
    drop(daemon);
    let _daemon = SwuDaemon::start(&d); // the reboot
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("no bootloader state") && log.contains("backend.swupdate.ustate = false"),
        "{log}"
    );
}

#[tokio::test]
async fn swupdate_progress_shows_while_an_image_installs_from_the_stream() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(3 << 20, 43);
    let swu = d.swu_with("direct", &img, "1.0", "dev", true);
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    sim.throttle(1 << 20).await;
    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(&std::fs::read(d.target()).unwrap()[..img.len()], &img[..]);
    let h = history(&sim, &dep, &dev.id).await;
    assert!(
        h.iter().any(|(s, sub)| s == "downloading"
            && sub
                .as_deref()
                .is_some_and(|t| t.contains("SWUpdate step 1/1 rootfs.img (raw)"))),
        "SWUpdate's progress next to the download's: {h:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Stream or spool, by who verifies (backend.swupdate.mode), against Debian's SWUpdate
// started with -k (enforces signed images) and a build without signed images
// (SwuDaemon::start_unsigned).

/// Deploys a signed .swu of `img` with `cfg` against `daemon`; returns the outcome and
/// the engine (its backend knows the probe's verdict).
async fn deploy_with(
    sim: &TestSim,
    dev: &Device,
    d: &SwuDir,
    img: &[u8],
    cfg: SwupdateConfig,
) -> (Outcome, Engine<SwupdateBackend>) {
    let swu = d.swu("mode", img, "1.0", "dev");
    let dep = upload_and_deploy(sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let mut e = engine(dev, sim, cfg);
    let outcome = e.check_update().await.unwrap();
    if outcome != Outcome::Finished(DeploymentStatus::Success) {
        eprintln!("{}", deployment_log(sim, &dep, &dev.id).await);
    }
    (outcome, e)
}

fn spool_is_empty(daemon: &SwuDaemon) -> bool {
    SwuDir::files_under(&daemon.spool).is_empty()
}

#[tokio::test]
async fn stream_mode_streams_into_a_swupdate_that_enforces_signatures() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(1 << 20, 51);
    let cfg = SwupdateConfig {
        mode: SwupdateMode::Stream,
        ..daemon.config()
    };
    let (outcome, e) = deploy_with(&sim, &dev, &d, &img, cfg).await;
    assert_eq!(outcome, Outcome::Finished(DeploymentStatus::Success));
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    let verdict = e.backend().verdict().cloned();
    assert!(
        matches!(&verdict, Some(Verdict::Enforcing(why)) if why.contains("sw-description.sig cannot be parsed")),
        "the probe's verdict and SWUpdate's reason: {verdict:?}"
    );
    assert_eq!((daemon.probes(), daemon.installs_started()), (1, 1));
    assert!(!daemon.spool.exists(), "stream mode spools nothing");
}

#[tokio::test]
async fn stream_mode_is_refused_when_swupdate_accepts_unsigned_images() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start_unsigned(&d);
    let img = image(1 << 20, 53);
    let cfg = SwupdateConfig {
        mode: SwupdateMode::Stream,
        payload_authenticated: true,
        ..daemon.config()
    };
    let swu = d.swu("refused", &img, "1.0", "dev");
    let target_before = std::fs::read(d.target()).unwrap();
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    common::device::assert_stopped_after_the_header(&e, img.len() as u64);
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("backend not ready")
            && log.contains("needs SWUpdate to enforce signed images (swupdate -k)")
            && log.contains("SWUpdate accepted an unsigned .swu in a dry run, so it does not enforce signed images")
            && log.contains("use mode"),
        "{log}"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"), "{h:?}");
    assert!(
        h.iter().any(|(s, sub)| s == "failure"
            && sub
                .as_deref()
                .is_some_and(|t| t.contains("does not enforce signed images"))),
        "the substate names the cause: {h:?}"
    );
    assert_eq!(daemon.probes(), 1, "{}", daemon.log_text());
    assert_eq!(
        daemon.installs_started(),
        0,
        "only the dry-run probe reached SWUpdate"
    );
    assert!(!d.copy().exists(), "nothing installed");
    assert_eq!(std::fs::read(d.target()).unwrap(), target_before);
}

#[tokio::test]
async fn auto_spools_for_a_swupdate_that_accepts_unsigned_images_when_a_key_is_set() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start_unsigned(&d);
    let img = image(3 << 20, 55);
    let swu = d.swu("auto-spool", &img, "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;
    // A slow download: the spool file is seen on disk while SWUpdate has had no run yet.
    sim.throttle(2 << 20).await;
    let cfg = SwupdateConfig {
        payload_authenticated: true,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg);
    // The deployment log is uploaded only on failure: the route is asserted on the
    // dashboard's substates, the spool and the daemon.
    let watcher = {
        let spool = daemon.spool.clone();
        let log = daemon.log.clone();
        tokio::spawn(async move {
            poll(Duration::from_secs(30), || async {
                if SwuDir::files_under(&spool).is_empty() {
                    return None;
                }
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Some(text.matches("Software update started").count())
            })
            .await
            .ok()
        })
    };
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(
        watcher.await.unwrap(),
        Some(1),
        "while the payload spooled, SWUpdate had seen only the probe"
    );
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    assert_eq!((daemon.probes(), daemon.installs_started()), (1, 1));
    assert!(spool_is_empty(&daemon), "the spool file is removed");
    assert_eq!(e.backend().verdict(), Some(&Verdict::NotEnforcing));
    let h = history(&sim, &dep, &dev.id).await;
    assert!(
        h.iter().any(|(s, sub)| s == "downloading"
            && sub
                .as_deref()
                .is_some_and(|t| t.contains("SWUpdate gets it once verified"))),
        "{h:?}"
    );
    assert!(
        h.iter().any(|(s, sub)| s == "installing"
            && sub.as_deref().is_some_and(|t| t.contains("rootfs.img"))),
        "SWUpdate's progress while the spool streams: {h:?}"
    );
}

#[tokio::test]
async fn auto_without_a_key_streams_with_a_warning_that_nothing_authenticates_the_payload() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start_unsigned(&d);
    let img = image(1 << 20, 57);
    let (outcome, e) = deploy_with(&sim, &dev, &d, &img, daemon.config()).await;
    assert_eq!(outcome, Outcome::Finished(DeploymentStatus::Success));
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    assert_eq!(e.backend().verdict(), Some(&Verdict::NotEnforcing));
    assert!(!daemon.spool.exists(), "streamed, not spooled");
    // The warning's text is checked where the log is uploaded: the failing deployment of
    // a_success_after_the_bridge_aborted_sets_ustate_failed takes the same route.
}

#[tokio::test]
async fn auto_streams_into_an_enforcing_swupdate_even_with_a_key() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(1 << 20, 59);
    let cfg = SwupdateConfig {
        payload_authenticated: true,
        ..daemon.config()
    };
    let (outcome, e) = deploy_with(&sim, &dev, &d, &img, cfg).await;
    assert_eq!(outcome, Outcome::Finished(DeploymentStatus::Success));
    assert!(e.backend().verdict().is_some_and(Verdict::enforcing));
    assert!(!daemon.spool.exists(), "streamed, not spooled");
}

#[tokio::test]
async fn spool_mode_installs_into_either_swupdate_after_the_checksum_matched() {
    for enforcing in [true, false] {
        let (sim, dev, d) = parts().await;
        let daemon = if enforcing {
            SwuDaemon::start(&d)
        } else {
            SwuDaemon::start_unsigned(&d)
        };
        let img = image(2 << 20, 61);
        let cfg = SwupdateConfig {
            mode: SwupdateMode::Spool,
            ..daemon.config()
        };
        let (outcome, e) = deploy_with(&sim, &dev, &d, &img, cfg).await;
        assert_eq!(
            outcome,
            Outcome::Finished(DeploymentStatus::Success),
            "enforcing {enforcing}"
        );
        assert_eq!(std::fs::read(d.copy()).unwrap(), img);
        assert_eq!(daemon.probes(), 0, "mode spool does not probe");
        assert_eq!(e.backend().verdict(), None);
        assert_eq!(daemon.installs_started(), 1);
        assert!(daemon.spool.is_dir(), "the spool directory was made");
        assert!(spool_is_empty(&daemon));
    }
}

#[tokio::test]
async fn spool_mode_never_lets_swupdate_see_a_payload_whose_checksum_mismatches() {
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start_unsigned(&d);
    let img = image(2 << 20, 63);
    let swu_path = d.swu("spool-flip", &img, "1.0", "dev");
    let swu = std::fs::read(&swu_path).unwrap();
    let target_before = std::fs::read(d.target()).unwrap();
    let artifact = d.artifact("release-2", &swu_path);
    // A byte of the image: SWUpdate itself would catch it too, had it seen it; in the
    // middle, so everything before it would have reached SWUpdate when streamed.
    let at = find(&artifact, &swu[..512]).unwrap() + swu.len() / 2;
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", artifact).await;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/corrupt",
            Some(json!({"offsets": [at]})),
        )
        .await;
    let cfg = SwupdateConfig {
        mode: SwupdateMode::Spool,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        daemon.runs_started(),
        0,
        "SWUpdate never had a run: {}",
        daemon.log_text()
    );
    assert!(!d.copy().exists());
    assert_eq!(std::fs::read(d.target()).unwrap(), target_before);
    assert!(spool_is_empty(&daemon), "the spool file is removed");
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("checksum mismatch")
            && log.contains("the spooled update was discarded; nothing reached SWUpdate"),
        "{log}"
    );
}

#[tokio::test]
async fn a_success_after_the_bridge_aborted_sets_ustate_failed() {
    // No key and a SWUpdate that installs unsigned images: auto streams (with its
    // warning). The .swu is followed by 1 MiB of padding, so SWUpdate reads its cpio
    // trailer and installs long before the payload's end; the padding's last byte is
    // corrupted, so the Mender checksum never matches. The bridge must undo the install.
    let (sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start_unsigned(&d);
    let img = image(1 << 20, 65);
    let swu_path = d.swu("late", &img, "1.0", "dev");
    let mut swu = std::fs::read(&swu_path).unwrap();
    let head = swu.len();
    swu.resize(head + (1 << 20), 0);
    std::fs::write(&swu_path, &swu).unwrap();
    let artifact = d.artifact("release-2", &swu_path);
    let at = find(&artifact, &swu[..512]).unwrap() + swu.len() - 1;
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", artifact).await;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/corrupt",
            Some(json!({"offsets": [at]})),
        )
        .await;
    let cfg = SwupdateConfig {
        ustate: true,
        ..daemon.config()
    };
    let mut e = engine(&dev, &sim, cfg);
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        std::fs::read(d.copy()).unwrap(),
        img,
        "SWUpdate did install it (this is what the bridge must undo)"
    );
    assert_eq!(
        e.backend().control().update_state().await.unwrap(),
        Some(mender_bridge_backends::swupdate::control::UpdateState::Failed),
        "ustate FAILED: the bootloader reverts it"
    );
    let log = deployment_log(&sim, &dep, &dev.id).await;
    assert!(
        log.contains("SWUpdate reported SUCCESS for an install the bridge aborted")
            && log.contains("ustate set to FAILED")
            && log.contains("WARNING")
            && log.contains("no ArtifactVerifyKey is set: nothing authenticates the payload"),
        "{log}"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"), "{h:?}");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// After SWUpdate installed (ustate INSTALLED: the bootloader would start the new software),
/// `ArtifactInstall_Leave` fails, or the bridge dies while it runs: the deployment ends as
/// a failure with ustate FAILED, so the bootloader keeps the old software.
async fn failure_after_swupdate_installed(kill: bool) {
    let (sim, dev, d) = parts().await;
    let env = uboot_env(&d);
    let daemon = SwuDaemon::start_with(&d, Some(&env));
    let swu = d.swu("leave", &image(256 << 10, 35), "1.0", "dev");
    let marker = d.path("leave-started");
    let script = leave_script(kill, &marker);
    let art = d.artifact_with(
        "release-2",
        &swu,
        None,
        &[("ArtifactInstall_Leave_01", &script)],
    );
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", art).await;
    let cfg = SwupdateConfig {
        reboot: true,
        ustate: true,
        ..daemon.config()
    };
    let e = engine(&dev, &sim, cfg.clone());
    let activated = || assert_eq!(ustate(&d), "ustate=1", "SWUpdate installed: INSTALLED");
    let restart = || engine(&dev, &sim, cfg);
    let outcome = run_or_kill_in_leave(e, kill, &marker, activated, restart).await;
    assert_eq!(outcome, Some(Outcome::Finished(DeploymentStatus::Failure)));
    assert_eq!(
        ustate(&d),
        "ustate=3",
        "rolled back: FAILED for the bootloader"
    );
    assert_one_final_still_release_1(&sim, &dep, &dev).await;
}

#[tokio::test]
async fn a_failing_artifact_install_leave_after_swupdate_installed_rolls_back() {
    failure_after_swupdate_installed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_artifact_install_leave_after_swupdate_installed_rolls_back() {
    failure_after_swupdate_installed(true).await;
}

/// `--stop-before ArtifactInstall_Enter` with SWUpdate: even where the route would stream
/// (an enforcing SWUpdate), the install spools, so SWUpdate gets nothing before the
/// `resume`; the resume hashes the kept file again and streams that descriptor. A kept
/// update changed on disk never reaches SWUpdate.
#[tokio::test]
async fn standalone_stop_after_the_download_spools_and_resume_installs() {
    use mender_bridge::deploy::standalone::{InstallOutcome, Standalone, StopPoint, Stops};
    let (_sim, dev, d) = parts().await;
    let daemon = SwuDaemon::start(&d);
    let img = image(2 << 20, 67);
    let swu = d.swu("stop", &img, "1.0", "dev");
    let art = dev.dir.path().join("release-2.mender");
    std::fs::write(&art, d.artifact("release-2", &swu)).unwrap();
    let target_before = std::fs::read(d.target()).unwrap();
    let standalone = || {
        Standalone::new(
            dev.store(),
            SwupdateBackend::new(daemon.config()),
            common::device::engine_config(&dev),
        )
    };
    let kept = || SwuDir::files_under(&daemon.spool);
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
    assert_eq!(daemon.installs_started(), 0, "{}", daemon.log_text());
    let files = kept();
    assert!(files.len() == 1, "{files:?}");
    assert!(!d.copy().exists());

    // Changed on disk: refused before SWUpdate runs, and removed.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&files[0], bytes).unwrap();
    let e = standalone().resume(&Stops::default()).await.unwrap_err();
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert_eq!(daemon.installs_started(), 0, "{}", daemon.log_text());
    assert_eq!(std::fs::read(d.target()).unwrap(), target_before);
    assert!(kept().is_empty(), "{:?}", kept());
    assert!(dev.store().standalone().unwrap().is_none());

    // Intact: the resume installs it.
    install(stop).await.unwrap();
    let done = standalone().resume(&Stops::default()).await.unwrap();
    assert!(
        matches!(
            done.outcome,
            InstallOutcome::RebootRequired | InstallOutcome::AwaitingCommit
        ),
        "{done:?}"
    );
    assert_eq!(daemon.installs_started(), 1);
    assert_eq!(std::fs::read(d.copy()).unwrap(), img);
    assert!(kept().is_empty(), "{:?}", kept());
}
