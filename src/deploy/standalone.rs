//! Standalone installs, without a server (`mender-bridge install`, `commit`, `rollback`,
//! as the official client's standalone mode): the artifact streams from a file or a URL
//! through the same verifying reader into the same backend, with the same depends check,
//! provides rule and state scripts as a deployment; what it installed is remembered in the
//! store's standalone record so `commit` or `rollback` can finish it after the reboot.
//!
//! Invariants: nothing starts while a deployment or another standalone install is in
//! flight; the record is saved before the first payload byte reaches the backend and is
//! removed only after `commit` stored the new provides or `rollback` reverted the
//! backend; the backend activates nothing unless the whole artifact verified (its own
//! invariant); the artifact's scripts and provides are kept only once the whole artifact
//! verified, and the previous artifact's scripts are removed before anything else, so a
//! failed install runs no artifact script; an install that did not complete (interrupted,
//! or a failing `ArtifactInstall_Leave`) is never committed: it is rolled back.

use std::time::Instant;

use mender_bridge_backends::{
    Backend, BackendError, Outcome as BackendOutcome, Progress, ProgressSink,
};
use tokio::io::AsyncRead;

use super::engine::EngineConfig;
use super::lock::InstallLock;
use super::progress::Throttle;
use super::scripts::{Action, ScriptError, ScriptLog, State};
use super::store::{StandalonePhase, StandaloneRecord, Store, StoreError};
use super::stream::{stream_payload, StreamError, StreamProgress};
use crate::client::{ClientConfig, DownloadError, Downloader};
use crate::config::Config;
use mender_artifact::provides::{apply_provides, check_depends};
use mender_artifact::{ArtifactError, ArtifactReader};

use super::backend::AnyBackend;
use super::setup::{self, SetupError};

/// The standalone operations over the configured store and backend.
pub fn from_config(cfg: &Config) -> Result<Standalone<AnyBackend>, SetupError> {
    Ok(Standalone::new(
        setup::store(cfg),
        setup::backend(cfg)?,
        setup::engine_config(cfg)?,
    ))
}

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
    /// An artifact without payload (bootstrap): its provides are stored, nothing to commit.
    Committed,
}

/// How a rollback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub artifact: String,
    /// The device was running the new software: a reboot returns to the old one.
    pub reboot_needed: bool,
}

