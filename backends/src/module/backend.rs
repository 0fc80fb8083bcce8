//! [`ModuleBackend`]: one payload type installed by its Update Module, the official
//! client's sequence mapped onto [`Backend`]:
//! `prepare` (the tree) → `begin` (`ProvidePayloadFileSizes`, then `Download` or
//! `DownloadWithFileSizes`, and each further `begin` the next file) → `write`* →
//! `finish` (end of streams, `Download` must succeed, `SupportsRollback`,
//! `ArtifactInstall`, `NeedsArtifactReboot`) → after a reboot `verify_reboot`
//! (`ArtifactVerifyReboot`) → `commit` (`ArtifactCommit`, `Cleanup`) or `rollback`
//! (`SupportsRollback`, `ArtifactRollback`, for a `Yes` reboot `ArtifactRollbackReboot` and
//! `ArtifactVerifyRollbackReboot`, then `ArtifactFailure`, `Cleanup`); `abort`
//! (`ArtifactFailure`, `Cleanup`).
//!
//! Invariants (the trust model's Update Module row): before `finish` the module has run
//! only `ProvidePayloadFileSizes` and `Download` and has had only payload bytes and the
//! verified header; `ArtifactInstall` runs only in `finish`, after `Download` ended
//! successfully. A download that fails never reaches `ArtifactInstall`: the module gets
//! `ArtifactFailure` and `Cleanup`. `Cleanup` runs only while the tree exists, and the tree
//! is removed after it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use bytes::Bytes;

use super::config::ModuleConfig;
use super::run::{self, RebootAnswer};
use super::streams::Download;
use super::tree::{self, ModuleHeader};
use crate::{begun, Activation, Backend, BackendError, PayloadInfo, Progress, ProgressSink};

/// The Update Module backend for one payload type.
#[derive(Debug)]
pub struct ModuleBackend {
    config: ModuleConfig,
    /// The payload type this backend installs (the module's file name).
    payload_type: String,
    program: PathBuf,
    tree: PathBuf,
    /// `prepare` made the tree for this install.
    prepared: bool,
    download: Option<Download>,
    /// `ArtifactInstall` ran (in this process).
    installed: bool,
    reboot: Option<RebootAnswer>,
    log: Vec<String>,
}

impl ModuleBackend {
    /// The backend for `payload_type`, whose module is `<modules_dir>/<payload_type>`.
    pub fn new(config: ModuleConfig, payload_type: &str) -> Self {
        ModuleBackend {
            program: config.module_path(payload_type),
            tree: config.tree_dir(),
            payload_type: payload_type.to_string(),
            config,
            prepared: false,
            download: None,
            installed: false,
            reboot: None,
            log: Vec::new(),
        }
    }

    /// Before `begin`: the file tree for this install, from the verified header and the
    /// device's current provides (any earlier tree is removed).
    pub fn prepare(&mut self, header: &ModuleHeader) -> Result<(), BackendError> {
        if header.payload_type != self.payload_type {
            return Err(BackendError::not_started(format!(
                "header payload type '{}' given to the '{}' module",
                header.payload_type, self.payload_type
            )));
        }
        self.download = None;
        self.installed = false;
        self.reboot = None;
        tree::create(&self.tree, header)?;
        self.prepared = true;
        Ok(())
    }

    /// The module's `NeedsArtifactReboot` answer from `finish` (`None` before it).
    /// `Yes` means the engine calls [`ModuleBackend::artifact_reboot`] instead of rebooting
    /// the host; `Automatic` means the host reboots.
    pub fn reboot_answer(&self) -> Option<RebootAnswer> {
        self.reboot
    }

    /// `ArtifactReboot`: for a module that answered `Yes`, it reboots what it updated.
    pub async fn artifact_reboot(&mut self) -> Result<(), BackendError> {
        self.state("ArtifactReboot").await.map(drop)
    }

    /// Runs one state and keeps its output in the log.
    async fn state(&mut self, state: &str) -> Result<String, BackendError> {
        match run::call(&self.config, &self.program, state, &self.tree).await {
            Ok(out) => {
                self.log.extend(out.log);
                Ok(out.answer)
            }
            Err(BackendError::Failed { message, log }) => {
                self.log.extend(log.iter().cloned());
                Err(BackendError::failed_with_log(message, log))
            }
            Err(e) => Err(e),
        }
    }

    async fn supports_rollback(&mut self) -> Result<bool, BackendError> {
        let answer = self.state("SupportsRollback").await?;
        run::yes_no("SupportsRollback", &answer)
    }

    /// Starts `Download` if it has not started: asks `ProvidePayloadFileSizes` first.
    async fn start_download(&mut self) -> Result<(), BackendError> {
        if self.download.is_some() {
            return Ok(());
        }
        if !self.prepared {
            return Err(BackendError::failed(
                "Update Module download before prepare",
            ));
        }
        let answer = self.state("ProvidePayloadFileSizes").await?;
        let with_sizes = run::yes_no("ProvidePayloadFileSizes", &answer)?;
        let download = Download::start(&self.config, &self.program, &self.tree, with_sizes).await?;
        self.download = Some(download);
        Ok(())
    }

