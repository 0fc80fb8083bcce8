//! `SwupdateBackend`: the [`Backend`] calls, `ustate` after the reboot and the inventory.
//! How the route is decided is in `route.rs`, the exchange with the daemon for one install
//! in `run.rs` (the invariants are in the `swupdate` module's documentation).

mod route;
mod run;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::abi::{Abi, RunType, Status};
use super::control::{Control, IpcError, UpdateState};
use super::probe::Verdict;
use super::progress::Monitor;
use super::socket;
use super::SwupdateConfig;
use crate::spool::{self, KeptSpool, Spool};
use crate::{begun, Activation, Backend, BackendError, PayloadInfo, ProgressSink};

/// The payload type (Mender's own `swu` update module uses the same name).
pub const PAYLOAD_TYPE: &str = "swu";
/// Lines of SWUpdate output kept for the deployment log between two `take_log` calls.
const MAX_KEPT_LOG: usize = 1000;
/// What to do when SWUpdate has no bootloader state.
const USTATE_HINT: &str = "run swupdate with a bootloader (-B uboot or grub), or set \
                           backend.swupdate.ustate = false";
/// `/etc/sw-versions` is read up to this size.
const MAX_SW_VERSIONS: u64 = 64 * 1024;
/// The note shown next to the download's progress while the payload is spooled.
const SPOOL_NOTE: &str = "spooling; SWUpdate gets it once verified";

/// How this deployment's payload reaches SWUpdate (decided at preflight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Into the install socket as it arrives (last chunk held back until `finish`).
    Stream,
    /// To a 0600 spool file; into SWUpdate only in `finish`, after size and SHA-256 matched.
    Spool,
}

/// One install in flight.
struct Install {
    stream: Option<UnixStream>,
    /// The last chunk received: sent only by `finish`.
    pending: Option<Bytes>,
    sent: u64,
    size: u64,
    monitor: Monitor,
    /// Everything sent had verified (a spooled payload): a SUCCESS is this payload's.
    verified: bool,
}

/// The SWUpdate backend.
///
/// Invariants: with [`Route::Spool`] no byte and no request reaches SWUpdate between
/// `begin` and `finish`, and the spool file is removed whatever happens; [`Route::Stream`]
/// is taken only when SWUpdate proved at this deployment's preflight that it refuses an
/// unsigned image, or (mode `auto`) when nothing could authenticate the payload anyway,
/// which is logged.
pub struct SwupdateBackend {
    config: SwupdateConfig,
    control: Control,
    progress_path: PathBuf,
    /// This deployment's route (`None` until preflight, and after finish/abort).
    route: Option<Route>,
    /// The probe's verdict at the last preflight.
    verdict: Option<Verdict>,
    install: Option<Install>,
    spool: Option<Spool>,
    /// The spool of an install another process downloaded ([`Backend::resume`]).
    kept: Option<KeptSpool>,
    log: Vec<String>,
}

fn not_started(e: IpcError) -> BackendError {
    if e.untrusted() {
        return BackendError::not_started(format!("SWUpdate: {e}"));
    }
    BackendError::not_started(format!(
        "SWUpdate: {e} (is the swupdate daemon running, with this socket path?)"
    ))
}

fn broken(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

impl SwupdateBackend {
    pub fn new(config: SwupdateConfig) -> Self {
        Self::with_abi(config, Abi::NATIVE)
    }

    /// As [`SwupdateBackend::new`] for another target ABI (tests).
    pub fn with_abi(config: SwupdateConfig, abi: Abi) -> Self {
        let paths = socket::resolve(
            config.control_socket.as_deref(),
            config.progress_socket.as_deref(),
        );
        SwupdateBackend {
            control: Control::new(&paths.control, abi, config.timeout)
                .allowing_uid(config.swupdate_uid),
            progress_path: paths.progress,
            config,
            route: None,
            verdict: None,
            install: None,
            spool: None,
            kept: None,
            log: Vec::new(),
        }
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The route decided at the last preflight (`None` before it and after finish/abort).
    pub fn route(&self) -> Option<Route> {
        self.route
    }

    /// What the signature probe showed at the last preflight (`None` in mode `spool`,
    /// which does not probe).
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    fn keep_log(&mut self, lines: impl IntoIterator<Item = String>) {
        self.log.extend(lines);
        if self.log.len() > MAX_KEPT_LOG {
            let cut = self.log.len() - MAX_KEPT_LOG;
            self.log.drain(..cut);
        }
    }

    /// The run type of an update (`dry_run` from the configuration).
    fn run_type(&self) -> RunType {
        if self.config.dry_run {
            RunType::DryRun
        } else {
            RunType::Default
        }
    }

    async fn sw_versions(&self) -> Vec<(String, serde_json::Value)> {
        let Some(path) = &self.config.sw_versions_file else {
            return vec![];
        };
        let Ok(f) = tokio::fs::File::open(path).await else {
            return vec![];
        };
        let mut text = String::new();
        use tokio::io::AsyncReadExt;
        if f.take(MAX_SW_VERSIONS)
            .read_to_string(&mut text)
            .await
            .is_err()
        {
            return vec![];
        }
        parse_sw_versions(&text)
    }
}

/// `name version` lines of `/etc/sw-versions` as inventory attributes.
pub fn parse_sw_versions(text: &str) -> Vec<(String, serde_json::Value)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (name, version) = (it.next()?, it.next()?);
            (!name.starts_with('#')).then(|| {
                (
                    format!("swupdate.version.{name}"),
                    serde_json::Value::from(version),
                )
            })
        })
        .take(50)
        .collect()
}

