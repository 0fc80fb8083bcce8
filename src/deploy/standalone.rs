//! Standalone installs, without a server (`mender-bridge install`, `commit`, `rollback`,
//! as the official client's standalone mode): the artifact streams from a file or a URL
//! through the install pipeline ([`super::pipeline`], the same sequence as a deployment:
//! verifying reader, depends check, provides rule, state scripts); what it installed is
//! remembered in the store's standalone record so `commit` or `rollback` can finish it
//! after the reboot.
//!
//! Invariants: nothing starts while a deployment or another standalone install is in
//! flight; the record is saved before the first payload byte reaches the backend and is
//! removed only after `commit` stored the new provides or `rollback` reverted the
//! backend; the pipeline's rules hold (scripts and provides kept only once the whole
//! artifact verified, the previous artifact's scripts removed first, so a failed install
//! runs no artifact script); an install that did not complete (interrupted, or a failing
//! `ArtifactInstall_Leave`) is never committed: it is rolled back.
use std::time::Instant;

use mender_bridge_backends::{Activation, Backend, BackendError, Progress, ProgressSink, Reboot};
use tokio::io::AsyncRead;

use super::engine::EngineConfig;
use super::lock::InstallLock;
use super::pipeline::{self, Hooks, PipelineError, Target, Verified};
use super::progress::Throttle;
use super::scripts::{trace_line, Action, ScriptError, State};
use super::store::{StandalonePhase, StandaloneRecord, Store, StoreError};
use super::stream::{StreamError, StreamProgress};
use crate::client::{ClientConfig, DownloadError, Downloader};
use mender_artifact::{ArtifactError, ArtifactHeader};

#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// `commit` / `rollback` with no standalone install (the official client's exit 2).
    #[error("no update in progress")]
    NothingInProgress,
    #[error("a standalone install of {artifact} is in progress: commit or roll it back first")]
    InProgress { artifact: String },
    #[error("another install, commit or rollback (or the daemon's deployment) is running; try again when it has finished")]
    Busy,
    #[error("the daemon is in the middle of deployment {id}; let it finish first")]
    DeploymentInFlight { id: String },
    #[error("{artifact} is installed but the device is not running it yet: reboot into it, then commit (or roll back)")]
    NotRebooted { artifact: String },
    #[error("the install of {artifact} was interrupted before it completed: roll it back")]
    Interrupted { artifact: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("opening {source_name}: {detail}")]
    Source { source_name: String, detail: String },
    #[error("artifact: {0}")]
    Artifact(#[from] ArtifactError),
    #[error("download: {0}")]
    Download(#[from] DownloadError),
    #[error("artifact does not fit this device: {0}")]
    Depends(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Script(#[from] ScriptError),
}

impl From<PipelineError> for StandaloneError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Script(e) => StandaloneError::Script(e),
            PipelineError::Preflight(e) | PipelineError::Finish(e) => StandaloneError::Backend(e),
            PipelineError::Open(e) | PipelineError::Stream(StreamError::Artifact(e)) => {
                StandaloneError::Artifact(e)
            }
            PipelineError::Depends(e) => StandaloneError::Depends(e.to_string()),
            PipelineError::Stream(StreamError::Backend(e)) => StandaloneError::Backend(e),
            e @ (PipelineError::Unsupported(_)
            | PipelineError::Stream(_)
            | PipelineError::Aborted) => StandaloneError::Unsupported(e.to_string()),
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The artifact's name (from its verified header).
    pub artifact: String,
    pub outcome: InstallOutcome,
}

/// How an install ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// Installed and activated: reboot, then `commit` (or `rollback`).
    RebootRequired,
    /// Installed, no reboot needed: `commit` (or `rollback`).
    AwaitingCommit,
    /// Committed at once: an artifact without payload (bootstrap, its provides stored), or
    /// an installer that cannot roll back (as the official client does).
    Committed,
    /// Committed at once (the installer cannot roll back), and the device must reboot to
    /// run it.
    CommittedRebootRequired,
}

/// How a rollback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub artifact: String,
    /// The device was running the new software: a reboot returns to the old one.
    pub reboot_needed: bool,
}

