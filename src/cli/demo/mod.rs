//! `mender-bridge demo`: a whole over-the-air deployment on this machine, with nothing to
//! install. A local Mender-compatible server (the simulator, in process), a device with the
//! raw A/B backend on two file-backed slots (boot selection through shell commands, so no
//! bootloader tools are needed), a signed artifact built in process, and the deployment
//! engine taking it from `downloading` to `success` across a simulated reboot — with the
//! dashboard's view printed as the device reports.
//!
//! `--fallback` makes the new slot fail to boot (the bootloader falls back): the device
//! detects it and reports `failure` with its log. `--corrupt` has the server's storage flip
//! one bit of the payload: the reader refuses it, nothing is activated.

mod dashboard;
mod device;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::client::{Backoff, Client, ClientError};
use crate::deploy::engine::{Engine, Outcome};
use crate::deploy::store::Provides;
use crate::keys::{DeviceKey, KeyType};
use crate::setup;
use mender_artifact::writer::{
    write_artifact, ArtifactSpec, PayloadFile, SigningKey, WriteOptions,
};
use mender_artifact::Compression;
use mender_bridge_sim::{Server, SimConfig};

use dashboard::Dashboard;
use device::{DemoDevice, DeviceSettings};

type DynError = Box<dyn std::error::Error>;

const MIB: u64 = 1024 * 1024;
const DEVICE_TYPE: &str = "demo-device";
const OLD: &str = "demo-release-1";
const NEW: &str = "demo-release-2";
const MAC: &str = "02:00:5e:00:53:01";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the rootfs image in the artifact, in MiB.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub size_mib: u64,
    /// The new slot fails to boot and the bootloader falls back: the device reports failure.
    #[arg(long, conflicts_with = "corrupt")]
    pub fallback: bool,
    /// The server's storage flips one bit of the payload: the reader refuses the artifact.
    #[arg(long)]
    pub corrupt: bool,
    /// Keep the work directory (server state, slots, device store) and print its path.
    #[arg(long)]
    pub keep: bool,
}

