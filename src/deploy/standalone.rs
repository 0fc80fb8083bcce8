//! Standalone installs, without a server (`mender-bridge install`, `commit`, `rollback`,
//! `resume`, as the official client's standalone mode): the artifact streams from a file
//! or a URL through the install pipeline ([`super::pipeline`], the same sequence as a
//! deployment: verifying reader, depends check, provides rule, state scripts); what it
//! installed is remembered in the store's standalone record so `commit`, `rollback` or
//! `resume` can finish it after the reboot.
//!
//! After the pipeline, every operation walks the same phases ([`StandalonePhase`]): each is
//! saved before its states run, so `resume` goes on from the one it finds, and
//! `--stop-before STATE` ([`StopPoint`], the official client's states) stops where that
//! state is next, leaving the record for `resume`.
//!
//! Invariants: nothing starts while a deployment or another standalone install is in
//! flight; the record is saved before the first payload byte reaches the backend and is
//! removed only after the cleanup, once `commit` stored the new provides or the rollback
//! reverted the backend; the pipeline's rules hold (scripts and provides kept only once
//! the whole artifact verified, the previous artifact's scripts removed first, so a failed
//! install runs no artifact script); an install that did not complete (interrupted, or a
//! failing `ArtifactInstall_Leave`) is never committed: it is rolled back; an install
//! stopped after its download is activated only by a `resume` whose backend checked the
//! bytes it kept against the manifest again (an Update Module's tree is the module's).
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
    #[error("the install of {artifact} stopped after its download: `resume` installs it (or `rollback`)")]
    NotInstalledYet { artifact: String },
    #[error("{artifact} is past the point where it can be rolled back: `resume` completes it")]
    CannotRollBack { artifact: String },
    #[error("{0}")]
    StopPoint(String),
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
    /// The update failed (`cause`) and was rolled back, but the device still runs it.
    #[error("{cause}; rolled back: reboot to return to the previous software")]
    RebootToReturn { cause: Box<StandaloneError> },
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

/// A state `--stop-before` can stop at (the official client's names and choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPoint {
    ArtifactInstallEnter,
    ArtifactCommitEnter,
    ArtifactCommitLeave,
    ArtifactRollbackEnter,
    ArtifactFailureEnter,
    Cleanup,
}

impl StopPoint {
    const ALL: [(&'static str, StopPoint); 6] = [
        ("ArtifactInstall_Enter", StopPoint::ArtifactInstallEnter),
        ("ArtifactCommit_Enter", StopPoint::ArtifactCommitEnter),
        ("ArtifactCommit_Leave", StopPoint::ArtifactCommitLeave),
        ("ArtifactRollback_Enter", StopPoint::ArtifactRollbackEnter),
        ("ArtifactFailure_Enter", StopPoint::ArtifactFailureEnter),
        ("Cleanup", StopPoint::Cleanup),
    ];

    /// The official name, e.g. `ArtifactCommit_Leave`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The phase at which this state is next.
    fn phase(self) -> StandalonePhase {
        match self {
            StopPoint::ArtifactInstallEnter => StandalonePhase::Downloaded,
            StopPoint::ArtifactCommitEnter => StandalonePhase::Installed,
            StopPoint::ArtifactCommitLeave => StandalonePhase::Committed,
            StopPoint::ArtifactRollbackEnter => StandalonePhase::RollingBack,
            StopPoint::ArtifactFailureEnter => StandalonePhase::Failing,
            StopPoint::Cleanup => StandalonePhase::CleaningUp,
        }
    }
}

impl std::str::FromStr for StopPoint {
    type Err = StandaloneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                StandaloneError::StopPoint(format!(
                    "cannot stop before {s:?}: the states to stop before are {}",
                    names.join(", ")
                ))
            })
    }
}

/// The `--stop-before` states of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stops(Vec<StopPoint>);

impl Stops {
    /// Parses the official names; an unknown one is an error that lists them.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Stops, StandaloneError> {
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Stops)
    }

    fn at(&self, phase: StandalonePhase) -> Option<StopPoint> {
        self.0.iter().copied().find(|p| p.phase() == phase)
    }
}