    /// A failed download: the module killed if still running, then `ArtifactFailure` and
    /// `Cleanup`. Returns `err`, its log extended.
    async fn fail_download(&mut self, err: BackendError) -> BackendError {
        if let Some(d) = self.download.take() {
            self.log.extend(d.abort().await.log);
        }
        if let Err(e) = self.failure_states().await {
            tracing::warn!(error = %e, "Update Module failure states");
        }
        err
    }

    /// `ArtifactFailure` then `Cleanup` (which removes the tree); the first error.
    async fn failure_states(&mut self) -> Result<(), BackendError> {
        if !self.tree.is_dir() {
            return Ok(());
        }
        let failure = self.state("ArtifactFailure").await.map(drop);
        let cleanup = self.cleanup().await;
        failure.and(cleanup)
    }

    /// `Cleanup`, then the tree removed; skipped when the tree is gone (done before).
    async fn cleanup(&mut self) -> Result<(), BackendError> {
        if !self.tree.is_dir() {
            tracing::info!(tree = %self.tree.display(), "no module tree: Cleanup already done");
            return Ok(());
        }
        let result = self.state("Cleanup").await.map(drop);
        self.prepared = false;
        tree::remove(&self.tree)?;
        result
    }
}

impl Backend for ModuleBackend {
    fn payload_types(&self) -> Vec<&str> {
        vec![self.payload_type.as_str()]
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        let executable = std::fs::metadata(&self.program)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if executable {
            Ok(())
        } else {
            Err(BackendError::not_started(format!(
                "no Update Module '{}' in {}",
                self.payload_type,
                self.config.modules_dir.display()
            )))
        }
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        if payload.payload_type != self.payload_type {
            return Err(BackendError::not_started(format!(
                "payload type '{}' given to the '{}' module",
                payload.payload_type, self.payload_type
            )));
        }
        let result = async {
            self.start_download().await?;
            let download = begun(self.download.as_mut(), "begin")?;
            download.next_file(&payload.file_name, payload.size).await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail_download(e).await),
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        begun(self.download.as_mut(), "write")?.write(chunk).await
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        let downloaded = async {
            self.start_download().await?;
            let download = begun(self.download.take(), "finish")?;
            let taken = if download.module_reads_streams() {
                "the Update Module read the payload streams"
            } else {
                "the payload was stored in files/ for the Update Module"
            };
            self.log.push(taken.to_string());
            let out = download.finish().await?;
            self.log.extend(out.log);
            self.supports_rollback().await
        }
        .await;
        if let Err(e) = downloaded {
            return Err(self.fail_download(e).await);
        }
        progress.report(Progress {
            bytes_done: 0,
            bytes_total: None,
            percent: None,
            message: Some(format!(
                "Update Module {}: ArtifactInstall",
                self.payload_type
            )),
        });
        self.installed = true;
        self.state("ArtifactInstall").await?;
        let answer = self.state("NeedsArtifactReboot").await?;
        let reboot = run::reboot_answer(&answer)?;
        self.reboot = Some(reboot);
        Ok(match reboot {
            RebootAnswer::No => Activation::Installed,
            RebootAnswer::Yes | RebootAnswer::Automatic => Activation::RebootRequired,
        })
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        if let Some(d) = self.download.take() {
            self.log.extend(d.abort().await.log);
        }
        self.failure_states().await
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        match self.state("ArtifactVerifyReboot").await {
            Ok(_) => Ok(true),
            Err(BackendError::Failed { message, .. }) => {
                self.log.push(message);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        Ok(None)
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        self.state("ArtifactCommit").await?;
        self.cleanup().await
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        if let Some(d) = self.download.take() {
            self.log.extend(d.abort().await.log);
        }
        if !self.tree.is_dir() {
            self.log
                .push("no Update Module tree: nothing to roll back".into());
            return Ok(());
        }
        let rolled_back = async {
            if !self.supports_rollback().await? {
                return Err(BackendError::failed(format!(
                    "the '{}' Update Module does not support rollback",
                    self.payload_type
                )));
            }
            self.state("ArtifactRollback").await?;
            let reboot = match self.reboot {
                Some(r) => r,
                None => run::reboot_answer(&self.state("NeedsArtifactReboot").await?)?,
            };
            if reboot == RebootAnswer::Yes {
                self.state("ArtifactRollbackReboot").await?;
                self.state("ArtifactVerifyRollbackReboot").await?;
            }
            Ok(())
        }
        .await;
        let failure = self.failure_states().await;
        rolled_back.and(failure)
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        Vec::new()
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}
