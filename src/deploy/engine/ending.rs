//! How a deployment ends: the commit once the new software runs, the failure path (abort
//! or roll back, the failure scripts), the server's abort, and the final report until
//! taken.
//!
//! Invariants: what undoing takes is read from the record's phase alone (so a restart in
//! any phase undoes the same way): a phase in which the installer may have activated the
//! new software rolls back (after stopping a `finish` that may still run), any other
//! aborts; a restart while streaming, in the failure handling or in the cleanup resumes as
//! both official clients do (cleanup only; the failure handling again; the cleanup again,
//! then `failure`); the artifact's scripts run only for an artifact that verified; the
//! record is forgotten only after the final status was taken (or the server aborted).

use super::{Engine, EngineError, Outcome};
use crate::deploy::report::{report_until_taken, upload_log, Reported};
use crate::deploy::scripts::{Action, State};
use crate::deploy::store::{DeploymentRecord, Phase};
use mender_api::DeploymentStatus;
use mender_bridge_backends::{Backend, BackendError, Reboot};

impl<B: Backend> Engine<B> {
    /// In `Committing` after a restart: the trial is over (the backend no longer reports the
    /// new software on trial) while the slot recorded at the start of the commit still runs.
    pub(super) async fn already_committed(&mut self, rec: &DeploymentRecord) -> bool {
        let Some(booted) = &rec.booted else {
            return false;
        };
        matches!(self.backend.verify_reboot().await, Ok(false))
            && matches!(self.backend.booted_slot().await, Ok(Some(now)) if &now == booted)
    }

