//! [`ModuleBackend`]: one payload type installed by its Update Module, the official
//! client's sequence mapped onto [`Backend`]:
//! `prepare` (the tree) → `begin` (`ProvidePayloadFileSizes`, then `Download` or
//! `DownloadWithFileSizes`, and each further `begin` the next file) → `write`* →
//! `downloaded` (end of streams, `Download` must succeed, `SupportsRollback`) → `finish`
//! (`ArtifactInstall`, `NeedsArtifactReboot`) → `reboot` (`ArtifactReboot` for a `Yes`, the
//! host for `Automatic`) → after it `verify_reboot` (`ArtifactVerifyReboot`) → `commit`
//! (`ArtifactCommit`) or `rollback` (`ArtifactRollback`), `rollback_reboot`
//! (`NeedsArtifactReboot` again unless it answered `Yes` or `Automatic`; then
//! `ArtifactRollbackReboot` for a `Yes`, the host for `Automatic`),
//! `verify_rollback_reboot` (`ArtifactVerifyRollbackReboot`) → `failure`
//! (`ArtifactFailure`) → `cleanup` (`Cleanup`, then the tree removed). `abort` only stops
//! a running `Download`.
//!
//! Invariants (the trust model's Update Module row): before `finish` the module has run
//! only `ProvidePayloadFileSizes` and `Download` and has had only payload bytes and the
//! verified header; `ArtifactInstall` runs only in `finish`, after `Download` ended
//! successfully. A download that fails never reaches `ArtifactInstall`. The module's
//! answers to `SupportsRollback` and `NeedsArtifactReboot`, and whether
//! `ArtifactVerifyReboot` started and `ArtifactCommit` succeeded, are kept next to the tree
//! (`answers.json`), so after a restart the module is not asked again and the sequence
//! stays the official client's (`tests/modules_trace.rs` compares the two). No state but
//! `Cleanup` runs once the tree is gone, and the tree and the answers are removed after
//! `Cleanup`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use bytes::Bytes;

use super::answers::Answers;
use super::config::ModuleConfig;
use super::run::{self, RebootAnswer};
use super::streams::Download;
use super::tree::{self, ModuleHeader};
use crate::{
    begun, Activation, Backend, BackendError, PayloadInfo, Progress, ProgressSink, Reboot,
};

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
    /// `Download` ended successfully for this install.
    download_done: bool,
    log: Vec<String>,
}

impl ModuleBackend {
    /// The backend for `payload_type`, whose module is `<modules_dir>/<payload_type>`.
    pub fn new(config: ModuleConfig, payload_type: &str) -> Self {
        // The module runs in the tree and gets its path: a relative one (a relative data
        // directory, `-d data`) would point nowhere from there.
        let tree = config.tree_dir();
        ModuleBackend {
            program: absolute(config.module_path(payload_type)),
            tree: absolute(tree),
            payload_type: payload_type.to_string(),
            config,
            prepared: false,
            download: None,
            download_done: false,
            log: Vec::new(),
        }
    }

    /// Is `<modules_dir>/<payload_type>` an executable file?
    pub fn installed(&self) -> bool {
        std::fs::metadata(&self.program)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }

    /// The module's `NeedsArtifactReboot` answer, once given (kept across restarts).
    pub fn reboot_answer(&self) -> Option<RebootAnswer> {
        self.answers().reboot
    }

    fn answers(&self) -> Answers {
        Answers::load(&self.config.answers_path())
    }