/// Where an artifact comes from: a file, standard input (`-`) or an http(s) URL. A URL is
/// fetched with the client's downloader (`client`'s TLS and download settings, resume
/// with `Range`).
pub async fn open_source(
    client: &ClientConfig,
    source: &str,
) -> Result<Box<dyn AsyncRead + Unpin + Send>, StandaloneError> {
    let err = |detail: String| StandaloneError::Source {
        source_name: source.to_string(),
        detail,
    };
    if source.starts_with("http://") || source.starts_with("https://") {
        let downloader = Downloader::new(
            &client.tls,
            client.timeouts.connect,
            client.download.clone(),
        )
        .map_err(|e| err(e.to_string()))?;
        let download = downloader.start(source, None).await?;
        return Ok(Box::new(download.into_reader()));
    }
    if source == "-" {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let file = tokio::fs::File::open(source)
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(Box::new(file))
}

/// How far a failed install got: what undoing it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Not verified: abort; no artifact script exists.
    Nothing,
    /// The whole artifact verified and its scripts are stored: abort, failure scripts.
    Verified,
    /// The backend's `finish` was called: roll back, then the failure scripts.
    Activated,
}

struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

/// The standalone install's side of the pipeline: the standalone record, `tracing` for
/// the log, and how far the install got.
struct StandaloneHooks<'a> {
    store: &'a Store,
    record: StandaloneRecord,
    reached: Reached,
}

impl<'a> StandaloneHooks<'a> {
    fn new(store: &'a Store) -> Self {
        StandaloneHooks {
            store,
            record: StandaloneRecord {
                artifact_name: String::new(),
                payload_type: String::new(),
                phase: StandalonePhase::Installing,
                new_provides: Default::default(),
                reboot_required: false,
            },
            reached: Reached::Nothing,
        }
    }

    /// After the pipeline: an empty payload's provides are stored at once (nothing to
    /// commit); an activated one is recorded as installed, awaiting `commit`.
    fn done(&mut self, done: pipeline::Installed) -> Result<Installed, StandaloneError> {
        let record = &mut self.record;
        if done == pipeline::Installed::NothingToActivate {
            self.store.set_installed(&record.new_provides)?;
            self.store.clear_standalone()?;
            return Ok(Installed {
                artifact: record.artifact_name.clone(),
                outcome: InstallOutcome::Committed,
            });
        }
        record.phase = StandalonePhase::Installed;
        self.store.save_standalone(record)?;
        let outcome = if record.reboot_required {
            InstallOutcome::RebootRequired
        } else {
            InstallOutcome::AwaitingCommit
        };
        Ok(Installed {
            artifact: record.artifact_name.clone(),
            outcome,
        })
    }
}

impl<B: Backend> Hooks<B> for StandaloneHooks<'_> {
    type Error = StandaloneError;

    fn log(&mut self, warning: bool, line: String) {
        if warning {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }

    fn script_output(&mut self, line: String) {
        trace_line(line);
    }

    fn accepted(&mut self, header: &ArtifactHeader) -> Result<(), StandaloneError> {
        self.record.artifact_name = header.name.clone();
        self.record.payload_type = header.payload.payload_type.clone().unwrap_or_default();
        self.store.save_standalone(&self.record)?;
        tracing::info!(artifact = %header.name, "installing");
        Ok(())
    }

    async fn verified(&mut self, verified: Verified) -> Result<(), StandaloneError> {
        self.reached = Reached::Verified;
        self.record.new_provides = verified.provides;
        self.store.save_standalone(&self.record)?;
        Ok(())
    }

    fn activating(&mut self) -> Result<(), StandaloneError> {
        // From here the installer may activate: a failure rolls back.
        self.reached = Reached::Activated;
        Ok(())
    }

    async fn finish(&mut self, backend: &mut B) -> Result<Activation, BackendError> {
        backend.finish(&NoProgress).await
    }

    fn activated(&mut self, outcome: Activation) -> Result<(), StandaloneError> {
        self.record.phase = StandalonePhase::Activated;
        self.record.reboot_required = outcome == Activation::RebootRequired;
        self.store.save_standalone(&self.record)?;
        Ok(())
    }
}

