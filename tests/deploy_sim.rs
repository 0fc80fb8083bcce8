//! The deployment engine end to end: the simulator as the server, the raw A/B backend on
//! file-backed slots with a real U-Boot environment, a simulated reboot in between.
//! What the dashboard sees (the sim's status history) is checked at every step.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::sim::{full, TestSim};
use common::slots::SlotRig;
use hyper::Method;
use mender_bridge::api::DeploymentStatus;
use mender_bridge::artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
use mender_bridge::artifact::{Compression, ReadOptions};
use mender_bridge::client::{Backoff, Client, ClientConfig};
use mender_bridge::deploy::engine::{Engine, EngineConfig, Outcome};
use mender_bridge::deploy::scripts::ScriptRunner;
use mender_bridge::deploy::store::{Provides, Store};
use mender_bridge::keys::{DeviceKey, KeyType};
use mender_bridge_backends::raw::RawBackend;
use serde_json::{json, Value};

const DEVICE_TYPE: &str = "test-dev";
const SLOT_SIZE: usize = 8 << 20;

struct Device {
    dir: tempfile::TempDir,
    rig: SlotRig,
    key: DeviceKey,
    id: String,
}

fn image(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 3) as u8
        })
        .collect()
}

fn client_config(sim: &TestSim) -> ClientConfig {
    let mut c = ClientConfig::for_server(sim.handle.base_url());
    c.tls.server_certificate = Some(sim.handle.ca_path().to_path_buf());
    c.auth_retry = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        repeats: 1,
        max_tries: Some(50),
    };
    c.download.resume_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        repeats: 1,
        max_tries: None,
    };
    c
}

fn identity(mac: &str) -> serde_json::Map<String, Value> {
    serde_json::Map::from_iter([("mac".to_string(), Value::from(mac))])
}

impl Device {
    /// A device with slots, a store that says it runs `release-1`, accepted by the sim.
    async fn new(sim: &TestSim) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rig = SlotRig::new(&dir.path().join("slots"), SLOT_SIZE);
        let key = DeviceKey::generate(KeyType::Ed25519).unwrap();
        let store = Store::new(dir.path().join("store"));
        store
            .set_installed(&Provides::from([
                ("artifact_name".to_string(), "release-1".to_string()),
                ("rootfs-image.version".to_string(), "release-1".to_string()),
            ]))
            .unwrap();
        let mut d = Device {
            dir,
            rig,
            key,
            id: String::new(),
        };
        let c = d.client(sim);
        assert!(c.authenticate().await.is_err(), "pending first");
        let id = sim.device_id("02:00:00:00:10:01").await;
        sim.http
            .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
            .await;
        d.id = id;
        d
    }

    fn client(&self, sim: &TestSim) -> Client {
        Client::new(
            client_config(sim),
            self.key.clone(),
            &identity("02:00:00:00:10:01"),
        )
        .unwrap()
    }

    /// A fresh engine, as a (re)started process builds it.
    fn engine(&self, sim: &TestSim) -> Engine<RawBackend> {
        let cfg = EngineConfig {
            device_type: DEVICE_TYPE.into(),
            read: ReadOptions::default(),
            scripts: ScriptRunner {
                rootfs_dir: self.dir.path().join("rootfs-scripts"),
                artifact_dir: self.dir.path().join("store/scripts"),
                timeout: Duration::from_secs(10),
                retry_interval: Duration::from_millis(100),
                retry_timeout: Duration::from_secs(1),
            },
            artifact_info: self.dir.path().join("artifact_info"),
            retry_initial: Duration::from_millis(50),
            retry_cap: Duration::from_millis(500),
            progress_interval: Duration::from_millis(50),
            progress_step: 10,
        };
        Engine::new(
            self.client(sim),
            Store::new(self.dir.path().join("store")),
            RawBackend::new(self.rig.config.clone()),
            cfg,
        )
    }

    fn store(&self) -> Store {
        Store::new(self.dir.path().join("store"))
    }
}

/// Writes a gzip rootfs artifact around `img`, uploads it, deploys it to `device`.
async fn deploy(
    sim: &TestSim,
    device: &str,
    name: &str,
    img: &[u8],
    spec: Option<ArtifactSpec>,
) -> (String, u64) {
    let (dep, size, _) = deploy_with(sim, device, name, img, spec, WriteOptions::default()).await;
    (dep, size)
}

/// As [`deploy`], with write options; also returns the offset of the data member.
async fn deploy_with(
    sim: &TestSim,
    device: &str,
    name: &str,
    img: &[u8],
    spec: Option<ArtifactSpec>,
    opts: WriteOptions,
) -> (String, u64, u64) {
    let spec = spec.unwrap_or_else(|| ArtifactSpec::rootfs(name, [DEVICE_TYPE]));
    let file = PayloadFile::new(
        "rootfs.ext4",
        img.len() as u64,
        std::io::Cursor::new(img.to_vec()),
    );
    let mut out = Vec::new();
    let summary = write_artifact(&mut out, &spec, vec![file], &opts)
        .await
        .unwrap();
    let data_offset = summary
        .members
        .iter()
        .find(|m| m.name.starts_with("data/"))
        .unwrap()
        .offset;
    let size = out.len() as u64;
    let r = sim
        .http
        .send(
            Method::POST,
            "/api/sim/artifacts",
            &[("content-type", "application/octet-stream")],
            full(out),
        )
        .await;
    assert_eq!(r.status, 201, "upload: {}", r.text());
    let v = sim
        .http
        .manage_ok(
            Method::POST,
            "/deployments",
            Some(json!({"artifact_name": name, "devices": [device]})),
        )
        .await;
    (v["id"].as_str().unwrap().to_string(), size, data_offset)
}

/// The statuses the device reported, as the dashboard shows them.
async fn history(sim: &TestSim, dep: &str, dev: &str) -> Vec<(String, Option<String>)> {
    let v = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{dev}"),
            None,
        )
        .await;
    v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["source"] == "device")
        .map(|h| {
            (
                h["status"].as_str().unwrap().to_string(),
                h["substate"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn finals(h: &[(String, Option<String>)]) -> usize {
    h.iter()
        .filter(|(s, _)| matches!(s.as_str(), "success" | "failure" | "already-installed"))
        .count()
}

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
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/throttle",
            Some(json!({"bytes_per_sec": 1 << 20})),
        )
        .await;
    let mut engine = dev.engine(&sim);
    let task = tokio::spawn(async move { engine.check_update().await.unwrap() });
    // Wait until the device reports download progress, then abort on the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h = history(&sim, &dep, &dev.id).await;
        if h.iter().any(|(s, sub)| s == "downloading" && sub.is_some()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress reported: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}
