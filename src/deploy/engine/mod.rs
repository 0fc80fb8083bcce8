//! The deployment flow (DESIGN.md "The deployment, step by step"): update check →
//! download streamed through the verifying reader into the backend → activation →
//! reboot → verification → commit → final status; every risky step preceded by a save of
//! the deployment record, so start-up can resume from wherever the process died.
//!
//! Here: the deployment's start, resume after a restart and the corrupt-record recovery;
//! `install` runs the download through the install pipeline with the engine's records;
//! `ending` holds the commit, the failure and abort paths and the final report.

mod ending;
mod install;

use std::time::Duration;

use mender_bridge_backends::{Activation, Backend, Reboot};

use super::report::{log_line, report, Reported};
use super::scripts::{Action, ScriptRunner, State};
use super::store::{DeploymentRecord, Phase, Provides, Store, StoreError};
use crate::client::{Client, ClientError, RefreshUrl};
use install::Stop;
use mender_api::{DeploymentInstructions, DeploymentStatus, DeviceProvides};
use mender_artifact::ReadOptions;

/// Settings of the engine (from the configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub device_type: String,
    pub read: ReadOptions,
    pub scripts: ScriptRunner,
    /// Mender's `/etc/mender/artifact_info`: the artifact name of a device with no store.
    pub artifact_info: std::path::PathBuf,
    /// Retries of the reports that must be taken: first wait and cap.
    pub retry_initial: Duration,
    pub retry_cap: Duration,
    /// Progress substates: at most one per `progress_interval` unless the percentage moved
    /// by `progress_step`.
    pub progress_interval: Duration,
    pub progress_step: u8,
}