/// The standalone operations over a store and a backend.
pub struct Standalone<B: Backend> {
    store: Store,
    backend: B,
    cfg: EngineConfig,
}

impl<B: Backend> Standalone<B> {
    pub fn new(store: Store, backend: B, cfg: EngineConfig) -> Self {
        Standalone {
            store,
            backend,
            cfg,
        }
    }

    /// The install lock, or [`StandaloneError::Busy`].
    fn lock(&self) -> Result<InstallLock, StandaloneError> {
        InstallLock::try_acquire(self.store.dir())
            .map_err(|source| {
                StandaloneError::Store(StoreError::Io {
                    path: self.store.dir().join("install.lock"),
                    source,
                })
            })?
            .ok_or(StandaloneError::Busy)
    }

    async fn script(&self, state: State, action: Action) -> Result<(), ScriptError> {
        self.cfg.scripts.run_logged(state, action, trace_line).await
    }

    /// Installs the artifact read from `source` through the install pipeline.
    /// `progress(done, total)` is called as the payload streams (at most every 200 ms or
    /// 1 %). On failure the backend is aborted (rolled back once activated) and the record
    /// removed; errors before the source is opened (clearing the scripts, `Download_Enter`,
    /// the preflight) end the install as they are: nothing had started.
    pub async fn install<R: AsyncRead + Unpin + Send + 'static>(
        &mut self,
        source: R,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Installed, StandaloneError> {
        let _lock = self.lock()?;
        if let Some(d) = self.store.deployment()? {
            return Err(StandaloneError::DeploymentInFlight { id: d.id });
        }
        if let Some(s) = self.store.standalone()? {
            return Err(StandaloneError::InProgress {
                artifact: s.artifact_name,
            });
        }
        let current = self.store.provides_or(&self.cfg.artifact_info);
        let mut hooks = StandaloneHooks::new(&self.store);
        let mut opened = false;
        let opened_flag = &mut opened;
        let source = async move {
            *opened_flag = true;
            Ok::<_, StandaloneError>(source)
        };
        let mut sink = CallbackProgress {
            callback: progress,
            throttle: Throttle::new(std::time::Duration::from_millis(200), 1),
        };
        let target = Target {
            backend: &mut self.backend,
            scripts: &self.cfg.scripts,
            read: &self.cfg.read,
            device_type: &self.cfg.device_type,
            current: &current,
        };
        let result = match pipeline::install(target, source, &mut sink, &mut hooks).await {
            Ok(done) => hooks.done(done),
            Err(e) => Err(e),
        };
        let reached = hooks.reached;
        let artifact = std::mem::take(&mut hooks.record.artifact_name);
        let e = match result {
            Ok(r) if r.outcome == InstallOutcome::Committed => {
                self.backend_log(false);
                return Ok(r);
            }
            Ok(r) => {
                self.backend_log(false);
                let r = self.commit_unless_reversible(r).await;
                self.backend_log(r.is_err());
                return r;
            }
            Err(e) if !opened => return Err(e),
            Err(e) => e,
        };
        // What the installer said (an Update Module's output) explains the failure.
        self.backend_log(true);
        if reached == Reached::Activated {
            // `finish` activated the new software: undo it, if the installer can.
            if matches!(self.backend.can_roll_back().await, Ok(true)) {
                let _ = self.script(State::ArtifactRollback, Action::Enter).await;
                let rolled_back = self.backend.rollback().await;
                let _ = self.script(State::ArtifactRollback, Action::Leave).await;
                match rolled_back {
                    Ok(()) => {
                        if let Err(r) = self.rollback_reboot_here().await {
                            tracing::error!("rolling back the failed install: {r}");
                        }
                    }
                    Err(r) => {
                        tracing::error!("rolling back the failed install: {r}");
                        self.inconsistent(&artifact);
                    }
                }
            } else {
                tracing::error!("the installer cannot roll back the failed install");
                self.inconsistent(&artifact);
            }
        } else {
            let _ = self.backend.abort().await;
            let _ = self.script(State::Download, Action::Error).await;
        }
        self.failure_states(reached != Reached::Nothing).await;
        self.backend_log(true);
        if let Err(c) = self.store.clear_standalone() {
            tracing::warn!("removing the standalone record: {c}");
        }
        Err(e)
    }