/// A directory for this run, removed afterwards unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(keep: bool) -> std::io::Result<Self> {
        let mut tag = [0u8; 4];
        let _ = getrandom::fill(&mut tag);
        let path = std::env::temp_dir().join(format!(
            "mender-bridge-demo-{}-{}",
            std::process::id(),
            hex::encode(tag)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes the signed artifact; returns its path and the offset of the data member.
async fn build_artifact(
    dir: &std::path::Path,
    size: u64,
    key: &SigningKey,
    compression: Compression,
) -> Result<(PathBuf, u64), DynError> {
    let mut image = vec![0u8; size as usize];
    for chunk in image.chunks_mut(MIB as usize) {
        getrandom::fill(chunk).map_err(|e| format!("random bytes: {e}"))?;
    }
    let path = dir.join(format!("{NEW}.mender"));
    let mut out = tokio::fs::File::create(&path).await?;
    let opts = WriteOptions {
        compression,
        signing_key: Some(key.clone()),
        ..WriteOptions::default()
    };
    let file = PayloadFile::new("rootfs.img", size, std::io::Cursor::new(image));
    let summary = write_artifact(
        &mut out,
        &ArtifactSpec::rootfs(NEW, [DEVICE_TYPE]),
        vec![file],
        &opts,
    )
    .await?;
    tokio::io::AsyncWriteExt::flush(&mut out).await?;
    let data = summary
        .members
        .iter()
        .find(|m| m.name.starts_with("data/"))
        .map_or(0, |m| m.offset);
    Ok((path, data))
}

pub async fn run(args: Args) -> Result<ExitCode, DynError> {
    let work = WorkDir::create(args.keep)?;
    let dir = work.path.clone();
    let size = args.size_mib * MIB;
    println!("mender-bridge demo: one over-the-air deployment, end to end, on this machine\n");

    // The server.
    let server = Server::start(SimConfig::new("127.0.0.1:0".parse()?, dir.join("server"))).await?;
    let sim = server.sim().clone();
    println!(
        "[server]  local Mender-compatible server at {} (CA {})",
        server.base_url(),
        server.ca_path().display()
    );

    // The device, configured as a device is: mender.conf and mender-bridge.toml, loaded
    // and turned into its parts by the same code the daemon runs.
    let release_key = DeviceKey::generate(KeyType::P256)?;
    let signer = SigningKey::from_pem(&release_key.private_key().to_pem()?, "demo signing key")?;
    let slot_size = size + 4 * MIB;
    let dev = DemoDevice::create(
        &dir.join("device"),
        &DeviceSettings {
            server_url: server.base_url(),
            server_ca: server.ca_path(),
            verify_key_pem: &release_key.public_key_pem()?,
            device_type: DEVICE_TYPE,
            slot_size,
        },
    )?;
    println!(
        "[device]  raw A/B backend: slots a (running) and b, {} MiB files; boot selection by command",
        slot_size / MIB
    );
    println!(
        "[device]  configured by mender.conf and mender-bridge.toml in {}",
        dir.join("device").display()
    );
    let store = setup::store(dev.config());
    store.set_installed(&Provides::from([
        ("artifact_name".to_string(), OLD.to_string()),
        ("rootfs-image.version".to_string(), OLD.to_string()),
    ]))?;
    let device_key = setup::device_key(dev.config())?;
    let mut cc = setup::client_config(dev.config());
    // Retried quickly: the admin accepts the device a moment after its first request.
    cc.auth_retry = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        repeats: 1,
        max_tries: Some(20),
    };
    let identity = serde_json::Map::from_iter([("mac".to_string(), MAC.into())]);
    let client = || Client::new(cc.clone(), device_key.clone(), &identity);
    println!("[device]  running {OLD}; new Ed25519 device key; identity mac={MAC}");
    match client()?.authenticate().await {
        Err(ClientError::AuthRejected { .. }) => {
            println!("[device]  authentication: pending (a new device waits for the admin)")
        }
        Ok(()) => return Err("the server accepted an unknown device".into()),
        Err(e) => return Err(e.into()),
    }
    let device_id = sim
        .snapshot()
        .devices
        .keys()
        .next()
        .cloned()
        .ok_or("the server did not record the device")?;
    sim.accept(&device_id, None)?;
    println!("[admin]   accepted device {device_id}");

    // The release.
    let compression = if args.corrupt {
        Compression::None
    } else {
        Compression::Gzip
    };
    let (artifact, data_offset) = build_artifact(&dir, size, &signer, compression).await?;
    let artifact_size = std::fs::metadata(&artifact)?.len();
    server.upload_artifact(&artifact).await?;
    let deployment = sim.create_deployment("", NEW, std::slice::from_ref(&device_id), false)?;
    println!(
        "[admin]   uploaded {NEW}.mender ({:.1} MiB, {}, signed with ECDSA P-256) and deployed it",
        artifact_size as f64 / MIB as f64,
        compression.name()
    );
    if args.corrupt {
        let offset = data_offset + 512 + size / 2;
        sim.faults().corrupt_offsets.push(offset);
        println!(
            "[server]  storage fault: byte {offset} of the artifact is served with one bit flipped"
        );
    }
    println!();

    // The deployment, as the dashboard shows it.
    let start = Instant::now();
    let board = Dashboard::watch(sim.clone(), deployment.clone(), device_id.clone(), start);
    let mut engine = Engine::new(
        client()?,
        store.clone(),
        dev.backend()?,
        dev.engine_config()?,
    );
    let outcome = engine.check_update().await?;
    let outcome = if outcome == Outcome::RebootRequired {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if args.fallback {
            dev.fall_back()?;
            println!("  [device]   reboot (simulated): slot b does not come up; the bootloader falls back to slot a");
        } else {
            dev.boot_into("b")?;
            println!("  [device]   reboot (simulated): the bootloader starts slot b");
        }
        // A new process after the reboot resumes from the saved state.
        let mut engine = Engine::new(
            client()?,
            store.clone(),
            dev.backend()?,
            dev.engine_config()?,
        );
        engine.resume().await?.unwrap_or(Outcome::NoUpdate)
    } else {
        outcome
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    board.close().await;

    println!();
    let provides = store.installed()?.unwrap_or_default();
    let listed: Vec<String> = provides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match outcome {
        Outcome::Finished(s) => println!("result:   {s} in {:.2} s", start.elapsed().as_secs_f64()),
        other => println!("result:   {other:?}"),
    }
    println!("device:   provides {}", listed.join(", "));
    println!("slots:    {}", dev.describe()?);
    let data = sim.snapshot();
    if let Some(dd) = data
        .deployments
        .get(&deployment)
        .and_then(|d| d.devices.get(&device_id))
    {
        if !dd.log.is_empty() {
            println!("deployment log on the server:");
            for m in &dd.log {
                println!("  {} {:<5} {}", m.timestamp, m.level, m.message);
            }
        }
    }
    if args.keep {
        println!("\nwork directory kept: {}", dir.display());
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