/// What an operation (`install`, `commit`, `rollback`, `resume`) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The artifact's name (from its verified header).
    pub artifact: String,
    pub outcome: InstallOutcome,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// Installed and activated: reboot, then `commit` (or `rollback`).
    RebootRequired,
    /// Installed, no reboot needed: `commit` (or `rollback`).
    AwaitingCommit,
    /// Committed: by `commit` (or `resume`), at once for an artifact without payload
    /// (bootstrap, its provides stored), or for an installer that cannot roll back (as the
    /// official client does).
    Committed,
    /// Committed at once (the installer cannot roll back), and the device must reboot to
    /// run it.
    CommittedRebootRequired,
    /// Rolled back. `failed`: the install had failed (interrupted, or a step failed), so
    /// the operation that finished it reports a failure; `reboot_needed`: the device was
    /// running the new software, a reboot returns to the old one.
    RolledBack { failed: bool, reboot_needed: bool },
    /// Stopped before this state (`--stop-before`): `resume` goes on.
    Stopped(StopPoint),
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
    /// The header was not accepted: no record saved; abort.
    Nothing,
    /// The header was accepted (the record saved) but the artifact did not verify:
    /// abort; no artifact script exists; the cleanup is a saved phase.
    Accepted,
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
    stop_after_download: bool,
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
        self.record = StandaloneRecord::new(
            header.name.clone(),
            header.payload.payload_type.clone().unwrap_or_default(),
        );
        self.store.save_standalone(&self.record)?;
        self.reached = Reached::Accepted;
        tracing::info!(artifact = %header.name, "installing");
        Ok(())
    }

    async fn verified(&mut self, verified: Verified) -> Result<(), StandaloneError> {
        self.reached = Reached::Verified;
        self.record.new_provides = verified.provides;
        self.store.save_standalone(&self.record)?;
        Ok(())
    }

    fn stop_after_download(&self) -> bool {
        self.stop_after_download
    }

    fn suspended(&mut self, kept: serde_json::Value) -> Result<(), StandaloneError> {
        self.record.kept = Some(kept);
        self.record.phase = StandalonePhase::Downloaded;
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

    /// Installs the artifact read from `source` through the install pipeline, then goes on
    /// until the update needs the user (a reboot, or `commit`), stopping before the first
    /// of `stops` it reaches. `progress(done, total)` is called as the payload streams (at
    /// most every 200 ms or 1 %). On failure the backend is aborted (rolled back once
    /// activated) and the record removed, unless a stop point keeps it for `resume`;
    /// errors before the source is opened (clearing the scripts, `Download_Enter`, the
    /// preflight) end the install as they are: nothing had started.
    pub async fn install<R: AsyncRead + Unpin + Send + 'static>(
        &mut self,
        source: R,
        stops: &Stops,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Done, StandaloneError> {
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
        let mut hooks = StandaloneHooks {
            store: &self.store,
            record: StandaloneRecord::new(String::new(), String::new()),
            reached: Reached::Nothing,
            stop_after_download: stops.at(StandalonePhase::Downloaded).is_some(),
        };
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
        let result = pipeline::install(target, source, &mut sink, &mut hooks).await;
        let StandaloneHooks {
            mut record,
            reached,
            ..
        } = hooks;
        match result {
            Ok(pipeline::Installed::NothingToActivate) => {
                self.backend_log(false);
                self.store.set_installed(&record.new_provides)?;
                self.store.clear_standalone()?;
                Ok(Done {
                    artifact: record.artifact_name,
                    outcome: InstallOutcome::Committed,
                })
            }
            Ok(pipeline::Installed::Suspended) => {
                self.backend_log(false);
                let stop = StopPoint::ArtifactInstallEnter;
                stopped(stop);
                Ok(Done {
                    artifact: record.artifact_name,
                    outcome: InstallOutcome::Stopped(stop),
                })
            }
            Ok(pipeline::Installed::Activated(_)) => {
                self.backend_log(false);
                self.enter(&mut record, StandalonePhase::Installed)?;
                self.advance(record, stops, true, None).await
            }
            Err(e) if !opened => Err(e),
            Err(e) => {
                // What the installer said (an Update Module's output) explains the failure.
                self.backend_log(true);
                record.failed = true;
                match reached {
                    Reached::Activated => {
                        // `finish` activated the new software: undo it.
                        self.enter(&mut record, StandalonePhase::RollingBack)?;
                        self.advance(record, stops, true, Some(e)).await
                    }
                    Reached::Verified => {
                        let _ = self.backend.abort().await;
                        self.enter(&mut record, StandalonePhase::Failing)?;
                        self.advance(record, stops, true, Some(e)).await
                    }
                    Reached::Accepted => {
                        // Nothing verified, nothing kept: as a failed download, to the
                        // cleanup without the ArtifactFailure state, a phase
                        // `--stop-before Cleanup` stops before, as the official client's.
                        let _ = self.backend.abort().await;
                        self.enter(&mut record, StandalonePhase::CleaningUp)?;
                        self.advance(record, stops, true, Some(e)).await
                    }
                    Reached::Nothing => {
                        // No record: undone here, without a stop.
                        let _ = self.backend.abort().await;
                        if let Err(e) = self.backend.cleanup().await {
                            tracing::error!("cleanup: {e}");
                        }
                        self.backend_log(true);
                        if let Err(c) = self.store.clear_standalone() {
                            tracing::warn!("removing the standalone record: {c}");
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Saves the record at `phase`: its states are next.
    fn enter(
        &self,
        record: &mut StandaloneRecord,
        phase: StandalonePhase,
    ) -> Result<(), StandaloneError> {
        record.phase = phase;
        self.store.save_standalone(record)?;
        Ok(())
    }

    /// Walks the phases from the record's, each saved before its states run, until the
    /// record is removed (after the cleanup), the update needs the user (`wait`: stop at
    /// [`StandalonePhase::Installed`] when the installer can roll back), or a stop point.
    /// `failure`: why the install failed, returned at the end (or at a stop) in place of
    /// the outcome.
    async fn advance(
        &mut self,
        mut record: StandaloneRecord,
        stops: &Stops,
        wait: bool,
        mut failure: Option<StandaloneError>,
    ) -> Result<Done, StandaloneError> {
        let mut committed_at_once = false;
        loop {
            let phase = record.phase;
            let installed = phase == StandalonePhase::Installed;
            if installed && wait {
                // Installed: the user commits, unless the installer cannot roll back.
                if let Some(outcome) = self.awaiting_commit(&record).await? {
                    return Ok(Done {
                        artifact: record.artifact_name,
                        outcome,
                    });
                }
                committed_at_once = true;
            }
            if let Some(stop) = stops.at(phase) {
                stopped(stop);
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(Done {
                        artifact: record.artifact_name,
                        outcome: InstallOutcome::Stopped(stop),
                    }),
                };
            }
            let step = self.step(&mut record, committed_at_once).await;
            self.backend_log(step.is_err() || failure.is_some());
            match step {
                Ok(true) => {}
                Ok(false) => break,
                // The resumed install or the commit failed; the step saved where undoing
                // it starts.
                Err(e) if record.phase != phase => match failure {
                    Some(_) => tracing::error!("{e}"),
                    None => failure = Some(e),
                },
                // The record stays at this phase for the next attempt; the install's own
                // failure, if any, is what the caller is told.
                Err(e) => match failure {
                    Some(first) => {
                        tracing::error!("{e}");
                        return Err(first);
                    }
                    None => return Err(e),
                },
            }
        }
        // The cleanup is done and the record removed.
        if let Some(e) = failure {
            return Err(match record.rollback_reboot {
                true => StandaloneError::RebootToReturn { cause: Box::new(e) },
                false => e,
            });
        }
        let outcome = match (
            record.committed,
            committed_at_once && record.reboot_required,
        ) {
            (true, true) => InstallOutcome::CommittedRebootRequired,
            (true, false) => InstallOutcome::Committed,
            (false, _) => InstallOutcome::RolledBack {
                failed: record.failed,
                reboot_needed: record.rollback_reboot,
            },
        };
        Ok(Done {
            artifact: record.artifact_name,
            outcome,
        })
    }

    /// At [`StandalonePhase::Installed`] of an install: what the user is to do next, or
    /// `None` when the installer cannot roll back and the install is committed at once,
    /// as the official client does ("Artifact doesn't support rollback. Committing
    /// immediately.").
    async fn awaiting_commit(
        &mut self,
        record: &StandaloneRecord,
    ) -> Result<Option<InstallOutcome>, StandaloneError> {
        let reversible = self.backend.can_roll_back().await;
        self.backend_log(reversible.is_err());
        if reversible? {
            return Ok(Some(if record.reboot_required {
                InstallOutcome::RebootRequired
            } else {
                InstallOutcome::AwaitingCommit
            }));
        }
        tracing::info!(
            "the installer cannot roll back: committing at once, as the official client does"
        );
        Ok(None)
    }

    /// Runs the states of the record's phase and saves the next phase; `Ok(false)` once
    /// the cleanup removed the record. `at_once`: a commit without the reboot (the
    /// installer cannot roll back), so the reboot is not checked.
    async fn step(
        &mut self,
        record: &mut StandaloneRecord,
        at_once: bool,
    ) -> Result<bool, StandaloneError> {
        use StandalonePhase as P;
        match record.phase {
            P::Downloaded => {
                if let Err(e) = self.install_kept(record).await {
                    record.failed = true;
                    // Once `ArtifactInstall_Enter` began, roll back (as the official
                    // client does); before it nothing ran: give the download up.
                    let next = if record.phase == P::Downloaded {
                        let _ = self.backend.abort().await;
                        P::Failing
                    } else {
                        P::RollingBack
                    };
                    self.enter(record, next)?;
                    return Err(e);
                }
                self.enter(record, P::Installed)?;
            }
            P::Installing | P::Activated => {
                // Interrupted: stop what may still run, then roll back.
                if record.phase == P::Installing {
                    self.give_up_download(record).await?;
                }
                record.failed = true;
                self.enter(record, P::RollingBack)?;
            }
            P::Installed => {
                if !at_once && record.reboot_required && !self.backend.verify_reboot().await? {
                    return Err(StandaloneError::NotRebooted {
                        artifact: record.artifact_name.clone(),
                    });
                }
                // A failed commit rolls back at once, as the official client does.
                let commit = match self.script(State::ArtifactCommit, Action::Enter).await {
                    Ok(()) => self.backend.commit().await.map_err(StandaloneError::from),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = commit {
                    let _ = self.script(State::ArtifactCommit, Action::Error).await;
                    record.failed = true;
                    self.enter(record, P::RollingBack)?;
                    return Err(e);
                }
                self.store.set_installed(&record.new_provides)?;
                record.committed = true;
                tracing::info!(artifact = %record.artifact_name, "committed");
                self.enter(record, P::Committed)?;
            }
            P::Committed => {
                if let Err(e) = self.script(State::ArtifactCommit, Action::Leave).await {
                    tracing::warn!("after the commit: {e}");
                }
                self.enter(record, P::CleaningUp)?;
            }
            P::RollingBack => {
                self.rollback_states(record).await?;
                self.enter(record, P::Failing)?;
            }
            P::Failing => {
                let _ = self.script(State::ArtifactFailure, Action::Enter).await;
                if let Err(e) = self.backend.failure().await {
                    tracing::error!("failure handling: {e}");
                }
                let _ = self.script(State::ArtifactFailure, Action::Leave).await;
                self.enter(record, P::CleaningUp)?;
            }
            P::CleaningUp => {
                if let Err(e) = self.backend.cleanup().await {
                    tracing::warn!("cleanup: {e}");
                }
                self.store.clear_standalone()?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `ArtifactInstall_Enter`, `finish` and `ArtifactInstall_Leave` for an install another
    /// process downloaded (`resume` after `--stop-before ArtifactInstall_Enter`); the
    /// backend checks the kept bytes again before it activates them.
    async fn install_kept(&mut self, record: &mut StandaloneRecord) -> Result<(), StandaloneError> {
        let kept = record.kept.clone().ok_or_else(|| {
            StandaloneError::Unsupported("the record keeps no download to install".into())
        })?;
        self.backend.resume(&kept)?;
        self.enter(record, StandalonePhase::Installing)?;
        let installed = async {
            self.script(State::ArtifactInstall, Action::Enter).await?;
            let outcome = self.backend.finish(&NoProgress).await?;
            record.kept = None;
            record.reboot_required = outcome == Activation::RebootRequired;
            self.enter(record, StandalonePhase::Activated)?;
            self.script(State::ArtifactInstall, Action::Leave).await?;
            Ok(())
        }
        .await;
        if installed.is_err() {
            let _ = self.script(State::ArtifactInstall, Action::Error).await;
        }
        installed
    }

    /// Stops what this install may still run and discards what it downloaded: a kept
    /// download (another process's) is taken back first, so that the backend's `abort`
    /// removes it.
    async fn give_up_download(&mut self, record: &StandaloneRecord) -> Result<(), StandaloneError> {
        if let Some(kept) = &record.kept {
            if let Err(e) = self.backend.resume(kept) {
                tracing::warn!("taking back the kept download: {e}");
            }
        }
        self.backend.abort().await?;
        Ok(())
    }

    /// `ArtifactRollback` around the backend's rollback, then the installer's reboot out
    /// of the new software when it takes one. An installer that cannot roll back leaves a
    /// failed install inconsistent (and refuses a requested rollback).
    async fn rollback_states(
        &mut self,
        record: &mut StandaloneRecord,
    ) -> Result<(), StandaloneError> {
        if !self.backend.can_roll_back().await? {
            if !record.failed {
                return Err(StandaloneError::Unsupported(format!(
                    "the installer of {} cannot roll it back",
                    record.artifact_name
                )));
            }
            tracing::error!("the installer cannot roll back the failed install");
            self.inconsistent(&record.artifact_name);
            return Ok(());
        }
        let mut reboot_needed =
            record.reboot_required && self.backend.verify_reboot().await.unwrap_or(false);
        let _ = self.script(State::ArtifactRollback, Action::Enter).await;
        // Which reboot going back takes is asked before ArtifactRollback_Leave, as the
        // official client asks an Update Module (`NeedsArtifactReboot`).
        let rolled_back = match self.backend.rollback().await {
            Ok(()) => Ok(self.backend.rollback_reboot().await),
            Err(e) => Err(e),
        };
        let _ = self.script(State::ArtifactRollback, Action::Leave).await;
        match rolled_back {
            Ok(reboot) => match self.rollback_reboot_here(reboot).await {
                Ok(host) => reboot_needed |= host,
                Err(e) => tracing::error!("rollback reboot: {e}"),
            },
            Err(e) if record.failed => {
                tracing::error!("rolling back the failed install: {e}");
                self.inconsistent(&record.artifact_name);
            }
            Err(e) => return Err(e.into()),
        }
        record.rollback_reboot = reboot_needed;
        Ok(())
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

    /// After a rollback: the installer's own reboot out of the new software (a module that
    /// answered `Yes`), verified; `Ok(true)` when the host must reboot instead. `reboot`:
    /// the backend's answer, asked right after the rollback.
    async fn rollback_reboot_here(
        &mut self,
        reboot: Result<Reboot, BackendError>,
    ) -> Result<bool, StandaloneError> {
        match reboot? {
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

    /// The record of the standalone install, its backend (or Update Module) selected for
    /// the calls that follow.
    fn in_progress(&mut self) -> Result<StandaloneRecord, StandaloneError> {
        let record = self
            .store
            .standalone()?
            .ok_or(StandaloneError::NothingInProgress)?;
        if !record.payload_type.is_empty() {
            if let Err(e) = self.backend.select(Some(&record.payload_type)) {
                tracing::error!("{e}");
            }
        }
        Ok(record)
    }

    /// Makes the standalone install permanent and stores its provides. A backend that
    /// booted into it must be running it on trial.
    pub async fn commit(&mut self, stops: &Stops) -> Result<Done, StandaloneError> {
        let _lock = self.lock()?;
        let record = self.in_progress()?;
        let artifact = record.artifact_name.clone();
        match record.phase {
            StandalonePhase::Installed => self.advance(record, stops, false, None).await,
            StandalonePhase::Downloaded => Err(StandaloneError::NotInstalledYet { artifact }),
            _ => Err(StandaloneError::Interrupted { artifact }),
        }
    }

    /// Reverts the backend to the software that ran before the install (an install that
    /// stopped after its download is discarded).
    pub async fn rollback(&mut self, stops: &Stops) -> Result<Done, StandaloneError> {
        let _lock = self.lock()?;
        let mut record = self.in_progress()?;
        use StandalonePhase as P;
        match record.phase {
            P::Installed => self.enter(&mut record, P::RollingBack)?,
            P::Downloaded => {
                self.give_up_download(&record).await?;
                self.enter(&mut record, P::RollingBack)?;
            }
            P::Installing | P::Activated | P::RollingBack => {}
            P::Committed | P::Failing | P::CleaningUp => {
                return Err(StandaloneError::CannotRollBack {
                    artifact: record.artifact_name,
                })
            }
        }
        let done = self.advance(record, stops, false, None).await?;
        if let InstallOutcome::RolledBack { .. } = done.outcome {
            tracing::info!(artifact = %done.artifact, "rolled back");
        }
        Ok(done)
    }

    /// Goes on with the standalone install from where it stopped or was interrupted, as
    /// the official `resume`: an install stopped after its download is installed (then
    /// waits for the commit), an installed one is committed, an interrupted one is rolled
    /// back, and the states a stop left are run.
    pub async fn resume(&mut self, stops: &Stops) -> Result<Done, StandaloneError> {
        let _lock = self.lock()?;
        let record = self.in_progress()?;
        let wait = record.phase == StandalonePhase::Downloaded;
        self.advance(record, stops, wait, None).await
    }
}

/// Logs a stop (`--stop-before`).
fn stopped(stop: StopPoint) {
    tracing::info!(
        state = stop.name(),
        "stopped before {} (--stop-before); `resume` goes on",
        stop.name()
    );
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