/// Where an artifact comes from: a file, standard input (`-`) or an http(s) URL. A URL is
/// fetched with the client's downloader (same TLS settings, resume with `Range`).
pub async fn open_source(
    cfg: &Config,
    source: &str,
) -> Result<Box<dyn AsyncRead + Unpin + Send>, StandaloneError> {
    let err = |detail: String| StandaloneError::Source {
        source_name: source.to_string(),
        detail,
    };
    if source.starts_with("http://") || source.starts_with("https://") {
        let client = ClientConfig::from_config(cfg);
        let downloader = Downloader::new(&client.tls, client.timeouts.connect, client.download)
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
        let mut log = ScriptLog::default();
        let r = self.cfg.scripts.run(state, action, &mut log).await;
        for line in log.stderr {
            tracing::info!("state script: {line}");
        }
        r
    }

    /// Installs the artifact read from `source`. `progress(done, total)` is called as the
    /// payload streams (at most every 200 ms or 1 %). On failure the backend is aborted
    /// and the record removed: nothing was activated.
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
        // Nothing of the previous artifact may run for this one.
        self.cfg.scripts.clear_artifact_scripts().await?;
        self.script(State::Download, Action::Enter).await?;
        self.backend.preflight().await?;
        let mut reached = Reached::Nothing;
        let result = self.stream(source, progress, &mut reached).await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                if reached == Reached::Activated {
                    // `finish` activated the new software: undo it.
                    let _ = self.script(State::ArtifactRollback, Action::Enter).await;
                    if let Err(r) = self.backend.rollback().await {
                        tracing::error!("rolling back the failed install: {r}");
                    }
                    let _ = self.script(State::ArtifactRollback, Action::Leave).await;
                } else {
                    let _ = self.backend.abort().await;
                    let _ = self.script(State::Download, Action::Error).await;
                }
                // Artifact scripts exist (and run) only for an artifact that verified.
                if reached != Reached::Nothing {
                    let _ = self.script(State::ArtifactFailure, Action::Enter).await;
                    let _ = self.script(State::ArtifactFailure, Action::Leave).await;
                }
                if let Err(c) = self.store.clear_standalone() {
                    tracing::warn!("removing the standalone record: {c}");
                }
                Err(e)
            }
        }
    }

    async fn stream<R: AsyncRead + Unpin + Send + 'static>(
        &mut self,
        source: R,
        progress: &mut (dyn FnMut(u64, u64) + Send),
        reached: &mut Reached,
    ) -> Result<Installed, StandaloneError> {
        let current = self.store.provides_or(&self.cfg.artifact_info);
        let reader = ArtifactReader::open(source, self.cfg.read.clone()).await?;
        match reader.info().signature.trust_note() {
            (true, note) => tracing::warn!("{note}"),
            (false, note) => tracing::info!("{note}"),
        }
        let header = reader.info().header.clone();
        check_depends(&header, &self.cfg.device_type, &current)
            .map_err(|e| StandaloneError::Depends(e.to_string()))?;
        let payload_type = header.payload.payload_type.clone();
        if let Some(t) = &payload_type {
            if !self.backend.payload_types().contains(&t.as_str()) {
                return Err(StandaloneError::Unsupported(format!(
                    "no backend installs '{t}' payloads (this one takes: {})",
                    self.backend.payload_types().join(", ")
                )));
            }
        }
        let mut record = StandaloneRecord {
            artifact_name: header.name.clone(),
            payload_type: payload_type.clone().unwrap_or_default(),
            phase: StandalonePhase::Installing,
            new_provides: Default::default(),
            reboot_required: false,
        };
        self.store.save_standalone(&record)?;
        tracing::info!(artifact = %header.name, "installing");

        let mut sink = CallbackProgress {
            callback: progress,
            throttle: Throttle::new(std::time::Duration::from_millis(200), 1),
        };
        let installed_file = stream_payload(
            reader,
            &mut self.backend,
            payload_type.as_deref(),
            &mut sink,
        )
        .await
        .map_err(|e| match e {
            StreamError::Artifact(e) => StandaloneError::Artifact(e),
            StreamError::Backend(e) => StandaloneError::Backend(e),
            other => StandaloneError::Unsupported(other.to_string()),
        })?;
        // The whole artifact verified: now its scripts and provides are kept.
        *reached = Reached::Verified;
        self.cfg
            .scripts
            .store_artifact_scripts(&header.scripts)
            .await?;
        record.new_provides = apply_provides(&current, &header);
        self.store.save_standalone(&record)?;
        self.script(State::Download, Action::Leave).await?;
        if !installed_file {
            self.store.set_installed(&record.new_provides)?;
            self.store.clear_standalone()?;
            return Ok(Installed {
                artifact: record.artifact_name,
                outcome: InstallOutcome::Committed,
            });
        }
        self.script(State::ArtifactInstall, Action::Enter).await?;
        // From here the installer may activate: a failure rolls back.
        *reached = Reached::Activated;
        let outcome = self.backend.finish(&NoProgress).await?;
        record.phase = StandalonePhase::Activated;
        record.reboot_required = outcome == BackendOutcome::RebootRequired;
        self.store.save_standalone(&record)?;
        self.script(State::ArtifactInstall, Action::Leave).await?;
        record.phase = StandalonePhase::Installed;
        self.store.save_standalone(&record)?;
        let outcome = if record.reboot_required {
            InstallOutcome::RebootRequired
        } else {
            InstallOutcome::AwaitingCommit
        };
        Ok(Installed {
            artifact: record.artifact_name,
            outcome,
        })
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
        if record.reboot_required && !self.backend.verify_reboot().await? {
            return Err(StandaloneError::NotRebooted { artifact });
        }
        if let Err(e) = self.script(State::ArtifactCommit, Action::Enter).await {
            let _ = self.script(State::ArtifactCommit, Action::Error).await;
            return Err(e.into());
        }
        self.backend.commit().await?;
        self.store.set_installed(&record.new_provides)?;
        if let Err(e) = self.script(State::ArtifactCommit, Action::Leave).await {
            tracing::warn!("after the commit: {e}");
        }
        self.store.clear_standalone()?;
        tracing::info!(%artifact, "committed");
        Ok(artifact)
    }

    /// Reverts the backend to the software that ran before the install.
    pub async fn rollback(&mut self) -> Result<RolledBack, StandaloneError> {
        let _lock = self.lock()?;
        let Some(record) = self.store.standalone()? else {
            return Err(StandaloneError::NothingInProgress);
        };
        let reboot_needed = record.reboot_required && self.backend.verify_reboot().await?;
        if record.phase == StandalonePhase::Installing {
            // Interrupted while streaming or inside `finish`: stop what may still run.
            self.backend.abort().await?;
        }
        let _ = self.script(State::ArtifactRollback, Action::Enter).await;
        self.backend.rollback().await?;
        let _ = self.script(State::ArtifactRollback, Action::Leave).await;
        let _ = self.script(State::ArtifactFailure, Action::Enter).await;
        let _ = self.script(State::ArtifactFailure, Action::Leave).await;
        self.store.clear_standalone()?;
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
