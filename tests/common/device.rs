//! A device for engine tests: file-backed A/B slots with a real U-Boot environment, a
//! store that says it runs `release-1`, a key the simulator has accepted; and helpers to
//! deploy artifacts through the simulator and read what the dashboard shows.

use std::path::Path;
use std::time::Duration;

use super::sim::TestSim;
use super::slots::SlotRig;
use super::wait::until;
use hyper::Method;
use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
use mender_artifact::ReadOptions;
use mender_bridge::client::{Backoff, Client, ClientConfig};
use mender_bridge::deploy::engine::{Engine, EngineConfig, Outcome};
use mender_bridge::deploy::scripts::ScriptRunner;
use mender_bridge::deploy::store::{Provides, Store};
use mender_bridge::keys::{DeviceKey, KeyType};
use mender_bridge_backends::raw::RawBackend;
use mender_bridge_backends::Backend;
use serde_json::Value;

pub use super::DEVICE_TYPE;
pub const SLOT_SIZE: usize = 8 << 20;

pub struct Device {
    pub dir: tempfile::TempDir,
    pub rig: SlotRig,
    pub key: DeviceKey,
    pub id: String,
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

    /// A fresh engine over the raw A/B backend, as a (re)started process builds it.
    pub fn engine(&self, sim: &TestSim) -> Engine<RawBackend> {
        self.engine_with(sim, RawBackend::new(self.rig.config.clone()))
    }

    /// A fresh engine over `backend` with the device's client, store and scripts, as a
    /// (re)started process builds it.
    pub fn engine_with<B: Backend>(&self, sim: &TestSim, backend: B) -> Engine<B> {
        Engine::new(self.client(sim), self.store(), backend, engine_config(self))
    }

    pub fn store(&self) -> Store {
        Store::new(self.dir.path().join("store"))
    }
}

/// The engine settings of a device's engine (and its standalone operations): its scripts,
/// short retries and progress intervals.
pub fn engine_config(dev: &Device) -> EngineConfig {
    let dir = dev.dir.path();
    EngineConfig {
        device_type: DEVICE_TYPE.into(),
        read: ReadOptions::default(),
        scripts: ScriptRunner {
            rootfs_dir: dir.join("rootfs-scripts"),
            artifact_dir: dir.join("store/scripts"),
            timeout: Duration::from_secs(10),
            retry_interval: Duration::from_millis(100),
            retry_timeout: Duration::from_secs(1),
        },
        artifact_info: dir.join("artifact_info"),
        retry_initial: Duration::from_millis(50),
        retry_cap: Duration::from_millis(500),
        progress_interval: Duration::from_millis(50),
        progress_step: 10,
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
    sim.upload(out).await;
    (sim.deploy(name, device).await, size, data_offset)
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

/// Waits (at most `limit`) until `dep` on `dev` has a final status; returns the history
/// then. The timeout message names `what` (a [`super::wait::Lazy`] can add a log tail).
pub async fn wait_final(
    sim: &TestSim,
    dep: &str,
    dev: &str,
    limit: Duration,
    what: impl std::fmt::Display,
) -> Vec<(String, Option<String>)> {
    super::wait::wait_for(limit, what, || async {
        let h = history(sim, dep, dev).await;
        if super::finals(&h) > 0 {
            Ok(h)
        } else {
            Err(h)
        }
    })
    .await
}

/// The statuses of `history` in order, consecutive repeats (progress substates) folded:
/// `[downloading, installing, success]` for an install without reboot.
pub fn status_sequence(history: &[(String, Option<String>)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (s, _) in history {
        if out.last() != Some(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The statuses the device reported for the deployment, in order.
pub async fn statuses(sim: &TestSim, dep: &str, dev: &str) -> Vec<String> {
    history(sim, dep, dev)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// The `ArtifactInstall_Leave_01` script of the failure-after-activation scenarios: with
/// `kill`, it touches `marker` and sleeps while the test kills the bridge; else it fails.
pub fn leave_script(kill: bool, marker: &Path) -> String {
    if kill {
        format!("#!/bin/sh\ntouch {}\nsleep 30\n", marker.display())
    } else {
        "#!/bin/sh\nexit 3\n".to_string()
    }
}

/// Runs the deployment with `e`. With `kill`: once `marker` shows that
/// `ArtifactInstall_Leave` runs, the engine's task is aborted (`kill -9`), `activated`
/// checks what the backend had done by then, and the engine `restart` builds resumes.
pub async fn run_or_kill_in_leave<B>(
    mut e: Engine<B>,
    kill: bool,
    marker: &Path,
    activated: impl FnOnce(),
    restart: impl FnOnce() -> Engine<B>,
) -> Option<Outcome>
where
    B: Backend + Send + Sync + 'static,
{
    if kill {
        kill_when(e, 60, "ArtifactInstall_Leave to run", || marker.exists()).await;
        activated();
        restart().resume().await.unwrap()
    } else {
        Some(e.check_update().await.unwrap())
    }
}

/// Runs the deployment with `e` in a task and kills it once `cond` holds (at most `secs`):
/// the task is aborted, so no engine code runs after the cut, as after `kill -9`.
pub async fn kill_when<B>(mut e: Engine<B>, secs: u64, what: &str, cond: impl FnMut() -> bool)
where
    B: Backend + Send + Sync + 'static,
{
    let task = tokio::spawn(async move { e.check_update().await.unwrap() });
    until(Duration::from_secs(secs), what, cond).await;
    task.abort();
    assert!(task.await.is_err());
}

/// `dep` ended with exactly one final status and the device still runs `release-1`.
pub async fn assert_one_final_still_release_1(sim: &TestSim, dep: &str, dev: &Device) {
    let h = history(sim, dep, &dev.id).await;
    assert_eq!(super::finals(&h), 1, "{h:?}");
    assert_eq!(
        dev.store().installed().unwrap().unwrap()["artifact_name"],
        "release-1"
    );
}

/// A backend's preflight refused: it runs once the verified header named the payload type
/// (issue 12 routes by it), so the artifact download was opened for the header and stopped
/// there, far short of the `payload` bytes.
pub fn assert_stopped_after_the_header<B: Backend>(e: &Engine<B>, payload: u64) {
    let delivered = e.last_download().map_or(0, |d| d.delivered());
    assert!(
        delivered < payload / 4,
        "{delivered} bytes read (payload {payload}) before the preflight refused"
    );
}