    /// The new software runs (or needed no reboot): make it permanent, store the provides,
    /// report success. Any failure here rolls back.
    pub(super) async fn commit(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        rec.phase = Phase::Committing;
        rec.booted = self.backend.booted_slot().await.ok().flatten();
        self.store.save(&mut rec)?;
        // Drop the token: the new software must prove it can authenticate, and the
        // pre-commit report must be taken before anything is made permanent.
        self.client.invalidate_token().await;
        match report_until_taken(
            &self.client,
            &rec.id,
            DeploymentStatus::Installing,
            None,
            self.cfg.retry_initial,
            self.cfg.retry_cap,
        )
        .await
        {
            Reported::Taken => {}
            _ => return self.aborted(rec).await,
        }
        let committed = match self.scripts(State::ArtifactCommit, Action::Enter).await {
            Ok(()) => {
                let committed = self.backend.commit().await;
                self.backend_log();
                committed.map_err(|e| format!("commit: {e}"))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            let _ = self.scripts(State::ArtifactCommit, Action::Error).await;
            return self.fail(rec, e).await;
        }
        self.committed(rec).await
    }

    /// After the backend committed: store the provides, clean up, report success.
    pub(super) async fn committed(
        &mut self,
        rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        self.store.set_installed(&rec.new_provides)?;
        let _ = self.scripts(State::ArtifactCommit, Action::Leave).await;
        self.log("info", format!("committed {}", rec.artifact_name));
        self.clean_up(rec, Phase::ReportSuccess).await
    }

    /// Ends a deployment as a failure: the backend aborts or rolls back (rebooting out of
    /// the new software when the rollback asks for it), the failure scripts and the
    /// backend's failure handling run, then its cleanup, and the final status and the log
    /// are reported. A rollback that is not possible or fails leaves the device
    /// inconsistent: the artifact name becomes `<name>_INCONSISTENT`, as the official
    /// client records it.
    pub(super) async fn fail(
        &mut self,
        mut rec: DeploymentRecord,
        reason: String,
    ) -> Result<Outcome, EngineError> {
        self.backend_log();
        self.log("error", format!("deployment failed: {reason}"));
        rec.failure = Some(reason);
        if rec.phase.may_be_activated() {
            if rec.phase == Phase::Activating {
                // `finish` may still be at work in the installer: stop it first.
                self.abort_backend().await;
            }
            match self.backend.can_roll_back().await {
                Ok(true) => {
                    rec.phase = Phase::RollingBack;
                    self.store.save(&mut rec)?;
                    match self.rollback_backend().await {
                        Some(reboot) => {
                            if let Some(outcome) = self.rollback_reboot(&mut rec, reboot).await? {
                                return Ok(outcome);
                            }
                        }
                        None => self.inconsistent(&rec),
                    }
                }
                Ok(false) => {
                    self.log(
                        "error",
                        "the installer cannot roll back this install: the device is left \
                         as the failed install left it",
                    );
                    self.inconsistent(&rec);
                }
                Err(e) => {
                    self.log("error", format!("rollback support: {e}"));
                    self.inconsistent(&rec);
                }
            }
        } else {
            self.abort_backend().await;
        }
        self.failed(rec).await
    }

    /// After a rollback: the reboot out of the new software, if the backend asks for one.
    /// `Some`: the host reboots now (start-up resumes in `RollbackRebooting`). As the
    /// official client, a reboot after which the old software is not found back is tried
    /// again; each try is saved, so the store's loop guard ends the tries (the device is
    /// then left inconsistent). `asked`: the backend's answer the rollback already took.
    async fn rollback_reboot(
        &mut self,
        rec: &mut DeploymentRecord,
        mut asked: Result<Reboot, BackendError>,
    ) -> Result<Option<Outcome>, EngineError> {
        loop {
            let reboot = match asked {
                Ok(r) => r,
                Err(e) => {
                    self.log("error", format!("rollback reboot: {e}"));
                    self.inconsistent(rec);
                    return Ok(None);
                }
            };
            if reboot == Reboot::None {
                return Ok(None);
            }
            rec.phase = Phase::RollbackRebooting;
            if let Err(e) = self.store.save(rec) {
                self.log("error", format!("no more rollback reboots: {e}"));
                self.inconsistent(rec);
                return Ok(None);
            }
            let _ = self
                .scripts(State::ArtifactRollbackReboot, Action::Enter)
                .await;
            if reboot == Reboot::Host {
                self.log("info", "rebooting out of the failed install");
                return Ok(Some(Outcome::RebootRequired));
            }
            let rebooted = self.backend.installer_rollback_reboot().await;
            self.backend_log();
            if let Err(e) = rebooted {
                self.log("error", format!("rollback reboot: {e}"));
            }
            if self.verify_rollback_reboot().await {
                return Ok(None);
            }
            asked = self.backend.rollback_reboot().await;
        }
    }

    /// `ArtifactRollbackReboot_Leave` after checking the old software is back. `false`:
    /// it is not (the rollback reboot is tried again).
    async fn verify_rollback_reboot(&mut self) -> bool {
        let verified = self.backend.verify_rollback_reboot().await;
        self.backend_log();
        if let Err(e) = &verified {
            self.log(
                "error",
                format!("after the rollback reboot: {e}; rebooting again"),
            );
        }
        let _ = self
            .scripts(State::ArtifactRollbackReboot, Action::Leave)
            .await;
        verified.is_ok()
    }

    /// Start-up after the host rebooted out of a failed install.
    pub(super) async fn after_rollback_reboot(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        if !self.verify_rollback_reboot().await {
            let reboot = self.backend.rollback_reboot().await;
            if let Some(outcome) = self.rollback_reboot(&mut rec, reboot).await? {
                return Ok(outcome);
            }
        }
        self.failed(rec).await
    }

    /// The end of every failure: the `ArtifactFailure` state (its scripts around the
    /// backend's failure handling) for an artifact that verified, the backend's cleanup,
    /// the report. `Failing` is saved first: a restart runs the failure handling again, as
    /// the official clients do. A download that failed goes to the cleanup, as the
    /// official clients take it (no `ArtifactFailure` call to an Update Module).
    pub(super) async fn failed(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        // Artifact scripts run only for an artifact that verified (always the case once
        // the backend was asked to activate).
        let verified = rec.verified || !matches!(rec.phase, Phase::Installing | Phase::Failing);
        rec.phase = Phase::Failing;
        self.save_step(&mut rec);
        if verified {
            let _ = self.scripts(State::ArtifactFailure, Action::Enter).await;
            let failed = self.backend.failure().await;
            self.backend_log();
            if let Err(e) = failed {
                self.log("error", format!("failure handling: {e}"));
            }
            let _ = self.scripts(State::ArtifactFailure, Action::Leave).await;
        }
        self.clean_up(rec, Phase::ReportFailure).await
    }

    /// Start-up in `Installing`: the process stopped while the artifact streamed (or before
    /// its install began). As both official clients, nothing was activated, so nothing is
    /// undone and no artifact state runs: the installer is stopped, cleaned up, and the
    /// deployment fails. (A download that fails while the process runs also takes the
    /// failure handling: [`Self::fail`].)
    pub(super) async fn interrupted_download(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        let reason = "the bridge stopped while the artifact was streaming; nothing was activated";
        self.backend_log();
        self.log("error", format!("deployment failed: {reason}"));
        rec.failure = Some(reason.into());
        self.abort_backend().await;
        self.clean_up(rec, Phase::ReportFailure).await
    }

    /// Start-up in `CleaningUp`: the cleanup runs again and, as both official clients
    /// report it, the deployment ends as a failure (a committed artifact stays installed).
    pub(super) async fn interrupted_cleanup(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        let reason = "the bridge stopped during the cleanup";
        self.log("error", format!("deployment failed: {reason}"));
        rec.failure.get_or_insert_with(|| reason.into());
        self.clean_up(rec, Phase::ReportFailure).await
    }

    /// The backend's cleanup (`CleaningUp` saved first), then `report` saved and sent.
    async fn clean_up(
        &mut self,
        mut rec: DeploymentRecord,
        report: Phase,
    ) -> Result<Outcome, EngineError> {
        rec.phase = Phase::CleaningUp;
        self.save_step(&mut rec);
        self.cleanup_backend().await;
        rec.phase = report;
        self.store.save(&mut rec)?;
        self.finish_report(rec).await
    }

    /// Saves a step of the ending whose only purpose is how a restart resumes; if the save
    /// fails (the loop guard), the step is taken anyway and a restart resumes from the
    /// phase saved before, so the deployment still ends.
    fn save_step(&mut self, rec: &mut DeploymentRecord) {
        if let Err(e) = self.store.save(rec) {
            self.log("warning", format!("saving the {:?} step: {e}", rec.phase));
        }
    }

    /// The rollback is not possible or did not complete: the device runs neither artifact
    /// for sure. Its artifact name becomes `<new name>_INCONSISTENT` (the other provides
    /// stay), so the server and the next update check see it.
    fn inconsistent(&mut self, rec: &DeploymentRecord) {
        match self
            .store
            .mark_inconsistent(&rec.artifact_name, &self.cfg.artifact_info)
        {
            Ok(name) => self.log(
                "error",
                format!("the device is inconsistent: artifact name set to {name}"),
            ),
            Err(e) => self.log("error", format!("recording the inconsistent state: {e}")),
        }
    }

    /// The backend removes what it kept for the deployment (errors only logged).
    pub(super) async fn cleanup_backend(&mut self) {
        let cleaned = self.backend.cleanup().await;
        self.backend_log();
        if let Err(e) = cleaned {
            self.log("error", format!("cleanup: {e}"));
        }
    }

    /// Stops the installer (nothing may be activated afterwards), its messages and any
    /// error into the deployment log.
    pub(super) async fn abort_backend(&mut self) {
        let aborted = self.backend.abort().await;
        self.backend_log();
        if let Err(e) = aborted {
            self.log("error", format!("abort: {e}"));
        }
    }

    /// Rolls the backend back between the `ArtifactRollback` scripts, its messages and any
    /// error into the deployment log; `ArtifactRollback_Leave` runs after the backend said
    /// which reboot going back takes (its answer is returned), as the official client asks
    /// an Update Module (`NeedsArtifactReboot`) before it leaves the state. `None`: the
    /// rollback failed.
    pub(super) async fn rollback_backend(&mut self) -> Option<Result<Reboot, BackendError>> {
        let _ = self.scripts(State::ArtifactRollback, Action::Enter).await;
        let rolled_back = self.backend.rollback().await;
        self.backend_log();
        let reboot = match rolled_back {
            Ok(()) => Some(self.backend.rollback_reboot().await),
            Err(e) => {
                self.log("error", format!("rollback: {e}"));
                None
            }
        };
        let _ = self.scripts(State::ArtifactRollback, Action::Leave).await;
        reboot
    }

    /// The server aborted the deployment: clean up, report nothing more.
    pub(super) async fn aborted(&mut self, rec: DeploymentRecord) -> Result<Outcome, EngineError> {
        tracing::warn!(deployment = %rec.id, "the deployment was aborted on the server");
        if rec.phase.may_be_activated() {
            if rec.phase == Phase::Activating {
                let _ = self.backend.abort().await;
            }
            let _ = self.backend.rollback().await;
        } else {
            let _ = self.backend.abort().await;
        }
        let _ = self.backend.failure().await;
        let _ = self.backend.cleanup().await;
        self.store.clear_deployment()?;
        Ok(Outcome::Aborted)
    }

    /// Reports the final status until taken (then, for a failure, uploads the log, as the
    /// official client does), then forgets the deployment.
    pub(super) async fn finish_report(
        &mut self,
        rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        let status = match rec.phase {
            Phase::ReportSuccess => DeploymentStatus::Success,
            Phase::ReportAlreadyInstalled => DeploymentStatus::AlreadyInstalled,
            _ => DeploymentStatus::Failure,
        };
        // A failure's substate says why (the client cuts it to the server's limit).
        let substate = rec
            .failure
            .as_deref()
            .filter(|_| status == DeploymentStatus::Failure);
        let taken = report_until_taken(
            &self.client,
            &rec.id,
            status,
            substate,
            self.cfg.retry_initial,
            self.cfg.retry_cap,
        )
        .await;
        if status == DeploymentStatus::Failure && taken == Reported::Taken {
            upload_log(&self.client, &self.store, &rec.id).await;
        }
        self.store.clear_deployment()?;
        Ok(match taken {
            Reported::Aborted => Outcome::Aborted,
            _ => Outcome::Finished(status),
        })
    }
}