    /// The installer's own lines (an Update Module's output): at warning level when the
    /// operation failed, so the user sees why without `-l info`.
    fn backend_log(&mut self, failed: bool) {
        for line in self.backend.take_log() {
            if failed {
                tracing::warn!("{line}");
            } else {
                tracing::info!("{line}");
            }
        }
    }

    /// Rolls the recorded install back; `Ok(true)` when a reboot returns to the old
    /// software.
    async fn rollback_states(
        &mut self,
        record: &StandaloneRecord,
    ) -> Result<bool, StandaloneError> {
        if !self.backend.can_roll_back().await? {
            return Err(StandaloneError::Unsupported(format!(
                "the installer of {} cannot roll it back",
                record.artifact_name
            )));
        }
        let mut reboot_needed = record.reboot_required && self.backend.verify_reboot().await?;
        if record.phase == StandalonePhase::Installing {
            // Interrupted while streaming or inside `finish`: stop what may still run.
            self.backend.abort().await?;
        }
        let _ = self.script(State::ArtifactRollback, Action::Enter).await;
        self.backend.rollback().await?;
        let _ = self.script(State::ArtifactRollback, Action::Leave).await;
        reboot_needed |= self.rollback_reboot_here().await?;
        self.failure_states(true).await;
        self.store.clear_standalone()?;
        Ok(reboot_needed)
    }

    /// An installer that cannot roll back is committed at once, as the official client
    /// does ("Artifact doesn't support rollback. Committing immediately.").
    async fn commit_unless_reversible(
        &mut self,
        installed: Installed,
    ) -> Result<Installed, StandaloneError> {
        if self.backend.can_roll_back().await? {
            return Ok(installed);
        }
        tracing::info!(
            "the installer cannot roll back: committing at once, as the official client does"
        );
        let record = self
            .store
            .standalone()?
            .ok_or(StandaloneError::NothingInProgress)?;
        self.commit_states(&record).await?;
        let outcome = match installed.outcome {
            InstallOutcome::RebootRequired => InstallOutcome::CommittedRebootRequired,
            _ => InstallOutcome::Committed,
        };
        Ok(Installed {
            outcome,
            ..installed
        })
    }

    /// After a rollback: the installer's own reboot out of the new software (a module that
    /// answered `Yes`), verified; `Ok(true)` when the host must reboot instead.
    async fn rollback_reboot_here(&mut self) -> Result<bool, StandaloneError> {
        match self.backend.rollback_reboot().await? {
            Reboot::None => Ok(false),
            Reboot::Host => Ok(true),
            Reboot::Installer => {
                let _ = self
                    .script(State::ArtifactRollbackReboot, Action::Enter)
                    .await;
                if let Err(e) = self.backend.installer_rollback_reboot().await {
                    tracing::error!("rollback reboot: {e}");
                }
                let verified = self.backend.verify_rollback_reboot().await;
                let _ = self
                    .script(State::ArtifactRollbackReboot, Action::Leave)
                    .await;
                verified?;
                Ok(false)
            }
        }
    }

    /// `ArtifactFailure` scripts (for an artifact that verified) around the installer's
    /// failure handling, then its cleanup; errors only logged.
    async fn failure_states(&mut self, scripts: bool) {
        if scripts {
            let _ = self.script(State::ArtifactFailure, Action::Enter).await;
        }
        if let Err(e) = self.backend.failure().await {
            tracing::error!("failure handling: {e}");
        }
        if scripts {
            let _ = self.script(State::ArtifactFailure, Action::Leave).await;
        }
        if let Err(e) = self.backend.cleanup().await {
            tracing::error!("cleanup: {e}");
        }
    }

