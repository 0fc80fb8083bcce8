//! The deployment flow (DESIGN.md "The deployment, step by step"): update check →
//! download streamed through the verifying reader into the backend → activation →
//! reboot → verification → commit → final status; every risky step preceded by a save of
//! the deployment record, so start-up can resume from wherever the process died.

use std::time::{Duration, Instant};

use mender_bridge_backends::{
    Backend, BackendError, Outcome as BackendOutcome, Progress, ProgressSink,
};

use super::progress::{substate, Throttle};
use super::report::{log_line, report, report_until_taken, upload_log, Reported};
use super::scripts::{Action, ScriptLog, ScriptRunner, State};
use super::store::{artifact_info_name, DeploymentRecord, Phase, Provides, Store, StoreError};
use super::stream::{stream_payload, StreamError, StreamProgress};
use crate::client::{Client, ClientError, RefreshUrl};
use mender_api::{DeploymentInstructions, DeploymentStatus, DeviceProvides};
use mender_artifact::provides::{apply_provides, check_depends};
use mender_artifact::{ArtifactReader, ReadOptions};

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

/// Why a deployment step did not complete.
enum Stop {
    Aborted,
    Failed(String),
}

impl From<BackendError> for Stop {
    fn from(e: BackendError) -> Self {
        Stop::Failed(e.to_string())
    }
}

/// Download progress as throttled `downloading` substates; a 409 stops the stream.
///
/// A report runs as its own task, so the stream never waits for the server; at most one is
/// in flight (a due report waits for the next chunk after it). Invariant: `settle` is
/// awaited before the next status, so the server sees the reports in order.
struct DownloadProgress<'a> {
    client: &'a Client,
    id: &'a str,
    throttle: Throttle,
    inflight: Option<tokio::task::JoinHandle<Reported>>,
    aborted: bool,
    /// The last update that came while a report was in flight (not yet decided on).
    latest: Option<(u64, u64)>,
    /// The installer's own progress while it installs from the stream.
    note: Option<String>,
}

impl DownloadProgress<'_> {
    /// Waits for the report in flight; `false` if the server said the deployment is aborted.
    async fn wait(&mut self) -> bool {
        if let Some(h) = self.inflight.take() {
            self.aborted |= h.await.is_ok_and(|r| r == Reported::Aborted);
        }
        !self.aborted
    }

    /// At the end of the stream: waits for the report in flight, then sends the last update
    /// it held up if it is due (so `100%` is shown). `false`: the deployment is aborted.
    async fn settle(&mut self) -> bool {
        if !self.wait().await {
            return false;
        }
        if let Some((done, size)) = self.latest.take() {
            self.send_if_due(done, size);
            return self.wait().await;
        }
        true
    }

    fn send_if_due(&mut self, done: u64, size: u64) {
        let percent = (done * 100).checked_div(size).unwrap_or(100) as u8;
        if !self.throttle.should_send(percent, Instant::now()) {
            return;
        }
        let text = substate("downloading", done, Some(size), self.note.as_deref());
        let (client, id) = (self.client.clone(), self.id.to_string());
        self.inflight = Some(tokio::spawn(async move {
            report(&client, &id, DeploymentStatus::Downloading, Some(&text)).await
        }));
    }
}

impl StreamProgress for DownloadProgress<'_> {
    async fn update(&mut self, done: u64, size: u64) -> bool {
        if self.inflight.as_ref().is_some_and(|h| h.is_finished()) && !self.wait().await {
            return false;
        }
        if self.inflight.is_some() {
            self.latest = Some((done, size));
            return true;
        }
        self.latest = None;
        self.send_if_due(done, size);
        true
    }

    fn note(&mut self, note: Option<String>) {
        self.note = note;
    }
}

/// Forwards backend progress (during `finish`) to the reporting loop.
struct ChannelSink(tokio::sync::mpsc::UnboundedSender<Progress>);

