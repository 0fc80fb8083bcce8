//! The deployment engine end to end: the simulator as the server, the raw A/B backend on
//! file-backed slots with a real U-Boot environment, a simulated reboot in between.
//! What the dashboard sees (the sim's status history) is checked at every step.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::device::{deploy, deploy_with, history, Device, DEVICE_TYPE};
use common::sim::TestSim;
use common::wait::wait_for;
use common::{finals, image};
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_artifact::writer::{ArtifactSpec, WriteOptions};
use mender_artifact::Compression;
use mender_bridge::deploy::engine::Outcome;
use serde_json::json;

#[tokio::test]
async fn full_deployment_with_reboot_to_success() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let a_before = dev.rig.slot_sha256("a");
    let img = image(3 << 20, 7);
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &img, None).await;

    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    assert_eq!(
        &dev.rig.slot("b")[..img.len()],
        &img[..],
        "slot b holds the image"
    );
    assert_eq!(
        dev.rig.slot_sha256("a"),
        a_before,
        "the running slot is untouched"
    );
    let env = dev.rig.env();
    assert!(
        env.contains("mender_boot_part=3") && env.contains("upgrade_available=1"),
        "{env}"
    );
    let h = history(&sim, &dep, &dev.id).await;
    let statuses: Vec<&str> = h.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"downloading"));
    assert_eq!(statuses.last(), Some(&"rebooting"));
    assert!(statuses.contains(&"installing"));
    assert!(
        h.iter().any(|(s, sub)| s == "downloading"
            && sub
                .as_deref()
                .is_some_and(|t| t.starts_with("downloading 100% 3.0/3.0 MiB"))),
        "live progress substates: {h:?}"
    );
    drop(engine);

    // The device reboots into b; a new process resumes and commits.
    dev.rig.boot_into("b");
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    assert!(dev.rig.env().contains("upgrade_available=0"));
    let provides = dev.store().installed().unwrap().unwrap();
    assert_eq!(provides["artifact_name"], "release-2");
    assert_eq!(provides["rootfs-image.version"], "release-2");
    assert!(
        dev.store().deployment().unwrap().is_none(),
        "nothing left in flight"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"));
    assert_eq!(finals(&h), 1, "exactly one final status: {h:?}");
    // Nothing more to do.
    assert_eq!(engine.check_update().await.unwrap(), Outcome::NoUpdate);
}

#[tokio::test]
async fn three_download_cuts_complete_without_restarting_the_write() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let img = image(4 << 20, 11);
    let (dep, size) = deploy(&sim, &dev.id, "release-2", &img, None).await;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/cut",
            Some(json!({"offsets": [size / 5, size / 2, size * 4 / 5]})),
        )
        .await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    let stats = engine.last_download().unwrap();
    assert_eq!(stats.resumes(), 3, "three resumes");
    assert!(
        stats.fetched() <= size + size / 100,
        "fetched {} for an artifact of {size}",
        stats.fetched()
    );
    assert_eq!(&dev.rig.slot("b")[..img.len()], &img[..]);
    assert!(history(&sim, &dep, &dev.id)
        .await
        .iter()
        .all(|(s, _)| s != "failure"));
}

#[tokio::test]
async fn unmet_depends_fail_before_any_byte_is_written() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let b_before = dev.rig.slot_sha256("b");
    let env_before = dev.rig.env();
    let mut spec = ArtifactSpec::rootfs("release-2", [DEVICE_TYPE]);
    spec.depends_artifact_names = vec!["release-0".into()];
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &image(1 << 20, 3), Some(spec)).await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(dev.rig.slot_sha256("b"), b_before, "not a byte written");
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"));
    assert_eq!(finals(&h), 1);
    let log = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{}/log", dev.id),
            None,
        )
        .await;
    let text = log.to_string();
    assert!(
        text.contains("artifact_name") && text.contains("release-0"),
        "{text}"
    );
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

#[tokio::test]
async fn abort_mid_download_stops_without_activating_or_reporting() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let env_before = dev.rig.env();
    let img = image(3 << 20, 5);
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &img, None).await;
    sim.throttle(1 << 20).await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.check_update().await.unwrap() });
    // Wait until the device reports download progress, then abort on the server.
    wait_for(Duration::from_secs(10), "progress reported", || async {
        let h = history(&sim, &dep, &dev.id).await;
        if h.iter().any(|(s, sub)| s == "downloading" && sub.is_some()) {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
    sim.http
        .manage_ok(Method::POST, &format!("/deployments/{dep}/abort"), None)
        .await;
    let before_abort = history(&sim, &dep, &dev.id).await.len();
    assert_eq!(task.await.unwrap(), Outcome::Aborted);
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    assert!(dev.store().deployment().unwrap().is_none());
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(
        h.len(),
        before_abort,
        "nothing reported after the abort: {h:?}"
    );
    assert_eq!(finals(&h), 0);
}

#[tokio::test]
async fn corrupt_payload_fails_with_the_log_and_activates_nothing() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let env_before = dev.rig.env();
    let img = image(2 << 20, 9);
    let opts = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let (dep, _, data) = deploy_with(&sim, &dev.id, "release-2", &img, None, opts).await;
    // A storage fault flips one bit in the middle of the image, in every download.
    let offset = data + 512 + (1 << 20);
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/corrupt",
            Some(json!({"offsets": [offset]})),
        )
        .await;
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(dev.rig.env(), env_before, "nothing activated");
    let b = dev.rig.slot("b");
    assert!(
        b.len() < img.len() || b[..img.len()] != img[..],
        "the slot never holds the complete image"
    );
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("failure"));
    assert_eq!(finals(&h), 1);
    let log = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{}/log", dev.id),
            None,
        )
        .await
        .to_string();
    assert!(
        log.contains("checksum mismatch") && log.contains("data/0000/rootfs.ext4"),
        "{log}"
    );
    // No verify key here: the log says that nothing but the connection vouched for it.
    assert!(
        log.contains("unsigned and no ArtifactVerifyKey is configured"),
        "{log}"
    );
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

#[tokio::test]
async fn the_artifact_already_installed_is_reported_as_such_without_a_download() {
    use mender_api::{ArtifactSource, DeploymentArtifact, DeploymentInstructions};
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    // A deployment of the artifact the device already runs. The sim itself answers 204
    // for that (as the real server does), so the instructions are handed over directly, as
    // a server that re-offers it would send them.
    let (dep, _) = deploy(&sim, &dev.id, "release-1", &image(1 << 20, 31), None).await;
    let env_before = dev.rig.env();
    let b_before = dev.rig.slot_sha256("b");
    let instr = DeploymentInstructions {
        id: dep.clone(),
        artifact: DeploymentArtifact {
            id: String::new(),
            artifact_name: "release-1".into(),
            source: ArtifactSource {
                uri: "https://127.0.0.1:9/never-fetched".into(),
                expire: None,
                method: None,
            },
            device_types_compatible: vec![DEVICE_TYPE.into()],
        },
        update_control_map: None,
    };
    let mut engine = dev.engine(&sim);
    assert_eq!(
        engine.deploy(instr).await.unwrap(),
        Outcome::Finished(DeploymentStatus::AlreadyInstalled)
    );
    assert!(engine.last_download().is_none(), "nothing downloaded");
    assert_eq!(dev.rig.env(), env_before);
    assert_eq!(dev.rig.slot_sha256("b"), b_before);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(
        h.last().map(|(s, _)| s.as_str()),
        Some("already-installed"),
        "{h:?}"
    );
    assert_eq!(finals(&h), 1);
}
