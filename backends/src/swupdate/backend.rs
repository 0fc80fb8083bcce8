//! `SwupdateBackend`: the install, its result, `ustate` and the inventory (the invariants
//! are in the `swupdate` module's documentation).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::abi::{Abi, InstallRequest, RunType, Status};
use super::control::{Control, InstallStart, IpcError, UpdateState};
use super::progress::{self, Monitor};
use super::socket;
use super::SwupdateConfig;
use crate::{Backend, BackendError, Outcome, PayloadInfo, Phase, Progress, ProgressSink};

/// The payload type (Mender's own `swu` update module uses the same name).
pub const PAYLOAD_TYPE: &str = "swu";
/// Lines of SWUpdate output kept for the deployment log between two `take_log` calls.
const MAX_KEPT_LOG: usize = 1000;
/// What to do when SWUpdate has no bootloader state.
const USTATE_HINT: &str = "run swupdate with a bootloader (-B uboot or grub), or set \
                           backend.swupdate.ustate = false";
/// `/etc/sw-versions` is read up to this size.
const MAX_SW_VERSIONS: u64 = 64 * 1024;

/// One install in flight.
struct Install {
    stream: Option<UnixStream>,
    /// The last chunk received: sent only by `finish`.
    pending: Option<Bytes>,
    sent: u64,
    size: u64,
    monitor: Monitor,
}

/// The SWUpdate backend.
pub struct SwupdateBackend {
    config: SwupdateConfig,
    control: Control,
    progress_path: PathBuf,
    install: Option<Install>,
    log: Vec<String>,
}

fn failed(message: String, log: Vec<String>) -> BackendError {
    BackendError::Failed { message, log }
}