/// How a check or a resumed deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NoUpdate,
    /// The final status was reported (`success`, `failure` or `already-installed`).
    Finished(DeploymentStatus),
    /// The server aborted the deployment (409), or its record was unreadable and named no
    /// deployment; nothing more is reported.
    Aborted,
    /// The new software is activated: reboot now. Start-up resumes from there.
    RebootRequired,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("deployment store: {0}")]
    Store(#[from] StoreError),
    #[error("update check: {0}")]
    Client(#[from] ClientError),
}

pub struct Engine<B: Backend> {
    client: Client,
    store: Store,
    backend: B,
    cfg: EngineConfig,
    last_download: Option<std::sync::Arc<crate::client::DownloadStats>>,
}

impl<B: Backend> Engine<B> {
    pub fn new(client: Client, store: Store, backend: B, cfg: EngineConfig) -> Self {
        Engine {
            client,
            store,
            backend,
            cfg,
            last_download: None,
        }
    }

    /// Byte counts of the last artifact download (fetched, re-fetched, resumes).
    pub fn last_download(&self) -> Option<&crate::client::DownloadStats> {
        self.last_download.as_deref()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The device's provides ([`Store::provides_or`]).
    pub fn provides(&self) -> Provides {
        self.store.provides_or(&self.cfg.artifact_info)
    }

    /// What the update check sends: name, type and every stored provide.
    pub fn device_provides(&self) -> DeviceProvides {
        let mut provides = self.provides();
        let artifact_name = provides.remove("artifact_name").unwrap_or_default();
        DeviceProvides {
            artifact_name,
            device_type: self.cfg.device_type.clone(),
            provides,
        }
    }

    fn log(&self, level: &str, message: impl Into<String>) {
        log_to(&self.store, level, message);
    }

    /// The backend's own log lines (installer messages, reboot evidence) into the
    /// deployment log.
    fn backend_log(&mut self) {
        backend_log_to(&self.store, &mut self.backend);
    }

    async fn scripts(&self, state: State, action: Action) -> Result<(), String> {
        let store = &self.store;
        self.cfg
            .scripts
            .run_logged(state, action, |line| log_to(store, "info", line))
            .await
            .map_err(|e| e.to_string())
    }

    /// On a device the bridge took over before it installed anything itself: a deployment
    /// the official client stopped in the middle of is not resumed; say so, once per start.
    fn warn_official_in_flight(&self) {
        if matches!(self.store.installed(), Ok(Some(_))) {
            return;
        }
        let Some(data) = self.store.dir().parent() else {
            return;
        };
        if let Some(what) =
            super::store::official_in_flight(&data.join(super::store::OFFICIAL_STORE))
        {
            tracing::warn!(
                "the official client stopped in a deployment ({what}); mender-bridge does not \
                 resume it: the server offers it again or it is aborted on the dashboard \
                 (docs/MIGRATING.md)"
            );
        }
    }

    /// Start-up: finishes a deployment the process was in the middle of (PROTOCOL.md §4.1).
    pub async fn resume(&mut self) -> Result<Option<Outcome>, EngineError> {
        let rec = match self.store.deployment() {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                self.warn_official_in_flight();
                return Ok(None);
            }
            Err(StoreError::Corrupt { path, detail }) => {
                return self.recover_corrupt(&path, &detail).await.map(Some)
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(deployment = %rec.id, phase = ?rec.phase, "resuming a deployment");
        if !rec.payload_type.is_empty() {
            // The backend (or Update Module) this deployment's payload went to.
            if let Err(e) = self.backend.select(Some(&rec.payload_type)) {
                self.log("error", format!("resuming: {e}"));
            }
        }
        let outcome = match rec.phase {
            Phase::Installing => self.interrupted_download(rec).await?,
            Phase::Activating | Phase::Activated => {
                self.fail(
                    rec,
                    "the bridge stopped while the new software was being activated; \
                     rolling back"
                        .into(),
                )
                .await?
            }
            Phase::Committing if self.already_committed(&rec).await => {
                self.log("info", "the commit had happened before the restart");
                self.committed(rec).await?
            }
            Phase::Rebooting => self.after_reboot(rec).await?,
            // Interrupted after the reboot: checked again, but the `ArtifactReboot` state
            // was left (or its check cut short), so, as the official client, no script
            // of it runs again; a check that fails rolls back.
            Phase::Verifying | Phase::Committing => self.verify_again(rec).await?,
            Phase::RollingBack => {
                self.fail(rec, "resuming an interrupted rollback".into())
                    .await?
            }
            Phase::RollbackRebooting => self.after_rollback_reboot(rec).await?,
            Phase::Failing => {
                self.log("info", "resuming the failure handling");
                self.failed(rec).await?
            }
            Phase::CleaningUp => self.interrupted_cleanup(rec).await?,
            Phase::ReportSuccess | Phase::ReportFailure | Phase::ReportAlreadyInstalled => {
                self.finish_report(rec).await?
            }
        };
        Ok(Some(outcome))
    }

    /// An unreadable deployment record: nothing says how far the deployment got, so the
    /// backend is stopped and rolled back (the safe answer from every phase), the record is
    /// moved aside so it blocks no later deployment, and the deployment ends as a failure
    /// when its id can still be read from the file.
    async fn recover_corrupt(
        &mut self,
        path: &std::path::Path,
        detail: &str,
    ) -> Result<Outcome, EngineError> {
        let id = self.store.salvage_deployment_id();
        let moved = self.store.quarantine_deployment()?;
        let reason = format!(
            "the deployment record {} was corrupt ({detail}); moved to {}; rolling back",
            path.display(),
            moved.display()
        );
        tracing::error!("{reason}");
        let Some(id) = id else {
            self.abort_backend().await;
            self.rollback_backend().await;
            let _ = self.store.clear_deployment();
            return Ok(Outcome::Aborted);
        };
        let rec = DeploymentRecord {
            id,
            artifact_name: String::new(),
            payload_type: String::new(),
            // Unknown how far it got: as if the installer might be activating, which
            // `fail` answers by stopping it and rolling back (safe from every phase).
            phase: Phase::Activating,
            new_provides: Provides::new(),
            store_count: 0,
            verified: false,
            failure: None,
            booted: None,
        };
        self.fail(rec, reason).await
    }

    /// One update check, and the deployment it offers, if any.
    pub async fn check_update(&mut self) -> Result<Outcome, EngineError> {
        let Some(instr) = self.client.check_update(&self.device_provides()).await? else {
            return Ok(Outcome::NoUpdate);
        };
        self.deploy(instr).await
    }

    /// Runs one deployment from the server's instructions.
    pub async fn deploy(&mut self, instr: DeploymentInstructions) -> Result<Outcome, EngineError> {
        match self.store.deployment() {
            Ok(None) => {}
            Ok(Some(rec)) => {
                // Never start a second deployment over one in flight.
                tracing::warn!(deployment = %rec.id, "a deployment is in flight; resuming it first");
                return Ok(self.resume().await?.unwrap_or(Outcome::NoUpdate));
            }
            // An unreadable record: `resume` moves it aside and rolls back.
            Err(StoreError::Corrupt { .. }) => {
                return Ok(self.resume().await?.unwrap_or(Outcome::NoUpdate))
            }
            Err(e) => return Err(e.into()),
        }
        let current = self.provides();
        let mut rec = DeploymentRecord {
            id: instr.id.clone(),
            artifact_name: instr.artifact.artifact_name.clone(),
            payload_type: String::new(),
            phase: Phase::Installing,
            new_provides: Provides::new(),
            store_count: 0,
            verified: false,
            failure: None,
            booted: None,
        };
        if current.get("artifact_name") == Some(&instr.artifact.artifact_name) {
            rec.phase = Phase::ReportAlreadyInstalled;
            self.store.save(&mut rec)?;
            return self.finish_report(rec).await;
        }
        self.store.save(&mut rec)?;
        self.log(
            "info",
            format!(
                "deployment {}: installing artifact {}",
                instr.id, instr.artifact.artifact_name
            ),
        );
        if report(&self.client, &rec.id, DeploymentStatus::Downloading, None).await
            == Reported::Aborted
        {
            return self.aborted(rec).await;
        }
        match self.install(&instr, &current, &mut rec).await {
            Ok(Activation::RebootRequired) => {
                rec.phase = Phase::Rebooting;
                self.store.save(&mut rec)?;
                if report(&self.client, &rec.id, DeploymentStatus::Rebooting, None).await
                    == Reported::Aborted
                {
                    return self.aborted(rec).await;
                }
                if let Err(e) = self.scripts(State::ArtifactReboot, Action::Enter).await {
                    return self.reboot_failed(rec, e).await;
                }
                match self.backend.reboot().await {
                    Ok(Reboot::Host) => {
                        self.log("info", "rebooting into the new software");
                        Ok(Outcome::RebootRequired)
                    }
                    Ok(Reboot::Installer) => {
                        self.log("info", "the installer reboots what it updated");
                        let rebooted = self.backend.installer_reboot().await;
                        self.backend_log();
                        match rebooted {
                            Ok(()) => self.after_reboot(rec).await,
                            Err(e) => self.reboot_failed(rec, format!("reboot: {e}")).await,
                        }
                    }
                    Ok(Reboot::None) => self.after_reboot(rec).await,
                    Err(e) => self.reboot_failed(rec, format!("reboot: {e}")).await,
                }
            }
            Ok(Activation::Installed) => self.commit(rec).await,
            Err(Stop::Aborted) => self.aborted(rec).await,
            Err(Stop::Failed(msg)) => self.fail(rec, msg).await,
        }
    }

    /// After the reboot into the new software (a restart, or an installer's own reboot):
    /// `Verifying` saved, the check that it runs, then `ArtifactReboot_Leave` and the
    /// commit, or `ArtifactReboot_Error` and the rollback.
    async fn after_reboot(&mut self, mut rec: DeploymentRecord) -> Result<Outcome, EngineError> {
        rec.phase = Phase::Verifying;
        self.store.save(&mut rec)?;
        match self.verify_reboot().await {
            Ok(()) => {
                let _ = self.scripts(State::ArtifactReboot, Action::Leave).await;
                self.commit(rec).await
            }
            Err(reason) => self.reboot_failed(rec, reason).await,
        }
    }

    /// Start-up in `Verifying` or `Committing`: the check that the new software runs,
    /// again, then the commit; or the rollback, without the `ArtifactReboot` scripts.
    async fn verify_again(&mut self, rec: DeploymentRecord) -> Result<Outcome, EngineError> {
        match self.verify_reboot().await {
            Ok(()) => self.commit(rec).await,
            Err(reason) => self.fail(rec, reason).await,
        }
    }

    /// The backend's check that the new software runs after the reboot; `Err`: why not.
    async fn verify_reboot(&mut self) -> Result<(), String> {
        let running_new = self.backend.verify_reboot().await;
        self.backend_log();
        match running_new {
            Ok(true) => Ok(()),
            Ok(false) => Err(
                "after the reboot the device is not running the new software \
                 (the bootloader fell back, or the reboot did not happen)"
                    .into(),
            ),
            Err(e) => Err(format!("verifying the reboot: {e}")),
        }
    }

    /// The `ArtifactReboot` state failed: `ArtifactReboot_Error`, then the rollback.
    async fn reboot_failed(
        &mut self,
        rec: DeploymentRecord,
        reason: String,
    ) -> Result<Outcome, EngineError> {
        let _ = self.scripts(State::ArtifactReboot, Action::Error).await;
        self.fail(rec, reason).await
    }

    /// A fresh download URL after a 403: the same update check again, which must still
    /// offer the same deployment.
    fn refresh_url(&self, id: &str) -> RefreshUrl {
        let client = self.client.clone();
        let provides = self.device_provides();
        let id = id.to_string();
        Box::new(move || {
            let (client, provides, id) = (client.clone(), provides.clone(), id.clone());
            Box::pin(async move {
                match client.check_update(&provides).await? {
                    Some(i) if i.id == id => Ok(i.artifact.source.uri),
                    _ => Err(format!("deployment {id} is no longer offered").into()),
                }
            })
        })
    }
}

/// A line for the deployment log (kept in the store, sent with a failure) and for
/// `tracing` at the same level.
fn log_to(store: &Store, level: &str, message: impl Into<String>) {
    let line = log_line(level, message);
    match level {
        "error" => tracing::error!("{}", line.message),
        "warning" => tracing::warn!("{}", line.message),
        _ => tracing::info!("{}", line.message),
    }
    if let Err(e) = store.append_log(&[line]) {
        tracing::warn!(error = %e, "could not keep a deployment log line");
    }
}

/// The backend's own log lines (installer messages, reboot evidence) into the deployment
/// log.
fn backend_log_to<B: Backend>(store: &Store, backend: &mut B) {
    for line in backend.take_log() {
        log_to(store, "info", line);
    }
}