    /// A failed install the installer could not undo: the artifact name becomes
    /// `<name>_INCONSISTENT`, as the official client records it.
    fn inconsistent(&self, artifact: &str) {
        match self
            .store
            .mark_inconsistent(artifact, &self.cfg.artifact_info)
        {
            Ok(name) => tracing::error!("the device is inconsistent: artifact name set to {name}"),
            Err(e) => tracing::error!("recording the inconsistent state: {e}"),
        }
    }

    /// Makes the standalone install permanent and stores its provides. A backend that
    /// booted into it must be running it on trial.
    pub async fn commit(&mut self) -> Result<String, StandaloneError> {
        let _lock = self.lock()?;
        let Some(record) = self.store.standalone()? else {
            return Err(StandaloneError::NothingInProgress);
        };
        let artifact = record.artifact_name.clone();
        if record.phase != StandalonePhase::Installed {
            return Err(StandaloneError::Interrupted { artifact });
        }
        self.select(&record);
        let committed = async {
            if record.reboot_required && !self.backend.verify_reboot().await? {
                return Err(StandaloneError::NotRebooted {
                    artifact: artifact.clone(),
                });
            }
            self.commit_states(&record).await
        }
        .await;
        self.backend_log(committed.is_err());
        committed.map(|()| artifact)
    }

    /// The recorded install's backend (or Update Module) takes the calls that follow.
    fn select(&mut self, record: &StandaloneRecord) {
        if record.payload_type.is_empty() {
            return;
        }
        if let Err(e) = self.backend.select(Some(&record.payload_type)) {
            tracing::error!("{e}");
        }
    }

    /// `ArtifactCommit` scripts around the backend's commit, the provides stored, the
    /// backend's cleanup, the record removed.
    async fn commit_states(&mut self, record: &StandaloneRecord) -> Result<(), StandaloneError> {
        if let Err(e) = self.script(State::ArtifactCommit, Action::Enter).await {
            let _ = self.script(State::ArtifactCommit, Action::Error).await;
            return Err(e.into());
        }
        self.backend.commit().await?;
        self.store.set_installed(&record.new_provides)?;
        if let Err(e) = self.script(State::ArtifactCommit, Action::Leave).await {
            tracing::warn!("after the commit: {e}");
        }
        if let Err(e) = self.backend.cleanup().await {
            tracing::warn!("cleanup after the commit: {e}");
        }
        self.store.clear_standalone()?;
        tracing::info!(artifact = %record.artifact_name, "committed");
        Ok(())
    }

    /// Reverts the backend to the software that ran before the install.
    pub async fn rollback(&mut self) -> Result<RolledBack, StandaloneError> {
        let _lock = self.lock()?;
        let Some(record) = self.store.standalone()? else {
            return Err(StandaloneError::NothingInProgress);
        };
        self.select(&record);
        let rolled_back = self.rollback_states(&record).await;
        self.backend_log(rolled_back.is_err());
        let reboot_needed = rolled_back?;
        tracing::info!(artifact = %record.artifact_name, "rolled back");
        Ok(RolledBack {
            artifact: record.artifact_name,
            reboot_needed,
        })
    }
}
/// The caller's progress callback, throttled (first, every 1 %, or every 200 ms).
struct CallbackProgress<'a> {
    callback: &'a mut (dyn FnMut(u64, u64) + Send),
    throttle: Throttle,
}

impl StreamProgress for CallbackProgress<'_> {
    async fn update(&mut self, done: u64, size: u64) -> bool {
        let percent = (done * 100).checked_div(size).unwrap_or(100) as u8;
        if done == 0 || self.throttle.should_send(percent, Instant::now()) {
            (self.callback)(done, size);
        }
        true
    }
}
