//! Artifact scripts and activation through the engine with the raw backend:
//! - an artifact's scripts are stored and run only after the whole artifact verified; a
//!   deployment that fails before that runs no artifact script, neither its own nor the
//!   previous artifact's leftovers;
//! - once the backend activated the new slot, any failure (a failing
//!   `ArtifactInstall_Leave`, or the process killed while it runs) rolls back.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::device::{deploy, history, Device, DEVICE_TYPE, SLOT_SIZE};
use common::sim::TestSim;
use common::wait::until;
use common::{canary_scripts, listing};
use common::{finals, image};
use mender_api::DeploymentStatus;
use mender_artifact::writer::{ArtifactSpec, ScriptFile};
use mender_bridge::deploy::engine::Outcome;
use mender_bridge::deploy::store::Phase;

/// Deploys `spec` (with every artifact script, each touching a file in `canary`) around
/// `img`; the deployment must end in exactly one failure with no artifact script run.
async fn fails_running_no_script(
    sim: &TestSim,
    dev: &Device,
    mut spec: ArtifactSpec,
    img: &[u8],
    canary: &std::path::Path,
) {
    spec.scripts = canary_scripts(canary);
    let name = spec.name.clone();
    let (dep, _) = deploy(sim, &dev.id, &name, img, Some(spec)).await;
    let mut engine = dev.engine(sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        listing(canary),
        Vec::<String>::new(),
        "artifact scripts ran"
    );
    let h = history(sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
}

fn artifact_scripts_dir(dev: &Device) -> std::path::PathBuf {
    dev.dir.path().join("store/scripts")
}

fn assert_nothing_activated(dev: &Device, env_before: &str, a_before: &[u8]) {
    assert_eq!(dev.rig.env(), env_before, "the boot selection changed");
    assert_eq!(
        dev.rig.slot_sha256("a").as_slice(),
        a_before,
        "the running slot changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_failing_before_verification_runs_no_artifact_script() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let canary = dev.dir.path().join("canary");
    std::fs::create_dir_all(&canary).unwrap();
    let (env_before, a_before) = (dev.rig.env(), dev.rig.slot_sha256("a"));

    // The previous artifact left its scripts behind.
    let leftovers = artifact_scripts_dir(&dev);
    std::fs::create_dir_all(&leftovers).unwrap();
    for s in canary_scripts(&canary) {
        let p = leftovers.join(format!("{}_old", s.name));
        std::fs::write(&p, &s.content).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // 1. Fails its depends (before any payload byte).
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.depends_artifact_names = vec!["release-0".into()];
    fails_running_no_script(&sim, &dev, spec, &image(64 << 10, 41), &canary).await;

    // 2. Its image does not fit the slot: refused by the backend, after the header was read
    //    but long before the artifact verified.
    let spec = ArtifactSpec::rootfs("release-3", [DEVICE_TYPE]);
    fails_running_no_script(&sim, &dev, spec, &image(SLOT_SIZE + 4096, 42), &canary).await;
    let stored = listing(&leftovers);
    assert!(
        stored.iter().all(|n| n == "version"),
        "scripts of an unverified artifact are on disk: {stored:?}"
    );
    assert_nothing_activated(&dev, &env_before, &a_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_artifact_install_leave_rolls_back_the_activated_slot() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let (env_before, a_before) = (dev.rig.env(), dev.rig.slot_sha256("a"));
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![ScriptFile::new(
        "ArtifactInstall_Leave_01_fails",
        "#!/bin/sh\necho leave failed >&2\nexit 3\n",
    )];
    let (dep, _) = deploy(
        &sim,
        &dev.id,
        "release-2",
        &image(256 << 10, 43),
        Some(spec),
    )
    .await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let env = dev.rig.env();
    assert!(
        env.contains("mender_boot_part=2") && env.contains("upgrade_available=0"),
        "the activated slot was not rolled back: {env}"
    );
    assert_nothing_activated(&dev, &env_before, &a_before);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"));
    assert!(dev.store().deployment().unwrap().is_none());
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_artifact_install_leave_rolls_back_on_restart() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let (env_before, a_before) = (dev.rig.env(), dev.rig.slot_sha256("a"));
    let marker = dev.dir.path().join("leave-started");
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.scripts = vec![ScriptFile::new(
        "ArtifactInstall_Leave_01_slow",
        format!("#!/bin/sh\ntouch {}\nsleep 30\n", marker.display()),
    )];
    let (dep, _) = deploy(
        &sim,
        &dev.id,
        "release-2",
        &image(256 << 10, 44),
        Some(spec),
    )
    .await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.check_update().await });
    until(
        Duration::from_secs(20),
        "ArtifactInstall_Leave to run",
        || marker.exists(),
    )
    .await;
    task.abort(); // kill -9 while ArtifactInstall_Leave runs: the slot is activated
    let _ = task.await;
    assert!(dev.rig.env().contains("upgrade_available=1"), "activated");
    assert_eq!(
        dev.store().deployment().unwrap().unwrap().phase,
        Phase::Activated
    );

    let mut restarted = dev.engine(&sim);
    assert_eq!(
        restarted.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    assert_nothing_activated(&dev, &env_before, &a_before);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(finals(&h), 1, "{h:?}");
    assert!(dev.store().deployment().unwrap().is_none());
}
