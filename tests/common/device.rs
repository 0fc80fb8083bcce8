//! A device for engine tests: file-backed A/B slots with a real U-Boot environment, a
//! store that says it runs `release-1`, a key the simulator has accepted; and helpers to
//! deploy artifacts through the simulator and read what the dashboard shows.

use std::time::Duration;

use super::sim::{full, TestSim};
use super::slots::SlotRig;
use hyper::Method;
use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
use mender_artifact::ReadOptions;
use mender_bridge::client::{Backoff, Client, ClientConfig};
use mender_bridge::deploy::engine::{Engine, EngineConfig};
use mender_bridge::deploy::scripts::ScriptRunner;
use mender_bridge::deploy::store::{Provides, Store};
use mender_bridge::keys::{DeviceKey, KeyType};
use mender_bridge_backends::raw::RawBackend;
use serde_json::{json, Value};

pub const DEVICE_TYPE: &str = "test-dev";
pub const SLOT_SIZE: usize = 8 << 20;

pub struct Device {
    pub dir: tempfile::TempDir,
    pub rig: SlotRig,
    pub key: DeviceKey,
    pub id: String,
}

pub fn image(len: usize, seed: u32) -> Vec<u8> {
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

pub fn client_config(sim: &TestSim) -> ClientConfig {
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

pub fn identity(mac: &str) -> serde_json::Map<String, Value> {
    serde_json::Map::from_iter([("mac".to_string(), Value::from(mac))])
}

impl Device {
    /// A device with slots, a store that says it runs `release-1`, accepted by the sim.
    pub async fn new(sim: &TestSim) -> Self {
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

    pub fn client(&self, sim: &TestSim) -> Client {
        Client::new(
            client_config(sim),
            self.key.clone(),
            &identity("02:00:00:00:10:01"),
        )
        .unwrap()
    }

    /// A fresh engine, as a (re)started process builds it.
    pub fn engine(&self, sim: &TestSim) -> Engine<RawBackend> {
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

    pub fn store(&self) -> Store {
        Store::new(self.dir.path().join("store"))
    }
}

/// Writes a gzip rootfs artifact around `img`, uploads it, deploys it to `device`.
pub async fn deploy(
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
pub async fn deploy_with(
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
pub async fn history(sim: &TestSim, dep: &str, dev: &str) -> Vec<(String, Option<String>)> {
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

pub fn finals(h: &[(String, Option<String>)]) -> usize {
    h.iter()
        .filter(|(s, _)| matches!(s.as_str(), "success" | "failure" | "already-installed"))
        .count()
}