impl ProgressSink for ChannelSink {
    fn report(&self, progress: Progress) {
        let _ = self.0.send(progress);
    }
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

    /// The device's provides: the stored ones, or just the artifact name from
    /// `artifact_info` (or `unknown`).
    pub fn provides(&self) -> Provides {
        match self.store.installed() {
            Ok(Some(p)) if p.contains_key("artifact_name") => p,
            _ => Provides::from([(
                "artifact_name".to_string(),
                artifact_info_name(&self.cfg.artifact_info),
            )]),
        }
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
        let line = log_line(level, message);
        match level {
            "error" => tracing::error!("{}", line.message),
            "warning" => tracing::warn!("{}", line.message),
            _ => tracing::info!("{}", line.message),
        }
        if let Err(e) = self.store.append_log(&[line]) {
            tracing::warn!(error = %e, "could not keep a deployment log line");
        }
    }

    /// The backend's own log lines (installer messages, reboot evidence) into the
    /// deployment log.
    fn backend_log(&mut self) {
        for line in self.backend.take_log() {
            self.log("info", line);
        }
    }

    async fn scripts(&self, state: State, action: Action) -> Result<(), String> {
        let mut log = ScriptLog::default();
        let r = self.cfg.scripts.run(state, action, &mut log).await;
        for line in log.stderr {
            self.log("info", line);
        }
        r.map_err(|e| e.to_string())
    }

