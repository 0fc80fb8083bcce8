//! Deployments: the device side (which deployment `next` answers, status and log reports)
//! and the management side (create, abort).

use super::links::sign_link;
use super::{device_deployment_mut, NextOutcome, OpError, Sim};
use crate::ids::{self, now, now_rfc3339};
use crate::model::{Deployment, DeviceDeployment, HistoryEntry, Reported, ServerStatus, SimData};
use mender_api::{rfc3339, DeploymentLog, DeploymentStatus, StatusReport};

impl Sim {
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
}

pub(super) fn set_status(
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