impl Backend for SwupdateBackend {
    fn payload_types(&self) -> Vec<&str> {
        vec![PAYLOAD_TYPE]
    }

    /// The control socket answers GET_STATUS (the daemon is there, and the socket is
    /// SWUpdate's), then this deployment's route: the mode, and (except in mode `spool`)
    /// the signature probe. A route that cannot be taken fails here, before the download.
    async fn preflight(&mut self) -> Result<(), BackendError> {
        self.route = None;
        let st = self.control.status().await.map_err(not_started)?;
        tracing::debug!(current = ?st.current, "SWUpdate answers");
        let route = self.decide().await?;
        self.route = Some(route);
        Ok(())
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        if payload.payload_type != PAYLOAD_TYPE {
            return Err(BackendError::not_started(format!(
                "the swupdate backend installs '{PAYLOAD_TYPE}' payloads, not '{}'",
                payload.payload_type
            )));
        }
        self.install = None;
        self.spool = None;
        let route = match self.route {
            Some(r) => r,
            None => {
                let r = self.decide().await?;
                self.route = Some(r);
                r
            }
        };
        if route == Route::Spool {
            let s = Spool::create(&self.config.spool_dir, payload, &spool::SWUPDATE).await?;
            tracing::info!(file = %s.path().display(), size = payload.size, "spooling the update until it verified");
            self.spool = Some(s);
            return Ok(());
        }
        let (stream, monitor) = self
            .open_install(self.run_type(), "mender-bridge", false)
            .await?;
        tracing::info!(file = %payload.file_name, size = payload.size, socket = %self.control.path.display(), "streaming the update into SWUpdate");
        self.install = Some(Install {
            stream: Some(stream),
            pending: None,
            sent: 0,
            size: payload.size,
            monitor,
            verified: false,
        });
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        if let Some(s) = self.spool.as_mut() {
            return s.write(&chunk).await;
        }
        let limit = self.config.write_timeout;
        let inst = begun(self.install.as_mut(), "write")?;
        let Some(prev) = inst.pending.replace(chunk) else {
            return Ok(());
        };
        let stream = inst
            .stream
            .as_mut()
            .ok_or_else(|| BackendError::failed("write after the stream ended"))?;
        let sent = inst.sent;
        let res = tokio::time::timeout(limit, stream.write_all(&prev)).await;
        let what = match res {
            Ok(Ok(())) => {
                inst.sent += prev.len() as u64;
                return Ok(());
            }
            Ok(Err(e)) if broken(&e) => {
                format!("SWUpdate stopped reading the update after {sent} bytes")
            }
            Ok(Err(e)) => format!("writing to SWUpdate after {sent} bytes: {e}"),
            Err(_) => format!(
                "SWUpdate took no data for {} s (after {sent} bytes)",
                limit.as_secs()
            ),
        };
        Err(self.rejected(what).await)
    }

