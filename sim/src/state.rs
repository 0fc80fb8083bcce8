//! The simulator's state and the server's rules that change it: admission of devices,
//! tokens, inventory, choosing a deployment for a device, status and log reports, download
//! links. Every change is persisted to `state.json` (atomically) before it is answered.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::auth::DevicePublicKey;
use super::error::SimError;
use super::faults::Faults;
use super::ids::{self, now, now_rfc3339};
use super::jwt::{self, Claims, TokenError};
use super::model::*;
use super::persist::{read_optional, write_atomic};
use super::records::{DownloadRecord, RequestRecord, Ring};
use mender_api::{
    inventory, rfc3339, Attribute, AuthRequest, DeploymentLog, DeploymentStatus, StatusReport,
};

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

    // ----- device admission and tokens -----

    /// Handles an auth request whose signature already verified with `key`.
    pub fn authenticate(
        &self,
        req: &AuthRequest,
        key: &DevicePublicKey,
    ) -> Result<AuthOutcome, OpError> {
        let identity = req
            .canonical_identity()
            .map_err(|e| OpError::BadRequest(e.to_string()))?;
        let identity_data: serde_json::Value = serde_json::from_str(&identity)
            .map_err(|e| OpError::BadRequest(format!("id_data: {e}")))?;
        let pubkey = key.canonical_pem();
        let kind = key.kind();
        let jwt_key = self.jwt_key.clone();
        self.mutate(|d| {
            let now_s = now_rfc3339();
            let lifetime = d.settings.jwt_lifetime_secs;
            let device_id = match d.devices.values().find(|dev| dev.identity == identity) {
                Some(dev) => dev.id.clone(),
                None => {
                    let id = ids::uuid();
                    tracing::info!(device = %id, identity = %identity, "new device (pending)");
                    d.devices.insert(
                        id.clone(),
                        Device {
                            id: id.clone(),
                            identity: identity.clone(),
                            identity_data,
                            auth_sets: Vec::new(),
                            inventory: Vec::new(),
                            created: now_s.clone(),
                            inventory_updated: None,
                            last_auth: None,
                            auth_requests: 0,
                        },
                    );
                    id
                }
            };
            let dev = d
                .devices
                .get_mut(&device_id)
                .ok_or_else(|| OpError::Internal("device vanished".into()))?;
            dev.last_auth = Some(now_s.clone());
            dev.auth_requests += 1;
            let idx = match dev.auth_sets.iter().position(|a| a.pubkey == pubkey) {
                Some(i) => i,
                None => {
                    dev.auth_sets.push(AuthSet {
                        id: ids::uuid(),
                        pubkey: pubkey.clone(),
                        key_type: kind.clone(),
                        status: AuthStatus::Pending,
                        created: now_s.clone(),
                    });
                    dev.auth_sets.len() - 1
                }
            };
            match dev.auth_sets[idx].status {
                AuthStatus::Pending => Ok(AuthOutcome::Pending { device_id }),
                AuthStatus::Rejected => Ok(AuthOutcome::Rejected { device_id }),
                AuthStatus::Accepted | AuthStatus::Preauthorized => {
                    accept_set(dev, idx);
                    let iat = now();
                    let claims = Claims {
                        jti: dev.auth_sets[idx].id.clone(),
                        sub: device_id,
                        iss: "Mender".into(),
                        iat,
                        exp: iat + lifetime,
                        device: true,
                    };
                    Ok(AuthOutcome::Token(jwt::issue(&jwt_key, &claims)))
                }
            }
        })
    }

    /// The device id of a valid token whose auth set is still accepted.
    pub fn device_of_token(&self, authorization: Option<&str>) -> Result<String, OpError> {
        let unauthorized = |e: TokenError| OpError::Unauthorized(e.to_string());
        let token = jwt::bearer(authorization).map_err(unauthorized)?;
        let claims = jwt::verify(&self.jwt_key, token, now()).map_err(unauthorized)?;
        let d = lock(&self.data);
        let dev = d
            .devices
            .get(&claims.sub)
            .ok_or_else(|| OpError::Unauthorized("device not found (decommissioned?)".into()))?;
        match dev.auth_sets.iter().find(|a| a.id == claims.jti) {
            Some(a) if a.status == AuthStatus::Accepted => Ok(dev.id.clone()),
            _ => Err(OpError::Unauthorized(
                "the token's auth set is no longer accepted".into(),
            )),
        }
    }

    /// Accepts the device's auth set `auth_set` (default: the newest one).
    pub fn accept(&self, device_id: &str, auth_set: Option<&str>) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            let idx = pick_set(dev, auth_set)?;
            accept_set(dev, idx);
            tracing::info!(device = %device_id, "device accepted");
            Ok(())
        })
    }

    /// Rejects the auth set `auth_set`, or all of the device's auth sets.
    pub fn reject(&self, device_id: &str, auth_set: Option<&str>) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            match auth_set {
                Some(_) => {
                    let idx = pick_set(dev, auth_set)?;
                    dev.auth_sets[idx].status = AuthStatus::Rejected;
                }
                None => dev
                    .auth_sets
                    .iter_mut()
                    .for_each(|a| a.status = AuthStatus::Rejected),
            }
            tracing::info!(device = %device_id, "device rejected");
            Ok(())
        })
    }

    /// Pre-authorises identity + key: the device's first request gets a token.
    pub fn preauthorize(
        &self,
        identity_data: &serde_json::Value,
        pubkey: &str,
    ) -> Result<String, OpError> {
        let key =
            DevicePublicKey::from_pem(pubkey).map_err(|e| OpError::BadRequest(e.to_string()))?;
        let req = AuthRequest {
            id_data: identity_data.to_string(),
            pubkey: pubkey.to_string(),
            tenant_token: None,
        };
        let identity = req
            .canonical_identity()
            .map_err(|e| OpError::BadRequest(e.to_string()))?;
        let identity_value: serde_json::Value =
            serde_json::from_str(&identity).map_err(|e| OpError::BadRequest(e.to_string()))?;
        self.mutate(|d| {
            if d.devices.values().any(|dev| dev.identity == identity) {
                return Err(OpError::Conflict(
                    "a device with this identity exists".into(),
                ));
            }
            let now_s = now_rfc3339();
            let id = ids::uuid();
            d.devices.insert(
                id.clone(),
                Device {
                    id: id.clone(),
                    identity,
                    identity_data: identity_value,
                    auth_sets: vec![AuthSet {
                        id: ids::uuid(),
                        pubkey: key.canonical_pem(),
                        key_type: key.kind(),
                        status: AuthStatus::Preauthorized,
                        created: now_s.clone(),
                    }],
                    inventory: Vec::new(),
                    created: now_s,
                    inventory_updated: None,
                    last_auth: None,
                    auth_requests: 0,
                },
            );
            Ok(id)
        })
    }

    /// Removes a device: its tokens stop working and its active deployments become
    /// `decommissioned`-like aborted entries (409 on status reports).
    pub fn decommission(&self, device_id: &str) -> Result<(), OpError> {
        self.mutate(|d| {
            d.devices
                .remove(device_id)
                .ok_or_else(|| OpError::NotFound(format!("device {device_id} not found")))?;
            let now_s = now_rfc3339();
            for dep in d.deployments.values_mut() {
                if let Some(dd) = dep.devices.get_mut(device_id) {
                    if !dd.status.is_finished() {
                        set_status(
                            dd,
                            ServerStatus::Aborted,
                            Some("decommissioned".into()),
                            &now_s,
                            "server",
                            d.seq + 1,
                        );
                        d.seq += 1;
                    }
                }
            }
            Ok(())
        })
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

    // ----- inventory -----

    /// PUT (`replace`) or PATCH: applies the attributes, refusing a result over the limit.
    pub fn inventory(
        &self,
        device_id: &str,
        attrs: Vec<Attribute>,
        replace: bool,
    ) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            let mut next: Vec<Attribute> = if replace {
                Vec::new()
            } else {
                dev.inventory.clone()
            };
            for a in attrs {
                match next.iter_mut().find(|x| x.name == a.name) {
                    Some(x) => *x = a,
                    None => next.push(a),
                }
            }
            inventory::check_limit(next.len()).map_err(|e| OpError::BadRequest(e.to_string()))?;
            dev.inventory = next;
            dev.inventory_updated = Some(now_rfc3339());
            Ok(())
        })
    }

    // ----- deployments, device side -----

    /// Chooses the deployment for a device that says it runs `artifact_name` on
    /// `device_type` (PROTOCOL.md §3.1).
    pub fn next(
        &self,
        device_id: &str,
        artifact_name: &str,
        device_type: &str,
    ) -> Result<NextOutcome, OpError> {
        let link_key = self.link_key.clone();
        let base_url = self.base_url.clone();
        self.mutate(|d| {
            let now_s = now_rfc3339();
            let Some(dep_id) = choose_deployment(d, device_id, &now_s) else {
                return Ok(NextOutcome::NoUpdate);
            };
            d.seq += 1;
            let seq = d.seq;
            let generation = d.link_generation;
            let link_lifetime = d.settings.link_lifetime_secs;
            let dep = d
                .deployments
                .get_mut(&dep_id)
                .ok_or_else(|| OpError::Internal("deployment vanished".into()))?;
            let dep_artifact = dep.artifact_name.clone();
            let dd = dep
                .devices
                .get_mut(device_id)
                .ok_or_else(|| OpError::Internal("device deployment vanished".into()))?;
            let now_reported = Reported {
                artifact_name: artifact_name.to_string(),
                device_type: device_type.to_string(),
            };
            match &dd.reported {
                Some(r) if *r != now_reported => {
                    let msg = format!(
                        "the device reported artifact_name {:?}, device_type {:?} for this \
                         active deployment, earlier {:?}, {:?}",
                        artifact_name, device_type, r.artifact_name, r.device_type
                    );
                    set_status(
                        dd,
                        ServerStatus::Device(DeploymentStatus::Failure),
                        Some(msg.clone()),
                        &now_s,
                        "server",
                        seq,
                    );
                    return Err(OpError::Conflict(msg));
                }
                Some(_) => {}
                None => dd.reported = Some(now_reported),
            }
            if dd.status == ServerStatus::Pending && artifact_name == dep_artifact {
                set_status(
                    dd,
                    ServerStatus::Device(DeploymentStatus::AlreadyInstalled),
                    None,
                    &now_s,
                    "server",
                    seq,
                );
                return Ok(NextOutcome::NoUpdate);
            }
            let artifact = d
                .artifacts
                .values()
                .filter(|a| {
                    a.name == dep_artifact && a.device_types.iter().any(|t| t == device_type)
                })
                .max_by(|a, b| a.created.cmp(&b.created))
                .cloned();
            let dd = d
                .deployments
                .get_mut(&dep_id)
                .and_then(|dep| dep.devices.get_mut(device_id))
                .ok_or_else(|| OpError::Internal("device deployment vanished".into()))?;
            let Some(artifact) = artifact else {
                set_status(
                    dd,
                    ServerStatus::NoArtifact,
                    Some(format!(
                        "no artifact {dep_artifact:?} for device type {device_type:?}"
                    )),
                    &now_s,
                    "server",
                    seq,
                );
                return Ok(NextOutcome::NoUpdate);
            };
            dd.artifact_id = Some(artifact.id.clone());
            let expire = now() + link_lifetime;
            let uri = sign_link(
                &link_key,
                &base_url,
                &artifact.id,
                &dep_id,
                device_id,
                expire,
                generation,
            );
            Ok(NextOutcome::Update(mender_api::DeploymentInstructions {
                id: dep_id.clone(),
                artifact: mender_api::DeploymentArtifact {
                    id: artifact.id.clone(),
                    artifact_name: artifact.name.clone(),
                    source: mender_api::ArtifactSource {
                        uri,
                        expire: Some(rfc3339::format_utc(expire)),
                        method: None,
                    },
                    device_types_compatible: artifact.device_types.clone(),
                },
                update_control_map: None,
            }))
        })
    }

    /// A status report of the device for deployment `dep_id`.
    pub fn report_status(
        &self,
        device_id: &str,
        dep_id: &str,
        report: &StatusReport,
    ) -> Result<(), OpError> {
        self.mutate(|d| {
            d.seq += 1;
            let seq = d.seq;
            let dd = device_deployment_mut(d, dep_id, device_id)?;
            if dd.status == ServerStatus::Aborted {
                return Err(OpError::Conflict("deployment was aborted".into()));
            }
            set_status(
                dd,
                ServerStatus::Device(report.status),
                report.substate.clone(),
                &now_rfc3339(),
                "device",
                seq,
            );
            Ok(())
        })
    }

    /// A deployment log of the device for deployment `dep_id` (replaces an earlier one).
    pub fn upload_log(
        &self,
        device_id: &str,
        dep_id: &str,
        log: DeploymentLog,
    ) -> Result<(), OpError> {
        self.mutate(|d| {
            let dd = device_deployment_mut(d, dep_id, device_id)?;
            dd.log = log.messages;
            Ok(())
        })
    }

    // ----- deployments, management side -----

    /// Creates a deployment of `artifact_name` to `devices` (or every device).
    pub fn create_deployment(
        &self,
        name: &str,
        artifact_name: &str,
        devices: &[String],
        all_devices: bool,
    ) -> Result<String, OpError> {
        self.mutate(|d| {
            if !d.artifacts.values().any(|a| a.name == artifact_name) {
                return Err(OpError::BadRequest(format!(
                    "no artifact named {artifact_name:?} was uploaded"
                )));
            }
            if !all_devices && devices.is_empty() {
                return Err(OpError::BadRequest(
                    "no devices given (and all is false)".into(),
                ));
            }
            if let Some(missing) = devices.iter().find(|id| !d.devices.contains_key(*id)) {
                return Err(OpError::BadRequest(format!("device {missing} not found")));
            }
            let now_s = now_rfc3339();
            d.seq += 1;
            let id = ids::uuid();
            let dep = Deployment {
                id: id.clone(),
                name: if name.is_empty() {
                    artifact_name.to_string()
                } else {
                    name.to_string()
                },
                artifact_name: artifact_name.to_string(),
                all_devices,
                created: now_s.clone(),
                seq: d.seq,
                aborted: false,
                devices: devices
                    .iter()
                    .map(|dev| (dev.clone(), DeviceDeployment::new(&now_s)))
                    .collect(),
            };
            d.deployments.insert(id.clone(), dep);
            tracing::info!(deployment = %id, artifact = %artifact_name, "deployment created");
            Ok(id)
        })
    }

    /// Aborts a deployment: every unfinished device deployment becomes `aborted`.
    pub fn abort_deployment(&self, dep_id: &str) -> Result<(), OpError> {
        self.mutate(|d| {
            d.seq += 1;
            let seq = d.seq;
            let dep = d
                .deployments
                .get_mut(dep_id)
                .ok_or_else(|| OpError::NotFound(format!("deployment {dep_id} not found")))?;
            dep.aborted = true;
            let now_s = now_rfc3339();
            for dd in dep.devices.values_mut() {
                if !dd.status.is_finished() {
                    set_status(dd, ServerStatus::Aborted, None, &now_s, "server", seq);
                }
            }
            Ok(())
        })
    }

    /// Records an uploaded artifact (its file already in place).
    pub fn add_artifact(&self, record: ArtifactRecord) -> Result<(), OpError> {
        self.mutate(|d| {
            d.artifacts.insert(record.id.clone(), record);
            Ok(())
        })
    }

    /// The stored bytes of artifact `id` were replaced (already in place): new size and
    /// SHA-256, `tampered` set; the rest of the record stays. Returns the record.
    pub fn tamper_artifact(
        &self,
        id: &str,
        size: u64,
        sha256: String,
    ) -> Result<ArtifactRecord, OpError> {
        self.mutate(|d| {
            let a = d
                .artifacts
                .get_mut(id)
                .ok_or_else(|| OpError::NotFound(format!("artifact {id} not found")))?;
            a.size = size;
            a.sha256 = sha256;
            a.tampered = true;
            Ok(a.clone())
        })
    }

    /// Path of an artifact's bytes.
    pub fn artifact_path(&self, artifact_id: &str) -> PathBuf {
        artifacts_dir(&self.dir).join(format!("{artifact_id}.mender"))
    }

    /// Bumps the link generation: every link handed out so far is refused (403).
    pub fn expire_links(&self) -> Result<(), OpError> {
        self.mutate(|d| {
            d.link_generation += 1;
            Ok(())
        })
    }

    /// Remembers that a download of the deployment carried an Authorization header.
    pub fn note_download_authorization(&self, link: &Link) -> Result<(), OpError> {
        self.mutate(|d| {
            if let Ok(dd) = device_deployment_mut(d, &link.deployment_id, &link.device_id) {
                dd.download_authorization_seen = true;
            }
            Ok(())
        })
    }

    /// Checks a download link's query (`deployment`, `device`, `expire`, `gen`,
    /// `signature`) for `artifact_id`.
    pub fn verify_link(&self, artifact_id: &str, query: &str) -> Result<Link, OpError> {
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| {
            q.get(k)
                .cloned()
                .ok_or_else(|| OpError::Forbidden(format!("link without {k}")))
        };
        let (dep, dev, sig) = (get("deployment")?, get("device")?, get("signature")?);
        let expire: u64 = get("expire")?
            .parse()
            .map_err(|_| OpError::Forbidden("bad expire".into()))?;
        let generation: u64 = get("gen")?
            .parse()
            .map_err(|_| OpError::Forbidden("bad gen".into()))?;
        let sig = hex::decode(sig).map_err(|_| OpError::Forbidden("bad signature".into()))?;
        let m = link_mac(&self.link_key, artifact_id, &dep, &dev, expire, generation);
        if m.verify_slice(&sig).is_err() {
            return Err(OpError::Forbidden("link signature does not match".into()));
        }
        if expire <= now() {
            return Err(OpError::Forbidden("link expired".into()));
        }
        if generation != lock(&self.data).link_generation {
            return Err(OpError::Forbidden(
                "link expired (all links were expired)".into(),
            ));
        }
        Ok(Link {
            artifact_id: artifact_id.to_string(),
            deployment_id: dep,
            device_id: dev,
        })
    }
}