    /// Start-up: finishes a deployment the process was in the middle of (PROTOCOL.md §4.1).
    pub async fn resume(&mut self) -> Result<Option<Outcome>, EngineError> {
        let rec = match self.store.deployment() {
            Ok(Some(rec)) => rec,
            Ok(None) => return Ok(None),
            Err(StoreError::Corrupt { path, detail }) => {
                return self.recover_corrupt(&path, &detail).await.map(Some)
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(deployment = %rec.id, phase = ?rec.phase, "resuming a deployment");
        let outcome = match rec.phase {
            Phase::Installing => {
                self.fail(
                    rec,
                    "the bridge stopped while the artifact was streaming; nothing was activated"
                        .into(),
                )
                .await?
            }
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
            Phase::Rebooting | Phase::Committing => {
                let running_new = self.backend.verify_reboot().await;
                self.backend_log();
                let _ = self.scripts(State::ArtifactReboot, Action::Leave).await;
                match running_new {
                    Ok(true) => self.commit(rec).await?,
                    Ok(false) => {
                        self.fail(
                            rec,
                            "after the reboot the device is not running the new software \
                             (the bootloader fell back, or the reboot did not happen)"
                                .into(),
                        )
                        .await?
                    }
                    Err(e) => self.fail(rec, format!("verifying the reboot: {e}")).await?,
                }
            }
            Phase::RollingBack => {
                self.fail(rec, "resuming an interrupted rollback".into())
                    .await?
            }
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
        // Nothing of the previous artifact may run for this one.
        if let Err(e) = self.cfg.scripts.clear_artifact_scripts().await {
            return self.fail(rec, e.to_string()).await;
        }
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
            Ok(BackendOutcome::RebootRequired) => {
                rec.phase = Phase::Rebooting;
                self.store.save(&mut rec)?;
                if report(&self.client, &rec.id, DeploymentStatus::Rebooting, None).await
                    == Reported::Aborted
                {
                    return self.aborted(rec).await;
                }
                if let Err(e) = self.scripts(State::ArtifactReboot, Action::Enter).await {
                    return self.fail(rec, e).await;
                }
                self.log("info", "rebooting into the new software");
                Ok(Outcome::RebootRequired)
            }
            Ok(BackendOutcome::Installed) => self.commit(rec).await,
            Err(Stop::Aborted) => self.aborted(rec).await,
            Err(Stop::Failed(msg)) => self.fail(rec, msg).await,
        }
    }

    /// Download, verify and install: every payload byte goes through the verifying reader
    /// into the backend; nothing is activated unless the whole artifact verified.
    ///
    /// Invariants: nothing from the header (scripts, provides) is stored before the whole
    /// artifact verified; `Activating` is saved before the backend's `finish` and
    /// `Activated` as soon as it returns, so that any later failure, or a restart, rolls
    /// back.
    async fn install(
        &mut self,
        instr: &DeploymentInstructions,
        current: &Provides,
        rec: &mut DeploymentRecord,
    ) -> Result<BackendOutcome, Stop> {
        self.scripts(State::Download, Action::Enter)
            .await
            .map_err(Stop::Failed)?;
        self.backend
            .preflight()
            .await
            .map_err(|e| Stop::Failed(format!("backend not ready: {e}")))?;
        let download = self
            .client
            .downloader()
            .start(
                &instr.artifact.source.uri,
                Some(self.refresh_url(&instr.id)),
            )
            .await
            .map_err(|e| Stop::Failed(format!("download: {e}")))?;
        self.last_download = Some(download.stats());
        let reader = ArtifactReader::open(download.into_reader(), self.cfg.read.clone())
            .await
            .map_err(|e| Stop::Failed(format!("artifact: {e}")))?;
        let (warn, note) = reader.info().signature.trust_note();
        self.log(if warn { "warning" } else { "info" }, note);
        let header = reader.info().header.clone();
        if header.name != instr.artifact.artifact_name {
            return Err(Stop::Failed(format!(
                "the artifact is named '{}', the server offered '{}'",
                header.name, instr.artifact.artifact_name
            )));
        }
        check_depends(&header, &self.cfg.device_type, current)
            .map_err(|e| Stop::Failed(format!("artifact does not fit this device: {e}")))?;
        let payload_type = header.payload.payload_type.clone();
        if let Some(t) = &payload_type {
            if !self.backend.payload_types().contains(&t.as_str()) {
                return Err(Stop::Failed(format!(
                    "no backend installs '{t}' payloads (this one takes: {})",
                    self.backend.payload_types().join(", ")
                )));
            }
        }

        let mut progress = DownloadProgress {
            client: &self.client,
            id: &rec.id,
            throttle: Throttle::new(self.cfg.progress_interval, self.cfg.progress_step),
            inflight: None,
            aborted: false,
            latest: None,
            note: None,
        };
        let streamed = stream_payload(
            reader,
            &mut self.backend,
            payload_type.as_deref(),
            &mut progress,
        )
        .await;
        if !progress.settle().await && streamed.is_ok() {
            let _ = self.backend.abort().await;
            return Err(Stop::Aborted);
        }
        let installed_file = match streamed {
            Ok(installed) => installed,
            Err(StreamError::Stopped) => return Err(Stop::Aborted),
            Err(e) => return Err(Stop::Failed(e.to_string())),
        };
        self.scripts(State::Download, Action::Leave)
            .await
            .map_err(Stop::Failed)?;
        self.log(
            "info",
            "artifact verified: signature, header and payload checksums",
        );
        // Verified: now, and only now, the header's scripts and provides are kept.
        self.cfg
            .scripts
            .store_artifact_scripts(&header.scripts)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        rec.payload_type = payload_type.clone().unwrap_or_default();
        rec.new_provides = apply_provides(current, &header);
        rec.verified = true;
        self.save(rec)?;
        if !installed_file {
            // An empty (bootstrap) payload: nothing to install, only provides to store.
            return Ok(BackendOutcome::Installed);
        }
        if report(&self.client, &rec.id, DeploymentStatus::Installing, None).await
            == Reported::Aborted
        {
            let _ = self.backend.abort().await;
            return Err(Stop::Aborted);
        }
        self.scripts(State::ArtifactInstall, Action::Enter)
            .await
            .map_err(Stop::Failed)?;
        rec.phase = Phase::Activating;
        self.save(rec)?;
        let outcome = self.finish_backend(&rec.id).await?;
        rec.phase = Phase::Activated;
        self.save(rec)?;
        self.scripts(State::ArtifactInstall, Action::Leave)
            .await
            .map_err(Stop::Failed)?;
        Ok(outcome)
    }

    /// Saves the record before the next step; a failed save stops the deployment.
    fn save(&self, rec: &mut DeploymentRecord) -> Result<(), Stop> {
        self.store
            .save(rec)
            .map_err(|e| Stop::Failed(e.to_string()))
    }

    /// `backend.finish`, turning its progress into throttled `installing` substates.
    async fn finish_backend(&mut self, id: &str) -> Result<BackendOutcome, Stop> {
        let r = self.finish_with_progress(id).await;
        self.backend_log();
        r.map_err(Stop::from)
    }

    async fn finish_with_progress(&mut self, id: &str) -> Result<BackendOutcome, BackendError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = ChannelSink(tx);
        let client = &self.client;
        let fut = self.backend.finish(&sink);
        tokio::pin!(fut);
        let mut throttle = Throttle::new(self.cfg.progress_interval, self.cfg.progress_step);
        loop {
            tokio::select! {
                r = &mut fut => return r,
                Some(p) = rx.recv() => {
                    let percent = p.percent.unwrap_or(0);
                    if throttle.should_send(percent, Instant::now()) {
                        let text = match p.percent {
                            Some(pc) => format!("installing {pc}% {}", p.message.as_deref().unwrap_or("")),
                            None => substate("installing", p.bytes_done, p.bytes_total, p.message.as_deref()),
                        };
                        let _ = report(client, id, DeploymentStatus::Installing, Some(text.trim_end())).await;
                    }
                }
            }
        }
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

    /// In `Committing` after a restart: the trial is over (the backend no longer reports the
    /// new software on trial) while the slot recorded at the start of the commit still runs.
    async fn already_committed(&mut self, rec: &DeploymentRecord) -> bool {
        let Some(booted) = &rec.booted else {
            return false;
        };
        matches!(self.backend.verify_reboot().await, Ok(false))
            && matches!(self.backend.booted_slot().await, Ok(Some(now)) if &now == booted)
    }

    /// The new software runs (or needed no reboot): make it permanent, store the provides,
    /// report success. Any failure here rolls back.
    async fn commit(&mut self, mut rec: DeploymentRecord) -> Result<Outcome, EngineError> {
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
    async fn committed(&mut self, mut rec: DeploymentRecord) -> Result<Outcome, EngineError> {
        self.store.set_installed(&rec.new_provides)?;
        let _ = self.scripts(State::ArtifactCommit, Action::Leave).await;
        self.log("info", format!("committed {}", rec.artifact_name));
        rec.phase = Phase::ReportSuccess;
        self.store.save(&mut rec)?;
        self.finish_report(rec).await
    }

    /// Ends a deployment as a failure: the backend aborts or rolls back, the failure
    /// scripts run, the final status and the log are reported.
    async fn fail(
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
    async fn abort_backend(&mut self) {
        let aborted = self.backend.abort().await;
        self.backend_log();
        if let Err(e) = aborted {
            self.log("error", format!("abort: {e}"));
        }
    }

    /// Rolls the backend back between the `ArtifactRollback` scripts, its messages and any
    /// error into the deployment log.
    async fn rollback_backend(&mut self) {
        let _ = self.scripts(State::ArtifactRollback, Action::Enter).await;
        let rolled_back = self.backend.rollback().await;
        self.backend_log();
        if let Err(e) = rolled_back {
            self.log("error", format!("rollback: {e}"));
        }
        let _ = self.scripts(State::ArtifactRollback, Action::Leave).await;
    }

    /// The server aborted the deployment: clean up, report nothing more.
    async fn aborted(&mut self, rec: DeploymentRecord) -> Result<Outcome, EngineError> {
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
    async fn finish_report(&mut self, rec: DeploymentRecord) -> Result<Outcome, EngineError> {
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