    /// SWUpdate acts on the update as it reads it: an install that stops after its
    /// download spools it, whatever the route would have been.
    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        let route = self.spool_route(
            "the install stops after its download (--stop-before ArtifactInstall_Enter)",
        )?;
        self.route = Some(route);
        Ok(())
    }

    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        self.route = None;
        spool::suspend(self.spool.take()).await
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        self.kept = Some(spool::resume(saved)?);
        Ok(())
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        self.route = None;
        spool::take_back(
            &mut self.spool,
            &mut self.kept,
            &self.config.spool_dir,
            &spool::SWUPDATE,
        )
        .await?;
        if let Some(mut spool) = self.spool.take() {
            // Dropped (and so removed from disk) when this returns, whatever happened.
            let file = spool.seal_open().await?;
            return self.install_spooled(file, spool.written(), progress).await;
        }
        let inst = begun(self.install.as_mut(), "finish")?;
        let mut stream = inst
            .stream
            .take()
            .ok_or_else(|| BackendError::failed("finish called twice"))?;
        // From here every byte SWUpdate got has verified.
        inst.verified = true;
        if let Some(tail) = inst.pending.take() {
            let res =
                tokio::time::timeout(self.config.write_timeout, stream.write_all(&tail)).await;
            let what = match res {
                Ok(Ok(())) => {
                    inst.sent += tail.len() as u64;
                    None
                }
                // SWUpdate closes once it read the cpio trailer; the result decides.
                Ok(Err(e)) if broken(&e) => {
                    tracing::debug!("SWUpdate closed the stream at its end (EPIPE)");
                    None
                }
                Ok(Err(e)) => Some(format!("writing the last bytes to SWUpdate: {e}")),
                Err(_) => Some("SWUpdate did not take the last bytes".to_string()),
            };
            if let Some(what) = what {
                return Err(self.rejected(what).await);
            }
        }
        let _ = stream.shutdown().await;
        drop(stream);
        let inst = begun(self.install.take(), "finish")?;
        self.complete(inst, progress).await
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        self.route = None;
        if let Some(k) = self.kept.take() {
            k.remove(&self.config.spool_dir, &spool::SWUPDATE);
        }
        if self.spool.take().is_some() {
            // Nothing reached SWUpdate; dropping the spool removed the file.
            self.keep_log([
                "SWUpdate: the spooled update was discarded; nothing reached SWUpdate".to_string(),
            ]);
            return Ok(());
        }
        let Some(mut inst) = self.install.take() else {
            return Ok(());
        };
        // Without the held-back tail SWUpdate cannot complete a .swu that ends there: it
        // fails the install. One whose cpio trailer came earlier (padding after it) may
        // already be installed: that SUCCESS is reverted.
        inst.pending = None;
        drop(inst.stream.take());
        let r = self
            .wait_result(&inst.monitor, self.config.timeout, None, (0, 0))
            .await;
        self.run_messages(&inst.monitor).await;
        match r {
            Ok(Status::Success) => Err(self
                .success_after_abort("the payload did not verify, the stream was cut")
                .await),
            Ok(_) => {
                self.keep_log(["SWUpdate: the aborted install ended in FAILURE".to_string()]);
                Ok(())
            }
            Err(why) => {
                self.keep_log([format!("SWUpdate, after the stream was closed: {why}")]);
                Ok(())
            }
        }
    }

    /// After the reboot: `ustate` INSTALLED or TESTING means the new software runs on
    /// trial; FAILED (the bootloader fell back) or anything else means it does not.
    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        if !self.config.ustate {
            return Ok(true);
        }
        let st = self
            .control
            .update_state()
            .await
            .map_err(|e| BackendError::failed(format!("reading ustate: {e}")))?;
        tracing::info!(ustate = ?st, "SWUpdate update state after the reboot");
        if matches!(st, None | Some(UpdateState::NotAvailable)) {
            self.keep_log([format!(
                "SWUpdate: no bootloader state (ustate {st:?}) to judge the reboot by: {USTATE_HINT}"
            )]);
        }
        Ok(matches!(
            st,
            Some(UpdateState::Installed) | Some(UpdateState::Testing)
        ))
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        Ok(None)
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        if !self.config.ustate {
            return Ok(());
        }
        let state = self
            .control
            .update_state()
            .await
            .map_err(|e| BackendError::failed(format!("reading ustate: {e}")))?;
        match state {
            Some(UpdateState::Installed) | Some(UpdateState::Testing) => self
                .control
                .set_update_state(UpdateState::Ok)
                .await
                .map_err(|e| BackendError::failed(format!("setting ustate=0: {e}"))),
            // Nothing on trial (a dry run, or already committed).
            Some(UpdateState::Ok) => Ok(()),
            other => Err(BackendError::failed(format!(
                "ustate is {other:?}, not INSTALLED/TESTING; refusing to commit"
            ))),
        }
    }

    /// On trial: `ustate` FAILED, for the bootloader to fall back. Otherwise nothing to undo.
    async fn rollback(&mut self) -> Result<(), BackendError> {
        if !self.config.ustate {
            return Err(BackendError::failed(
                "SWUpdate without ustate (backend.swupdate.ustate = false) cannot roll back",
            ));
        }
        if self.verify_reboot().await? {
            self.control
                .set_update_state(UpdateState::Failed)
                .await
                .map_err(|e| BackendError::failed(format!("setting ustate=FAILED: {e}")))?;
        }
        Ok(())
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        match self.control.hw_revision().await {
            Ok((board, revision)) => {
                out.push(("swupdate.hw_board".into(), board.into()));
                out.push(("swupdate.hw_revision".into(), revision.into()));
            }
            Err(e) => tracing::debug!(error = %e, "SWUpdate hardware revision"),
        }
        out.extend(self.sw_versions().await);
        out
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// SWUpdate's latest progress while the stream is still arriving (images marked
    /// `installed-directly` are written as they come): "SWUpdate step 1/2 rootfs.img (raw) 30%".
    /// While spooling: that SWUpdate gets the update once it verified.
    fn stream_note(&self) -> Option<String> {
        if self.spool.is_some() {
            return Some(SPOOL_NOTE.to_string());
        }
        let inst = self.install.as_ref()?;
        let s = inst.monitor.state();
        s.progress
            .as_ref()
            .map(|f| format!("SWUpdate {}", f.describe()))
    }
}