/// `DIR/artifacts`.
pub fn artifacts_dir(dir: &Path) -> PathBuf {
    dir.join("artifacts")
}

fn link_mac(
    key: &[u8],
    artifact: &str,
    dep: &str,
    dev: &str,
    expire: u64,
    generation: u64,
) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(format!("{artifact}\n{dep}\n{dev}\n{expire}\n{generation}").as_bytes());
    m
}

fn sign_link(
    key: &[u8],
    base_url: &str,
    artifact: &str,
    dep: &str,
    dev: &str,
    expire: u64,
    generation: u64,
) -> String {
    let sig = hex::encode(
        link_mac(key, artifact, dep, dev, expire, generation)
            .finalize()
            .into_bytes(),
    );
    format!(
        "{base_url}{}/{artifact}?deployment={dep}&device={dev}&expire={expire}&gen={generation}&signature={sig}",
        super::DOWNLOAD_PREFIX
    )
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

fn pick_set(dev: &Device, auth_set: Option<&str>) -> Result<usize, OpError> {
    match auth_set {
        Some(id) => dev
            .auth_sets
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| OpError::NotFound(format!("auth set {id} not found"))),
        None if dev.auth_sets.is_empty() => {
            Err(OpError::BadRequest("the device has no auth set".into()))
        }
        None => Ok(dev.auth_sets.len() - 1),
    }
}

