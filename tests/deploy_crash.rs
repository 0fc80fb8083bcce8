//! The process dies at each step of a deployment and starts again: every run must end with
//! exactly one final status on the server, and the running slot stays what it was unless
//! the new one was committed.
//!
//! The "kill" is the abort of the task running the engine: no engine code runs after the
//! cut, exactly as after `kill -9`. The store writes are synchronous atomic replacements, so
//! an abort between two awaits leaves what a kill would leave. A new engine (a new process)
//! then resumes from the store.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::device::{deploy, history, Device, DEVICE_TYPE};
use common::sim::TestSim;
use common::wait::wait_for;
use common::{finals, image};
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_artifact::writer::{ArtifactSpec, ScriptFile};
use mender_bridge::deploy::engine::Outcome;
use mender_bridge::deploy::store::Phase;
use serde_json::json;

/// Waits until the dashboard shows `pred`, or fails after 10 s.
async fn wait_history(
    sim: &TestSim,
    dep: &str,
    dev: &str,
    pred: impl Fn(&[(String, Option<String>)]) -> bool,
) {
    wait_for(Duration::from_secs(10), "the history", || async {
        let h = history(sim, dep, dev).await;
        if pred(&h) {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
}

async fn fail_status_reports(sim: &TestSim, count: u32) {
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/fail",
            Some(json!({"route": "status", "count": count, "status": 503})),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_download_ends_in_one_failure_and_nothing_activated() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let a_before = dev.rig.slot_sha256("a");
    let env_before = dev.rig.env();
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &image(3 << 20, 21), None).await;
    sim.throttle(1 << 20).await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.check_update().await });
    wait_history(&sim, &dep, &dev.id, |h| {
        h.iter().any(|(s, sub)| s == "downloading" && sub.is_some())
    })
    .await;
    task.abort();
    let _ = task.await;
    sim.clear_faults().await;
    assert_eq!(
        dev.store().deployment().unwrap().unwrap().phase,
        Phase::Installing
    );

    let mut restarted = dev.engine(&sim);
    assert_eq!(
        restarted.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    assert_eq!(dev.rig.slot_sha256("a"), a_before);
    assert!(dev.store().deployment().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_activation_before_the_reboot_rolls_back_to_one_failure() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let a_before = dev.rig.slot_sha256("a");
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &image(1 << 20, 22), None).await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    assert!(dev.rig.env().contains("upgrade_available=1"));
    drop(engine); // dies before rebooting: still running slot a

    let mut restarted = dev.engine(&sim);
    assert_eq!(
        restarted.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    assert_rolled_back(&dev);
    assert_eq!(dev.rig.slot_sha256("a"), a_before);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// The boot selection is back on the running slot (2), off trial.
#[track_caller]
fn assert_rolled_back(dev: &Device) {
    let env = dev.rig.env();
    assert!(
        env.contains("mender_boot_part=2") && env.contains("upgrade_available=0"),
        "rolled back: {env}"
    );
}

/// A device that installed `release-2` and rebooted into it; the resume is the caller's.
async fn installed_and_rebooted(
    sim: &TestSim,
    seed: u64,
    spec: Option<ArtifactSpec>,
) -> (Device, String) {
    let dev = Device::new(sim).await;
    let (dep, _) = deploy(sim, &dev.id, "release-2", &image(1 << 20, seed), spec).await;
    let mut engine = dev.engine(sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    drop(engine);
    dev.rig.boot_into("b");
    (dev, dep)
}

/// Waits until the backend has committed (the trial flag is cleared).
/// Polls the U-Boot environment (a blocking `fw_printenv`) until the commit shows. The
/// tests run on a multi-thread runtime: the engine task, which may be inside `fw_setenv`
/// holding the tools' global lock while it waits to be fed its script, is never starved by
/// this blocking poll.
async fn wait_committed(dev: &Device) {
    wait_for(Duration::from_secs(10), "the commit", || async {
        dev.rig.env().contains("upgrade_available=0")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_commit_ends_in_one_success() {
    let sim = TestSim::start().await;
    let (dev, dep) = installed_and_rebooted(&sim, 23, None).await;

    // After the reboot the pre-commit report is not taken; the process dies while retrying.
    fail_status_reports(&sim, 1000).await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.resume().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    let _ = task.await;
    assert_eq!(
        dev.store().deployment().unwrap().unwrap().phase,
        Phase::Committing
    );
    assert!(
        dev.rig.env().contains("upgrade_available=1"),
        "not committed yet"
    );

    sim.clear_faults().await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(dev.rig.env().contains("upgrade_available=0"));
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-2"
    );
}

/// An artifact whose `ArtifactCommit_Leave` script sleeps: the window after the backend
/// committed and before the record says so.
fn slow_commit_spec() -> ArtifactSpec {
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![ScriptFile::new(
        "ArtifactCommit_Leave_01_slow",
        "#!/bin/sh\nsleep 1\n",
    )];
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_the_commit_does_not_roll_back_a_good_update() {
    let sim = TestSim::start().await;
    let (dev, dep) = installed_and_rebooted(&sim, 24, Some(slow_commit_spec())).await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.resume().await });
    wait_committed(&dev).await;
    task.abort(); // during the Leave script: committed, record still `Committing`
    let _ = task.await;
    assert_eq!(
        dev.store().deployment().unwrap().unwrap().phase,
        Phase::Committing
    );

    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    let env = dev.rig.env();
    assert!(
        env.contains("mender_boot_part=3") && env.contains("upgrade_available=0"),
        "no rollback: {env}"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_final_report_is_refused_reports_success_once_later() {
    let sim = TestSim::start().await;
    let (dev, dep) = installed_and_rebooted(&sim, 25, Some(slow_commit_spec())).await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.resume().await });
    // While the commit script sleeps, the server starts refusing status reports.
    wait_committed(&dev).await;
    fail_status_reports(&sim, 1000).await;
    wait_for(Duration::from_secs(10), "the final report", || async {
        dev.store().deployment().unwrap().map(|r| r.phase) == Some(Phase::ReportSuccess)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    let _ = task.await;
    assert_eq!(
        finals(&history(&sim, &dep, &dev.id).await),
        0,
        "not reported yet"
    );

    sim.clear_faults().await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(dev.store().deployment().unwrap().is_none());
}

/// A deployment record that cannot be read (disk corruption) is moved aside, the backend
/// rolls back, the deployment gets its failure when its id can still be read, and the
/// device takes the next deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_deployment_record_is_moved_aside_rolled_back_and_the_next_deployment_runs() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let a_before = dev.rig.slot_sha256("a");
    let record = dev.dir.path().join("store/deployment.json");

    // 1. Activated, then the record is damaged but its id is still legible.
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &image(256 << 10, 26), None).await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    drop(engine);
    std::fs::write(&record, format!(r#"{{"id":"{dep}","phase":"garbled"}}"#)).unwrap();
    let mut restarted = dev.engine(&sim);
    assert_eq!(
        restarted.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    assert_rolled_back(&dev);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    let (_, sub) = h.last().unwrap();
    assert!(
        sub.as_deref().unwrap_or("").contains("corrupt"),
        "the failure names the cause: {h:?}"
    );
    assert!(!record.exists());
    assert!(dev
        .dir
        .path()
        .join("store/deployment.json.corrupt")
        .exists());

    // 2. Activated, then the record is unreadable garbage: rolled back, nothing to report.
    let (dep, _) = deploy(&sim, &dev.id, "release-3", &image(256 << 10, 27), None).await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    drop(engine);
    std::fs::write(&record, b"\x00\x01garbage{").unwrap();
    let mut restarted = dev.engine(&sim);
    restarted.resume().await.unwrap();
    assert_rolled_back(&dev);
    assert!(!record.exists());
    assert_eq!(dev.rig.slot_sha256("a"), a_before);

    // The server still offers release-3: the device takes it again, from the start.
    assert_eq!(
        restarted.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(
        h.last().map(|(s, _)| s.as_str()),
        Some("rebooting"),
        "{h:?}"
    );
}
