//! The simulator's persisted data: devices and their auth sets, inventory, artifacts,
//! deployments with per-device status history, logs and settings. Plain data; the rules
//! that change it live in `state.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use mender_api::{Attribute, DeploymentStatus, LogMessage};

/// Everything `state.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimData {
    pub devices: BTreeMap<String, Device>,
    pub artifacts: BTreeMap<String, ArtifactRecord>,
    pub deployments: BTreeMap<String, Deployment>,
    pub settings: Settings,
    /// Bumped by "expire all links": links of an older generation are refused (403).
    pub link_generation: u64,
    /// Creation order of deployments and finishing order of device deployments.
    pub seq: u64,
}

/// Settings changeable at run time through the management API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Lifetime of device tokens (604800 s = 7 days on the real server).
    pub jwt_lifetime_secs: u64,
    /// Whether POST v2 `next` exists (hosted/enterprise) or answers 404 (open source).
    pub next_v2: bool,
    /// Lifetime of download links (24 h on the real server).
    pub link_lifetime_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jwt_lifetime_secs: 604_800,
            next_v2: true,
            link_lifetime_secs: 86_400,
        }
    }
}

/// Admission state of an auth set (and, summarised, of a device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStatus {
    Pending,
    Accepted,
    Rejected,
    Preauthorized,
}

/// Identity plus public key: what a device presents. A new key for a known identity is a
/// new auth set of the same device, pending until accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSet {
    pub id: String,
    /// Canonical SPKI PEM.
    pub pubkey: String,
    pub key_type: String,
    pub status: AuthStatus,
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    /// `id_data` with sorted keys.
    pub identity: String,
    pub identity_data: serde_json::Value,
    pub auth_sets: Vec<AuthSet>,
    /// Inventory scope `inventory`, in the order last written.
    pub inventory: Vec<Attribute>,
    pub created: String,
    pub inventory_updated: Option<String>,
    pub last_auth: Option<String>,
    pub auth_requests: u64,
    /// Tokens issued (`iat`) before this second are refused: `POST
    /// /api/sim/devices/{id}/tokens/expire` sets it to the next second, and tokens issued
    /// after it carry at least that `iat`, so the old ones fail and the new ones work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_not_before: Option<u64>,
}

impl Device {
    /// accepted > preauthorized > pending > rejected, over the auth sets.
    pub fn status(&self) -> AuthStatus {
        let has = |s| self.auth_sets.iter().any(|a| a.status == s);
        if has(AuthStatus::Accepted) {
            AuthStatus::Accepted
        } else if has(AuthStatus::Preauthorized) {
            AuthStatus::Preauthorized
        } else if has(AuthStatus::Pending) {
            AuthStatus::Pending
        } else {
            AuthStatus::Rejected
        }
    }
}

/// An uploaded artifact (its bytes are `artifacts/<id>.mender` in the state directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub id: String,
    pub name: String,
    pub device_types: Vec<String>,
    pub payload_type: Option<String>,
    pub signed: bool,
    pub size: u64,
    pub sha256: String,
    pub created: String,
    /// The stored bytes were replaced, unchecked, after the upload
    /// (`PUT /api/sim/artifacts/{id}/content`): `size` and `sha256` describe the new bytes,
    /// the rest what the upload read.
    #[serde(default)]
    pub tampered: bool,
}

/// A deployment of an artifact name to some devices (or all).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub artifact_name: String,
    /// Every device, including ones that poll for the first time later.
    pub all_devices: bool,
    pub created: String,
    pub seq: u64,
    pub aborted: bool,
    pub devices: BTreeMap<String, DeviceDeployment>,
}

/// Server-side status of one device in a deployment: what devices may report plus the
/// statuses only the server sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerStatus {
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "noartifact")]
    NoArtifact,
    #[serde(rename = "aborted")]
    Aborted,
    #[serde(untagged)]
    Device(DeploymentStatus),
}

impl ServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Pending => "pending",
            ServerStatus::NoArtifact => "noartifact",
            ServerStatus::Aborted => "aborted",
            ServerStatus::Device(s) => s.as_str(),
        }
    }

    /// Finished: success, failure, already-installed, noartifact, aborted.
    pub fn is_finished(self) -> bool {
        match self {
            ServerStatus::Pending => false,
            ServerStatus::NoArtifact | ServerStatus::Aborted => true,
            ServerStatus::Device(s) => s.is_finished(),
        }
    }
}

/// One entry of a device deployment's status history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substate: Option<String>,
    pub time: String,
    /// `device` (a status report) or `server` (set by the server's own rules or an admin).
    pub source: String,
}

/// What the device said it had when it first got this deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub artifact_name: String,
    pub device_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceDeployment {
    pub status: ServerStatus,
    pub created: String,
    pub finished: Option<String>,
    /// `SimData::seq` when it finished; orders "the device's latest finished deployment".
    pub finished_seq: Option<u64>,
    pub artifact_id: Option<String>,
    pub reported: Option<Reported>,
    pub history: Vec<HistoryEntry>,
    pub log: Vec<LogMessage>,
    /// Whether any download of this deployment carried an Authorization header (the real
    /// S3 would refuse it).
    pub download_authorization_seen: bool,
}

impl DeviceDeployment {
    pub fn new(now: &str) -> Self {
        DeviceDeployment {
            status: ServerStatus::Pending,
            created: now.to_string(),
            finished: None,
            finished_seq: None,
            artifact_id: None,
            reported: None,
            history: vec![HistoryEntry {
                status: "pending".into(),
                substate: None,
                time: now.to_string(),
                source: "server".into(),
            }],
            log: Vec::new(),
            download_authorization_seen: false,
        }
    }
}