fn not_started(e: IpcError) -> BackendError {
    BackendError::NotStarted(format!(
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
            control: Control::new(&paths.control, abi, config.timeout),
            progress_path: paths.progress,
            config,
            install: None,
            log: Vec::new(),
        }
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    fn keep_log(&mut self, lines: impl IntoIterator<Item = String>) {
        self.log.extend(lines);
        if self.log.len() > MAX_KEPT_LOG {
            let cut = self.log.len() - MAX_KEPT_LOG;
            self.log.drain(..cut);
        }
    }

    /// The progress socket, connected before a REQ_INSTALL so the run's START frame is not
    /// missed; `None` (GET_STATUS polling) when it cannot be used.
    async fn watch(&self) -> Monitor {
        match progress::connect(&self.progress_path, self.config.timeout).await {
            Ok(s) => Monitor::new(Some(s)),
            Err(e) => {
                tracing::warn!(error = %e, "SWUpdate progress socket unusable; polling GET_STATUS");
                Monitor::new(None)
            }
        }
    }

    /// REQ_INSTALL, retrying a busy daemon with doubling waits. Each attempt watches the
    /// progress socket from just before its request, so frames of another client's run
    /// never count for this one.
    async fn request_install(&self) -> Result<(UnixStream, Monitor), BackendError> {
        let req = InstallRequest {
            run: if self.config.dry_run {
                RunType::DryRun
            } else {
                RunType::Default
            },
            info: "mender-bridge".into(),
            software_set: self.config.software_set.clone(),
            running_mode: self.config.running_mode.clone(),
        };
        let mut wait = self.config.busy_backoff;
        let mut attempt = 0;
        loop {
            let monitor = self.watch().await;
            match self
                .control
                .start_install(&req)
                .await
                .map_err(not_started)?
            {
                InstallStart::Accepted(s) => return Ok((s, monitor)),
                InstallStart::Refused(reason) => {
                    let reason = if reason.is_empty() {
                        "NACK without a reason (API version, or a software set/mode the daemon \
                         does not accept with -q)"
                            .to_string()
                    } else {
                        reason
                    };
                    return Err(BackendError::NotStarted(format!(
                        "SWUpdate refused the install request: {reason}"
                    )));
                }
                InstallStart::Busy(reason) => {
                    if attempt >= self.config.busy_retries {
                        return Err(BackendError::NotStarted(format!(
                            "SWUpdate is busy: \"{reason}\" after {} attempts",
                            attempt + 1
                        )));
                    }
                    attempt += 1;
                    tracing::warn!(%reason, attempt, wait_ms = wait.as_millis() as u64, "SWUpdate busy; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Waits up to `limit` for the run's result, forwarding progress to `sink`. Without
    /// the progress socket it polls GET_STATUS; a daemon unreachable for `timeout` ends the
    /// wait. `Err` says why there is no result.
    async fn wait_result(
        &self,
        monitor: &Monitor,
        limit: Duration,
        sink: Option<&dyn ProgressSink>,
        bytes: (u64, u64),
    ) -> Result<Status, String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = 0;
        let mut unreachable_since: Option<tokio::time::Instant> = None;
        loop {
            let (alive, progress) = {
                let s = monitor.state();
                if let Some(r) = s.result {
                    return Ok(r);
                }
                let p = (s.progress_seq != seen)
                    .then(|| s.progress.clone())
                    .flatten();
                seen = s.progress_seq;
                (s.progress_alive, p)
            };
            if let (Some(sink), Some(f)) = (sink, progress) {
                sink.report(Progress {
                    phase: Phase::Installing,
                    bytes_done: bytes.0,
                    bytes_total: Some(bytes.1),
                    percent: f.overall_percent(),
                    message: Some(f.describe()),
                });
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(format!("no result within {} s", limit.as_secs()));
            }
            if alive {
                monitor.changed(Duration::from_millis(500)).await;
                continue;
            }
            match monitor.poll_status(&self.control).await {
                Ok(()) => unreachable_since = None,
                Err(e) => {
                    let since = *unreachable_since.get_or_insert(now);
                    if now.duration_since(since) >= self.config.timeout {
                        return Err(format!("the daemon stopped answering: {e}"));
                    }
                    tracing::warn!(error = %e, "SWUpdate GET_STATUS");
                }
            }
            if monitor.state().result.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Ends an install that SWUpdate stopped reading: its result and messages.
    async fn rejected(&mut self, what: String) -> BackendError {
        let Some(inst) = self.install.take() else {
            return failed(what, vec![]);
        };
        drop(inst.stream);
        let r = self
            .wait_result(&inst.monitor, self.config.timeout, None, (0, 0))
            .await;
        let (reason, lines) = {
            let s = inst.monitor.state();
            (s.reason(), s.log.iter().cloned().collect::<Vec<_>>())
        };
        self.keep_log(lines.clone());
        match r {
            Ok(status) => failed(
                format!("{what}; SWUpdate: {}: {reason}", status.name()),
                lines,
            ),
            Err(why) => failed(format!("{what}; SWUpdate: {why}; {reason}"), lines),
        }
    }

    /// After SUCCESS: the bootloader state must be there (NOT_AVAILABLE or ERROR: the
    /// reboot could never be judged, so this fails now, before any reboot; SWUpdate 2022.12
    /// with `-B none` keeps `ustate` in memory after an install, which only the check after
    /// the reboot catches); with a reboot ahead, `ustate` INSTALLED (SWUpdate sets it itself
    /// with a bootloader; set here when it did not).
    async fn check_ustate(&mut self, reboot: bool) -> Result<(), BackendError> {
        let hint = USTATE_HINT;
        let state = self.control.update_state().await.map_err(|e| {
            failed(
                format!("reading ustate after the install: {e} ({hint})"),
                vec![],
            )
        })?;
        match state {
            Some(UpdateState::Installed) => Ok(()),
            None | Some(UpdateState::NotAvailable) | Some(UpdateState::Error) => Err(failed(
                format!(
                    "SWUpdate: no bootloader state (ustate {state:?}) to confirm the update \
                     with; {hint}"
                ),
                vec![],
            )),
            Some(_) if reboot => self
                .control
                .set_update_state(UpdateState::Installed)
                .await
                .map_err(|e| failed(format!("setting ustate=INSTALLED: {e}"), vec![])),
            Some(_) => Ok(()),
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
    fn payload_types(&self) -> &[&str] {
        &[PAYLOAD_TYPE]
    }

    /// The control socket answers GET_STATUS: the daemon is there.
    async fn preflight(&mut self) -> Result<(), BackendError> {
        let st = self.control.status().await.map_err(not_started)?;
        tracing::debug!(current = ?st.current, "SWUpdate answers");
        Ok(())
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        if payload.payload_type != PAYLOAD_TYPE {
            return Err(BackendError::NotStarted(format!(
                "the swupdate backend installs '{PAYLOAD_TYPE}' payloads, not '{}'",
                payload.payload_type
            )));
        }
        self.install = None;
        let (stream, mut monitor) = self.request_install().await?;
        monitor.accepted();
        match self.control.notify_stream().await {
            Ok(n) => monitor.follow_notifications(&self.control, n),
            Err(e) => tracing::warn!(error = %e, "SWUpdate notifications unavailable"),
        }
        tracing::info!(file = %payload.file_name, size = payload.size, socket = %self.control.path.display(), "streaming the update into SWUpdate");
        self.install = Some(Install {
            stream: Some(stream),
            pending: None,
            sent: 0,
            size: payload.size,
            monitor,
        });
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        let limit = self.config.write_timeout;
        let inst = self
            .install
            .as_mut()
            .ok_or_else(|| failed("write before begin".into(), vec![]))?;
        let Some(prev) = inst.pending.replace(chunk) else {
            return Ok(());
        };
        let stream = inst
            .stream
            .as_mut()
            .ok_or_else(|| failed("write after the stream ended".into(), vec![]))?;
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

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Outcome, BackendError> {
        let inst = self
            .install
            .as_mut()
            .ok_or_else(|| failed("finish before begin".into(), vec![]))?;
        let mut stream = inst
            .stream
            .take()
            .ok_or_else(|| failed("finish called twice".into(), vec![]))?;
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
        let inst = self
            .install
            .take()
            .ok_or_else(|| failed("finish before begin".into(), vec![]))?;
        let r = self
            .wait_result(
                &inst.monitor,
                self.config.install_timeout,
                Some(progress),
                (inst.sent, inst.size),
            )
            .await;
        let (reason, lines) = {
            let s = inst.monitor.state();
            (s.reason(), s.log.iter().cloned().collect::<Vec<_>>())
        };
        self.keep_log(lines.clone());
        match r {
            Ok(Status::Success) => {}
            Ok(_) => return Err(failed(format!("SWUpdate: FAILURE: {reason}"), lines)),
            Err(why) => return Err(failed(format!("SWUpdate: {why}"), lines)),
        }
        tracing::info!(bytes = inst.sent, "SWUpdate installed the update");
        if self.config.dry_run {
            return Ok(Outcome::Installed);
        }
        if self.config.ustate {
            self.check_ustate(self.config.reboot).await?;
        }
        Ok(if self.config.reboot {
            Outcome::RebootRequired
        } else {
            Outcome::Installed
        })
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        let Some(mut inst) = self.install.take() else {
            return Ok(());
        };
        // Without the held-back tail SWUpdate cannot complete: it fails the install.
        inst.pending = None;
        drop(inst.stream.take());
        let r = self
            .wait_result(&inst.monitor, self.config.timeout, None, (0, 0))
            .await;
        let lines: Vec<String> = inst.monitor.state().log.iter().cloned().collect();
        self.keep_log(lines);
        match r {
            Ok(Status::Success) => Err(failed(
                "SWUpdate reported SUCCESS for a stream cut before its end".into(),
                vec![],
            )),
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
            .map_err(|e| failed(format!("reading ustate: {e}"), vec![]))?;
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
            .map_err(|e| failed(format!("reading ustate: {e}"), vec![]))?;
        match state {
            Some(UpdateState::Installed) | Some(UpdateState::Testing) => self
                .control
                .set_update_state(UpdateState::Ok)
                .await
                .map_err(|e| failed(format!("setting ustate=0: {e}"), vec![])),
            // Nothing on trial (a dry run, or already committed).
            Some(UpdateState::Ok) => Ok(()),
            other => Err(failed(
                format!("ustate is {other:?}, not INSTALLED/TESTING; refusing to commit"),
                vec![],
            )),
        }
    }

    /// On trial: `ustate` FAILED, for the bootloader to fall back. Otherwise nothing to undo.
    async fn rollback(&mut self) -> Result<(), BackendError> {
        if !self.config.ustate {
            return Err(failed(
                "SWUpdate without ustate (backend.swupdate.ustate = false) cannot roll back".into(),
                vec![],
            ));
        }
        if self.verify_reboot().await? {
            self.control
                .set_update_state(UpdateState::Failed)
                .await
                .map_err(|e| failed(format!("setting ustate=FAILED: {e}"), vec![]))?;
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
    fn stream_note(&self) -> Option<String> {
        let inst = self.install.as_ref()?;
        let s = inst.monitor.state();
        s.progress
            .as_ref()
            .map(|f| format!("SWUpdate {}", f.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sw_versions_lines() {
        let v = parse_sw_versions("# c\nrootfs 1.2.3\nbad\nuboot  2023.01 extra\n");
        assert_eq!(
            v,
            vec![
                ("swupdate.version.rootfs".to_string(), "1.2.3".into()),
                ("swupdate.version.uboot".to_string(), "2023.01".into()),
            ]
        );
    }
}