    fn keep_answers(&mut self, answers: &Answers) -> Result<(), BackendError> {
        answers.save(&self.config.answers_path())
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

    /// Runs a state only while the tree exists (a restart after `Cleanup` finds none).
    async fn state_in_tree(&mut self, state: &str) -> Result<Option<String>, BackendError> {
        if !self.tree.is_dir() {
            self.log.push(format!(
                "no Update Module tree: {state} skipped (cleaned up before)"
            ));
            return Ok(None);
        }
        self.state(state).await.map(Some)
    }

    /// `SupportsRollback`, asked once per install (the answer kept).
    async fn supports_rollback(&mut self) -> Result<bool, BackendError> {
        let mut answers = self.answers();
        if let Some(known) = answers.supports_rollback {
            return Ok(known);
        }
        let answer = self.state("SupportsRollback").await?;
        let yes = run::yes_no("SupportsRollback", &answer)?;
        answers.supports_rollback = Some(yes);
        self.keep_answers(&answers)?;
        Ok(yes)
    }

    /// `NeedsArtifactReboot`, asked once per install (the answer kept).
    async fn needs_reboot(&mut self) -> Result<RebootAnswer, BackendError> {
        let mut answers = self.answers();
        if let Some(known) = answers.reboot {
            return Ok(known);
        }
        let answer = run::reboot_answer(&self.state("NeedsArtifactReboot").await?)?;
        answers.reboot = Some(answer);
        self.keep_answers(&answers)?;
        Ok(answer)
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

    /// Stops a running `Download` (the module's process group killed).
    async fn stop_download(&mut self) {
        if let Some(d) = self.download.take() {
            self.log.extend(d.abort().await.log);
        }
    }
}

/// `path` made absolute against the current directory (as it is, if that fails).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// The reboot a `NeedsArtifactReboot` answer takes.
fn reboot_of(answer: RebootAnswer) -> Reboot {
    match answer {
        RebootAnswer::No => Reboot::None,
        RebootAnswer::Automatic => Reboot::Host,
        RebootAnswer::Yes => Reboot::Installer,
    }
}

impl Backend for ModuleBackend {
    fn payload_types(&self) -> Vec<&str> {
        vec![self.payload_type.as_str()]
    }

    fn whole_payload(&self) -> bool {
        true
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        if self.installed() {
            Ok(())
        } else {
            Err(BackendError::not_started(format!(
                "no Update Module '{}' in {}",
                self.payload_type,
                self.config.modules_dir.display()
            )))
        }
    }

    /// The tree for this install, from the verified header and the device's current
    /// provides (any earlier tree and answers are removed).
    fn prepare(&mut self, header: &ModuleHeader) -> Result<(), BackendError> {
        if header.payload_type != self.payload_type {
            return Err(BackendError::not_started(format!(
                "header payload type '{}' given to the '{}' module",
                header.payload_type, self.payload_type
            )));
        }
        self.download = None;
        self.download_done = false;
        Answers::remove(&self.config.answers_path())?;
        tree::create(&self.tree, header)?;
        self.prepared = true;
        Ok(())
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
        if result.is_err() {
            self.stop_download().await;
        }
        result
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        begun(self.download.as_mut(), "write")?.write(chunk).await
    }

    /// The end of the streams, `Download` must exit successfully, then `SupportsRollback`:
    /// all before `Download_Leave`, as the official client (so a restart here only cleans
    /// up).
    async fn downloaded(&mut self) -> Result<(), BackendError> {
        if self.download_done {
            return Ok(());
        }
        let ended = async {
            self.start_download().await?;
            let download = begun(self.download.take(), "downloaded")?;
            let taken = if download.module_reads_streams() {
                "the Update Module read the payload streams"
            } else {
                "the payload was stored in files/ for the Update Module"
            };
            self.log.push(taken.to_string());
            let out = download.finish().await?;
            self.log.extend(out.log);
            Ok::<(), BackendError>(())
        }
        .await;
        if let Err(e) = ended {
            self.stop_download().await;
            return Err(e);
        }
        self.download_done = true;
        self.supports_rollback().await.map(drop)
    }

    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    /// The module's tree (and what its `Download` stored in it) stays as it is, as the
    /// official client leaves it when it stops before `ArtifactInstall`.
    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        if !self.download_done {
            return Err(BackendError::failed(
                "suspend before the Update Module's Download ended",
            ));
        }
        Ok(serde_json::json!({ "download_done": true }))
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        if saved.get("download_done") != Some(&serde_json::Value::Bool(true)) {
            return Err(BackendError::failed(format!(
                "the kept Update Module install is not one whose Download ended: {saved}"
            )));
        }
        if !self.tree.is_dir() {
            return Err(BackendError::failed(format!(
                "the Update Module tree {} is gone",
                self.tree.display()
            )));
        }
        self.prepared = true;
        self.download_done = true;
        Ok(())
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        self.downloaded().await?;
        progress.report(Progress {
            bytes_done: 0,
            bytes_total: None,
            percent: None,
            message: Some(format!(
                "Update Module {}: ArtifactInstall",
                self.payload_type
            )),
        });
        self.state("ArtifactInstall").await?;
        Ok(match self.needs_reboot().await? {
            RebootAnswer::No => Activation::Installed,
            RebootAnswer::Yes | RebootAnswer::Automatic => {
                // What the module finds after the reboot must survive it.
                tree::sync().await;
                Activation::RebootRequired
            }
        })
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        self.stop_download().await;
        Ok(())
    }

    /// `Yes`: the module's `ArtifactReboot` reboots what it updated; `Automatic`: the host.
    async fn reboot(&mut self) -> Result<Reboot, BackendError> {
        Ok(reboot_of(self.needs_reboot().await?))
    }

    async fn installer_reboot(&mut self) -> Result<(), BackendError> {
        self.state_in_tree("ArtifactReboot").await.map(drop)
    }

    /// `ArtifactVerifyReboot`, at most once per install. As the official clients, a restart
    /// after it started, or in the middle of the commit, rolls back: a later call (only a
    /// restart brings one) answers "not verified" without calling the module, and so does a
    /// call after a `No` to `NeedsArtifactReboot` (no reboot: the engine gets here then only
    /// from a restart in the middle of the commit). Once `ArtifactCommit` succeeded the
    /// answer is yes, and the commit is not run again.
    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        if !self.tree.is_dir() {
            return self
                .state_in_tree("ArtifactVerifyReboot")
                .await
                .map(|_| false);
        }
        let mut answers = self.answers();
        if answers.committed {
            self.log
                .push("ArtifactCommit had succeeded before the restart".into());
            return Ok(true);
        }
        let rebooted = matches!(
            answers.reboot,
            Some(RebootAnswer::Yes | RebootAnswer::Automatic)
        );
        if answers.verify_started || !rebooted {
            self.log.push(
                "restarted after ArtifactVerifyReboot had started, or during the commit: \
                 as the official client, the install is rolled back"
                    .into(),
            );
            return Ok(false);
        }
        answers.verify_started = true;
        self.keep_answers(&answers)?;
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

    /// `ArtifactCommit` (not again once it succeeded: the success is kept).
    async fn commit(&mut self) -> Result<(), BackendError> {
        let mut answers = self.answers();
        if answers.committed {
            return Ok(());
        }
        if self.state_in_tree("ArtifactCommit").await?.is_some() {
            answers.committed = true;
            self.keep_answers(&answers)?;
        }
        Ok(())
    }

    async fn can_roll_back(&mut self) -> Result<bool, BackendError> {
        if !self.tree.is_dir() {
            return Ok(false);
        }
        self.supports_rollback().await
    }

    /// `ArtifactRollback`; the engine asks [`Backend::can_roll_back`] first.
    async fn rollback(&mut self) -> Result<(), BackendError> {
        self.stop_download().await;
        if !self.tree.is_dir() {
            self.log
                .push("no Update Module tree: nothing to roll back".into());
            return Ok(());
        }
        if !self.supports_rollback().await? {
            return Err(BackendError::failed(format!(
                "the '{}' Update Module does not support rollback",
                self.payload_type
            )));
        }
        self.state("ArtifactRollback").await.map(drop)
    }

    /// As the official client (3.x `queryUpdateModuleReboot`): a kept `Yes` or `Automatic`
    /// holds; otherwise (`No`, or `ArtifactInstall` never got to ask) `NeedsArtifactReboot`
    /// is asked now, and a failed or unexpected answer means no reboot. `Yes` takes
    /// `ArtifactRollbackReboot`, `Automatic` the host.
    async fn rollback_reboot(&mut self) -> Result<Reboot, BackendError> {
        if !self.tree.is_dir() {
            return Ok(Reboot::None);
        }
        let mut answers = self.answers();
        if let Some(known @ (RebootAnswer::Yes | RebootAnswer::Automatic)) = answers.reboot {
            return Ok(reboot_of(known));
        }
        let asked = match self.state("NeedsArtifactReboot").await {
            Ok(answer) => run::reboot_answer(&answer),
            Err(e) => Err(e),
        };
        match asked {
            Ok(answer) => {
                answers.reboot = Some(answer);
                self.keep_answers(&answers)?;
                Ok(reboot_of(answer))
            }
            Err(e) => {
                self.log.push(format!("{e}: no rollback reboot"));
                Ok(Reboot::None)
            }
        }
    }

    async fn installer_rollback_reboot(&mut self) -> Result<(), BackendError> {
        self.state_in_tree("ArtifactRollbackReboot").await.map(drop)
    }

    async fn verify_rollback_reboot(&mut self) -> Result<(), BackendError> {
        self.state_in_tree("ArtifactVerifyRollbackReboot")
            .await
            .map(drop)
    }

    async fn failure(&mut self) -> Result<(), BackendError> {
        self.stop_download().await;
        self.state_in_tree("ArtifactFailure").await.map(drop)
    }

    /// `Cleanup`, then the tree and the answers removed; skipped when the tree is gone.
    async fn cleanup(&mut self) -> Result<(), BackendError> {
        self.stop_download().await;
        if !self.tree.is_dir() {
            tracing::info!(tree = %self.tree.display(), "no module tree: Cleanup already done");
            return Answers::remove(&self.config.answers_path());
        }
        let result = self.state("Cleanup").await.map(drop);
        self.prepared = false;
        // A stored payload can be large: removed off the async workers.
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || tree::remove(&tree))
            .await
            .map_err(|e| BackendError::failed(format!("removing the module tree: {e}")))??;
        Answers::remove(&self.config.answers_path())?;
        result
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        Vec::new()
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}