/// Accepting one auth set rejects the device's other accepted ones, as the server does.
fn accept_set(dev: &mut Device, idx: usize) {
    for (i, a) in dev.auth_sets.iter_mut().enumerate() {
        if i == idx {
            a.status = AuthStatus::Accepted;
        } else if a.status == AuthStatus::Accepted {
            a.status = AuthStatus::Rejected;
        }
    }
}

fn set_status(
    dd: &mut DeviceDeployment,
    status: ServerStatus,
    substate: Option<String>,
    now_s: &str,
    source: &str,
    seq: u64,
) {
    dd.history.push(HistoryEntry {
        status: status.as_str().to_string(),
        substate,
        time: now_s.to_string(),
        source: source.to_string(),
    });
    dd.status = status;
    if status.is_finished() && dd.finished.is_none() {
        dd.finished = Some(now_s.to_string());
        dd.finished_seq = Some(seq);
    }
}

/// The oldest active device deployment of the device; otherwise the oldest "all devices"
/// deployment created after the device's latest finished one (a device deployment is
/// added for it).
fn choose_deployment(d: &mut SimData, device_id: &str, now_s: &str) -> Option<String> {
    let mut deps: Vec<&Deployment> = d.deployments.values().collect();
    deps.sort_by_key(|dep| dep.seq);
    if let Some(dep) = deps.iter().find(|dep| {
        dep.devices
            .get(device_id)
            .is_some_and(|dd| !dd.status.is_finished())
    }) {
        return Some(dep.id.clone());
    }
    let last_finished = deps
        .iter()
        .filter(|dep| {
            dep.devices
                .get(device_id)
                .is_some_and(|dd| dd.status.is_finished())
        })
        .map(|dep| dep.seq)
        .max()
        .unwrap_or(0);
    let id = deps
        .iter()
        .find(|dep| {
            dep.all_devices
                && !dep.aborted
                && dep.seq > last_finished
                && !dep.devices.contains_key(device_id)
        })
        .map(|dep| dep.id.clone())?;
    if let Some(dep) = d.deployments.get_mut(&id) {
        dep.devices
            .insert(device_id.to_string(), DeviceDeployment::new(now_s));
    }
    Some(id)
}
