//! A local Mender-compatible server (the simulator): the device API as the real server
//! behaves (`../shared/docs/PROTOCOL.md`), presigned artifact downloads, and a JSON
//! management API under `/api/sim/` to accept devices, upload artifacts, deploy, read what
//! devices reported and inject faults. HTTPS with a CA it generates (`DIR/ca.pem`).
//! deviceconnect (`connect/`): devices open the WebSocket route, and the management API
//! opens remote shells on them (`/api/sim/devices/{id}/shell`).
//!
//! Tampering, for attack tests: `PUT /api/sim/artifacts/{id}/content` replaces the stored
//! bytes of an uploaded artifact with any body, unchecked; its record (name, device types)
//! stays as uploaded and downloads serve the new bytes, as a compromised object store, CDN
//! or TLS-terminating middlebox would (see `artifacts.rs`).
//!
//! In-process use (tests, `demo`):
//!
//! ```no_run
//! # async fn f() -> Result<(), mender_bridge_sim::SimError> {
//! use mender_bridge_sim::{Server, SimConfig};
//! let handle = Server::start(SimConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/sim".into())).await?;
//! println!("ServerURL {} ServerCertificate {}", handle.base_url(), handle.ca_path().display());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod artifacts;
pub mod auth;
mod call;
pub mod connect;
mod deployments;
mod device_auth;
mod download;
mod error;
pub mod faults;
mod http;
mod ids;
mod inventory;
pub mod jwt;
mod manage;
pub mod model;
mod persist;
pub mod records;
mod routes;
mod server;
mod stall;
pub mod state;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use download::{parse_range, RangeRequest};
pub use error::SimError;
pub use state::{OpError, Sim};

/// Path prefix of presigned download links.
pub const DOWNLOAD_PREFIX: &str = "/download/artifacts";

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// State directory: CA and certificates, secrets, `state.json`, artifacts.
    pub state_dir: PathBuf,
    /// Device token lifetime; `None` keeps the persisted setting (default 604800 s).
    pub jwt_lifetime_secs: Option<u64>,
    /// Whether POST v2 `next` exists; `None` keeps the persisted setting (default on).
    pub next_v2: Option<bool>,
    /// Download link lifetime; `None` keeps the persisted setting (default 86400 s).
    pub link_lifetime_secs: Option<u64>,
    /// Largest artifact the management API accepts.
    pub max_artifact_size: u64,
}

impl SimConfig {
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        SimConfig {
            listen,
            state_dir,
            jwt_lifetime_secs: None,
            next_v2: None,
            link_lifetime_secs: None,
            max_artifact_size: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// Starts simulators.
pub struct Server;

impl Server {
    /// Loads or creates the state and TLS material, binds, and serves in the background
    /// on the current Tokio runtime.
    pub async fn start(config: SimConfig) -> Result<ServerHandle, SimError> {
        let dir = &config.state_dir;
        std::fs::create_dir_all(dir).map_err(|e| SimError::io("creating", dir, e))?;
        let tls = tls::load_or_create(dir, Some(config.listen.ip()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let host = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let base_url = format!("https://{host}:{}", addr.port());
        let sim = Sim::open(dir, base_url.clone(), config.max_artifact_size)?;
        if config.jwt_lifetime_secs.is_some()
            || config.next_v2.is_some()
            || config.link_lifetime_secs.is_some()
        {
            sim.update_settings(
                config.jwt_lifetime_secs,
                config.next_v2,
                config.link_lifetime_secs,
            )
            .map_err(|e| SimError::State {
                path: dir.clone(),
                detail: e.to_string(),
            })?;
        }
        let sim = Arc::new(sim);
        let (tx, rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
        let task = tokio::spawn(server::serve(listener, acceptor, sim.clone(), rx));
        tracing::info!(%addr, ca = %tls.ca_path.display(), "simulator listening");
        Ok(ServerHandle {
            addr,
            base_url,
            ca_path: tls.ca_path,
            sim,
            shutdown: tx,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops accepting connections.
pub struct ServerHandle {
    addr: SocketAddr,
    base_url: String,
    ca_path: PathBuf,
    sim: Arc<Sim>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`: the devices' `ServerURL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA certificate devices must trust (`ServerCertificate`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The state, for in-process inspection and management.
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Adds an artifact file (checked with the verifying reader), as the management API's
    /// upload does.
    pub async fn upload_artifact(&self, path: &Path) -> Result<model::ArtifactRecord, OpError> {
        artifacts::upload_file(&self.sim, path).await
    }

    /// Stops accepting, lets open connections finish briefly, and waits for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.sim.connect().close_all();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Serves until the task ends or `stop` completes (the CLI passes Ctrl-C).
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) {
        if let Some(task) = self.task.take() {
            tokio::pin!(task);
            tokio::select! {
                _ = &mut task => {}
                _ = stop => {
                    let _ = self.shutdown.send(true);
                    self.sim.connect().close_all();
                    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                }
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.sim.connect().close_all();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
