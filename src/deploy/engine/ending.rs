//! How a deployment ends: the commit once the new software runs, the failure path (abort
//! or roll back, the failure scripts), the server's abort, and the final report until
//! taken.
//!
//! Invariants: what undoing takes is read from the record's phase alone (so a restart in
//! any phase undoes the same way): a phase in which the installer may have activated the
//! new software rolls back (after stopping a `finish` that may still run), any other
//! aborts; the artifact's scripts run only for an artifact that verified; the record is
//! forgotten only after the final status was taken (or the server aborted).

use super::{Engine, EngineError, Outcome};
use crate::deploy::report::{report_until_taken, upload_log, Reported};
use crate::deploy::scripts::{Action, State};
use crate::deploy::store::{DeploymentRecord, Phase};
use mender_api::DeploymentStatus;
use mender_bridge_backends::Backend;

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
        if let Err(e) = self.scripts(State::ArtifactCommit, Action::Enter).await {
            return self.fail(rec, e).await;
        }
        let committed = self.backend.commit().await;
        self.backend_log();
        if let Err(e) = committed {
            return self.fail(rec, format!("commit: {e}")).await;
        }
        self.committed(rec).await
    }

    /// After the backend committed: store the provides, report success.
    pub(super) async fn committed(
        &mut self,
        mut rec: DeploymentRecord,
    ) -> Result<Outcome, EngineError> {
        self.store.set_installed(&rec.new_provides)?;
        let _ = self.scripts(State::ArtifactCommit, Action::Leave).await;
        self.log("info", format!("committed {}", rec.artifact_name));
        rec.phase = Phase::ReportSuccess;
        self.store.save(&mut rec)?;
        self.finish_report(rec).await
    }

    /// Ends a deployment as a failure: the backend aborts or rolls back, the failure
    /// scripts run, the final status and the log are reported.
    pub(super) async fn fail(
        &mut self,
        mut rec: DeploymentRecord,
        reason: String,
    ) -> Result<Outcome, EngineError> {
        self.backend_log();
        self.log("error", format!("deployment failed: {reason}"));
        // Artifact scripts run only for an artifact that verified (always the case once
        // the backend was asked to activate).
        let scripts = rec.verified || rec.phase != Phase::Installing;
        if rec.phase.may_be_activated() {
            if rec.phase == Phase::Activating {
                // `finish` may still be at work in the installer: stop it first.
                self.abort_backend().await;
            }
            rec.phase = Phase::RollingBack;
            if self.store.save(&mut rec).is_ok() {
                self.rollback_backend().await;
            }
        } else {
            self.abort_backend().await;
        }
        if scripts {
            let _ = self.scripts(State::ArtifactFailure, Action::Enter).await;
            let _ = self.scripts(State::ArtifactFailure, Action::Leave).await;
        }
        rec.failure = Some(reason);
        rec.phase = Phase::ReportFailure;
        self.store.save(&mut rec)?;
        self.finish_report(rec).await
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
    /// error into the deployment log.
    pub(super) async fn rollback_backend(&mut self) {
        let _ = self.scripts(State::ArtifactRollback, Action::Enter).await;
        let rolled_back = self.backend.rollback().await;
        self.backend_log();
        if let Err(e) = rolled_back {
            self.log("error", format!("rollback: {e}"));
        }
        let _ = self.scripts(State::ArtifactRollback, Action::Leave).await;
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
        self.store.clear_deployment()?;
        Ok(Outcome::Aborted)
    }

    /// Reports the final status until taken (uploading the log first for failures), then
    /// forgets the deployment.
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
