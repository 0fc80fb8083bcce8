//! The simulator's state and the server's rules that change it: admission of devices,
//! tokens, inventory, choosing a deployment for a device, status and log reports, download
//! links. Every change is persisted to `state.json` (atomically) before it is answered.
//!
//! This module holds the state itself ([`Sim`]: open, persist with [`Sim::mutate`], the
//! settings); the rules are split by what they change: `devices` (admission, tokens,
//! inventory), `deployments` (choosing one for a device, reports, the management side) and
//! `links` (stored artifacts and their signed download links).

mod deployments;
mod devices;
mod links;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::faults::Faults;
use crate::ids;
use crate::model::*;
use crate::persist::{read_optional, write_atomic};
use crate::records::{DownloadRecord, RequestRecord, Ring};

const STATE_FILE: &str = "state.json";
const SECRETS_FILE: &str = "secrets.json";
/// Largest state file read back.
const MAX_STATE_FILE: u64 = 256 * 1024 * 1024;

/// Why an operation was refused; the HTTP layer maps each to its status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

/// Outcome of an authentication request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Accepted: a fresh token.
    Token(String),
    /// New or awaiting a decision (401).
    Pending { device_id: String },
    /// Rejected (401).
    Rejected { device_id: String },
}

/// Outcome of a `next` poll.
#[derive(Debug, Clone, PartialEq)]
pub enum NextOutcome {
    Update(mender_api::DeploymentInstructions),
    NoUpdate,
}

#[derive(Serialize, Deserialize)]
struct Secrets {
    jwt_key: String,
    link_key: String,
}

/// A verified download link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub artifact_id: String,
    pub deployment_id: String,
    pub device_id: String,
}

/// The simulator's state: persisted data, secrets, and in-memory faults and records.
pub struct Sim {
    dir: PathBuf,
    base_url: String,
    data: Mutex<SimData>,
    faults: Mutex<Faults>,
    requests: Mutex<Ring<RequestRecord>>,
    downloads: Mutex<Ring<DownloadRecord>>,
    jwt_key: Vec<u8>,
    link_key: Vec<u8>,
    max_artifact_size: u64,
    connect: crate::connect::Registry,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    /// Loads (or starts) the state of `dir`; `base_url` is where the server is reachable,
    /// used in download links.
    pub fn open(dir: &Path, base_url: String, max_artifact_size: u64) -> Result<Sim, SimError> {
        let data = match read_optional(&dir.join(STATE_FILE), MAX_STATE_FILE)? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| SimError::State {
                path: dir.join(STATE_FILE),
                detail: e.to_string(),
            })?,
            None => SimData::default(),
        };
        let secrets_path = dir.join(SECRETS_FILE);
        let secrets: Secrets = match read_optional(&secrets_path, 64 * 1024)? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| SimError::State {
                path: secrets_path.clone(),
                detail: e.to_string(),
            })?,
            None => {
                let s = Secrets {
                    jwt_key: hex::encode(ids::random::<32>()?),
                    link_key: hex::encode(ids::random::<32>()?),
                };
                let raw = serde_json::to_vec(&s).map_err(|e| SimError::State {
                    path: secrets_path.clone(),
                    detail: e.to_string(),
                })?;
                write_atomic(&secrets_path, &raw, 0o600)?;
                s
            }
        };
        let key = |h: &str| {
            hex::decode(h).map_err(|e| SimError::State {
                path: secrets_path.clone(),
                detail: e.to_string(),
            })
        };
        Ok(Sim {
            dir: dir.to_path_buf(),
            base_url,
            data: Mutex::new(data),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Ring::default()),
            downloads: Mutex::new(Ring::default()),
            jwt_key: key(&secrets.jwt_key)?,
            link_key: key(&secrets.link_key)?,
            max_artifact_size,
            connect: Default::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Largest artifact accepted by the management API.
    pub fn max_artifact_size(&self) -> u64 {
        self.max_artifact_size
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A copy of the persisted data.
    pub fn snapshot(&self) -> SimData {
        lock(&self.data).clone()
    }

    pub fn settings(&self) -> Settings {
        lock(&self.data).settings.clone()
    }

    /// The deviceconnect links and terminal sessions (not persisted).
    pub fn connect(&self) -> &crate::connect::Registry {
        &self.connect
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn requests(&self) -> MutexGuard<'_, Ring<RequestRecord>> {
        lock(&self.requests)
    }

    pub fn downloads(&self) -> MutexGuard<'_, Ring<DownloadRecord>> {
        lock(&self.downloads)
    }

    /// Applies `f` to the data and persists the result when `f` succeeds. A failed `f`
    /// leaves the data as it was (it must not change anything before failing).
    pub fn mutate<R>(
        &self,
        f: impl FnOnce(&mut SimData) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let mut data = lock(&self.data);
        let r = f(&mut data)?;
        let raw =
            serde_json::to_vec_pretty(&*data).map_err(|e| OpError::Internal(e.to_string()))?;
        write_atomic(&self.dir.join(STATE_FILE), &raw, 0o644).map_err(|e| {
            tracing::error!("persisting the simulator state: {e}");
            OpError::Internal(format!("persisting state: {e}"))
        })?;
        Ok(r)
    }

    /// Changes the settings given.
    pub fn update_settings(
        &self,
        jwt_lifetime_secs: Option<u64>,
        next_v2: Option<bool>,
        link_lifetime_secs: Option<u64>,
    ) -> Result<Settings, OpError> {
        self.mutate(|d| {
            if let Some(v) = jwt_lifetime_secs {
                if v == 0 {
                    return Err(OpError::BadRequest("jwt_lifetime_secs must be > 0".into()));
                }
                d.settings.jwt_lifetime_secs = v;
            }
            if let Some(v) = next_v2 {
                d.settings.next_v2 = v;
            }
            if let Some(v) = link_lifetime_secs {
                d.settings.link_lifetime_secs = v;
            }
            Ok(d.settings.clone())
        })
    }
}

/// `DIR/artifacts`.
pub fn artifacts_dir(dir: &Path) -> PathBuf {
    dir.join("artifacts")
}

fn device_mut<'a>(d: &'a mut SimData, id: &str) -> Result<&'a mut Device, OpError> {
    d.devices
        .get_mut(id)
        .ok_or_else(|| OpError::NotFound(format!("device {id} not found")))
}

fn device_deployment_mut<'a>(
    d: &'a mut SimData,
    dep_id: &str,
    device_id: &str,
) -> Result<&'a mut DeviceDeployment, OpError> {
    d.deployments
        .get_mut(dep_id)
        .and_then(|dep| dep.devices.get_mut(device_id))
        .ok_or_else(|| OpError::NotFound(format!("deployment {dep_id} not found for this device")))
}
