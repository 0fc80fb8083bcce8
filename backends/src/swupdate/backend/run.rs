//! One install's exchange with the daemon: REQ_INSTALL (retried while busy), the progress
//! socket and notifications, the wait for the result, the spooled file sent after it
//! verified, and `ustate` after SUCCESS.
//!
//! Invariants: every wait is bounded (`timeout`, `write_timeout`, `install_timeout`); a
//! SUCCESS for an install the bridge did not complete sets `ustate` FAILED and fails.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{broken, not_started, Install, SwupdateBackend, USTATE_HINT};
use crate::swupdate::abi::{InstallRequest, RunType, Status};
use crate::swupdate::control::{InstallStart, UpdateState};
use crate::swupdate::progress::{self, Monitor};
use crate::{Activation, BackendError, Progress, ProgressSink};

/// A verified spool file goes to SWUpdate in pieces of this size.
const SPOOL_CHUNK: usize = 256 * 1024;
/// With the progress socket connected but silent this long, GET_STATUS is polled too.
const PROGRESS_SILENCE: Duration = Duration::from_secs(2);
/// How long a failed run's error text may trail its result (see
/// [`Monitor::await_reason`]); seen here trailing by a few milliseconds.
const REASON_GRACE: Duration = Duration::from_secs(1);

impl SwupdateBackend {
    /// SWUpdate reported SUCCESS for an install the bridge did not let complete: the
    /// payload never verified, yet SWUpdate installed. Sets `ustate` FAILED (the
    /// bootloader must not keep it) and says so. Returns the error to report.
    pub(super) async fn success_after_abort(&mut self, what: &str) -> BackendError {
        let head = format!(
            "SWUpdate reported SUCCESS for an install the bridge aborted ({what}): an \
             unverified update was installed"
        );
        tracing::error!("{head}");
        let undo = if self.config.dry_run {
            "a dry run: nothing was written".to_string()
        } else if !self.config.ustate {
            "backend.swupdate.ustate = false: the bridge cannot revert it; check the device"
                .to_string()
        } else {
            match self.control.set_update_state(UpdateState::Failed).await {
                Ok(()) => "ustate set to FAILED (3) so the bootloader reverts it".to_string(),
                Err(e) => {
                    tracing::error!(error = %e, "setting ustate=FAILED after an unwanted SUCCESS");
                    format!("setting ustate=FAILED failed: {e}")
                }
            }
        };
        let line = format!("{head}; {undo}");
        self.keep_log([line.clone()]);
        BackendError::failed(line)
    }

    /// The progress socket, connected before a REQ_INSTALL so the run's START frame is not
    /// missed; `None` (GET_STATUS polling) when it cannot be used.
    /// A progress socket bound by someone else is refused outright (its frames could fake a
    /// result).
    async fn watch(&self) -> Result<Monitor, BackendError> {
        match progress::connect(
            &self.progress_path,
            self.config.timeout,
            self.config.swupdate_uid,
        )
        .await
        {
            Ok(s) => Ok(Monitor::new(Some(s))),
            Err(e) if e.untrusted() => Err(not_started(e)),
            Err(e) => {
                tracing::warn!(error = %e, "SWUpdate progress socket unusable; polling GET_STATUS");
                Ok(Monitor::new(None))
            }
        }
    }

    /// REQ_INSTALL, retrying a busy daemon with doubling waits. Each attempt watches the
    /// progress socket from just before its request, so frames of another client's run
    /// never count for this one. `probe`: the signature probe's request (not copied to
    /// SWUpdate's `-o` file).
    async fn request_install(
        &self,
        run: RunType,
        info: &str,
        probe: bool,
    ) -> Result<(UnixStream, Monitor), BackendError> {
        let req = InstallRequest {
            run,
            info: info.into(),
            software_set: self.config.software_set.clone(),
            running_mode: self.config.running_mode.clone(),
            disable_store_swu: probe,
        };
        let mut wait = self.config.busy_backoff;
        let mut attempt = 0;
        loop {
            let monitor = self.watch().await?;
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
                    return Err(BackendError::not_started(format!(
                        "SWUpdate refused the install request: {reason}"
                    )));
                }
                InstallStart::Busy(reason) => {
                    if attempt >= self.config.busy_retries {
                        return Err(BackendError::not_started(format!(
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

    /// An accepted install ([`Self::request_install`]) whose monitor follows SWUpdate's
    /// notifications as well (its error texts), when the daemon offers them.
    pub(super) async fn open_install(
        &self,
        run: RunType,
        info: &str,
        probe: bool,
    ) -> Result<(UnixStream, Monitor), BackendError> {
        let (stream, mut monitor) = self.request_install(run, info, probe).await?;
        monitor.accepted();
        match self.control.notify_stream().await {
            Ok(n) => monitor.follow_notifications(&self.control, n),
            Err(e) => tracing::warn!(error = %e, "SWUpdate notifications unavailable"),
        }
        Ok((stream, monitor))
    }

    /// Waits up to `limit` for the run's result, forwarding progress to `sink`. Without
    /// the progress socket it polls GET_STATUS; a daemon unreachable for `timeout` ends the
    /// wait. `Err` says why there is no result.
    pub(super) async fn wait_result(
        &self,
        monitor: &Monitor,
        limit: Duration,
        sink: Option<&dyn ProgressSink>,
        bytes: (u64, u64),
    ) -> Result<Status, String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = 0;
        let mut unreachable_since: Option<tokio::time::Instant> = None;
        let (mut frames, mut last_frame) = (u64::MAX, tokio::time::Instant::now());
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
                if s.frames != frames {
                    frames = s.frames;
                    last_frame = tokio::time::Instant::now();
                }
                (s.progress_alive, p)
            };
            if let (Some(sink), Some(f)) = (sink, progress) {
                sink.report(Progress {
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
            // The daemon sends progress frames only to the clients its progress thread has
            // accepted: a busy daemon may send a short run's frames (a refused probe: RUN,
            // FAILURE) before it took this connection. After PROGRESS_SILENCE without a
            // frame, GET_STATUS is asked as well.
            if alive && now.duration_since(last_frame) < PROGRESS_SILENCE {
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

    /// The ended run's reason and SWUpdate's messages, the messages also kept for the
    /// deployment log. A failure's error text may trail its result: waited for briefly.
    pub(super) async fn run_messages(&mut self, monitor: &Monitor) -> (String, Vec<String>) {
        monitor.await_reason(REASON_GRACE).await;
        let (reason, lines) = {
            let s = monitor.state();
            (s.reason(), s.log.iter().cloned().collect::<Vec<_>>())
        };
        self.keep_log(lines.clone());
        (reason, lines)
    }

    /// Ends an install that SWUpdate stopped reading: its result and messages.
    pub(super) async fn rejected(&mut self, what: String) -> BackendError {
        let Some(inst) = self.install.take() else {
            return BackendError::failed(what);
        };
        drop(inst.stream);
        let r = self
            .wait_result(&inst.monitor, self.config.timeout, None, (0, 0))
            .await;
        let (reason, lines) = self.run_messages(&inst.monitor).await;
        match r {
            // It read a complete .swu before the payload's end: installed, unverified.
            Ok(Status::Success) if !inst.verified => self.success_after_abort(&what).await,
            Ok(status) => BackendError::failed_with_log(
                format!("{what}; SWUpdate: {}: {reason}", status.name()),
                lines,
            ),
            Err(why) => {
                BackendError::failed_with_log(format!("{what}; SWUpdate: {why}; {reason}"), lines)
            }
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
            BackendError::failed(format!("reading ustate after the install: {e} ({hint})"))
        })?;
        match state {
            Some(UpdateState::Installed) => Ok(()),
            None | Some(UpdateState::NotAvailable) | Some(UpdateState::Error) => {
                Err(BackendError::failed(format!(
                    "SWUpdate: no bootloader state (ustate {state:?}) to confirm the update \
                     with; {hint}"
                )))
            }
            Some(_) if reboot => self
                .control
                .set_update_state(UpdateState::Installed)
                .await
                .map_err(|e| BackendError::failed(format!("setting ustate=INSTALLED: {e}"))),
            Some(_) => Ok(()),
        }
    }

    /// The verified spool file into SWUpdate: REQ_INSTALL only now, then the file in
    /// [`SPOOL_CHUNK`] pieces with progress, then the result.
    pub(super) async fn install_spooled(
        &mut self,
        file: std::fs::File,
        size: u64,
        progress: &dyn ProgressSink,
    ) -> Result<Activation, BackendError> {
        let (mut stream, monitor) = self
            .open_install(self.run_type(), "mender-bridge", false)
            .await?;
        tracing::info!(size, socket = %self.control.path.display(), "streaming the verified update into SWUpdate");
        let mut file = tokio::fs::File::from_std(file);
        let mut buf = vec![0u8; SPOOL_CHUNK];
        let mut sent = 0u64;
        let limit = self.config.write_timeout;
        let mut what = None;
        while sent < size {
            let n = match file.read(&mut buf).await {
                Ok(0) => {
                    what = Some(format!("the spool file ended after {sent} of {size} bytes"));
                    break;
                }
                Ok(n) => n,
                Err(e) => {
                    what = Some(format!("reading the spool file after {sent} bytes: {e}"));
                    break;
                }
            };
            match tokio::time::timeout(limit, stream.write_all(&buf[..n])).await {
                Ok(Ok(())) => sent += n as u64,
                // SWUpdate closes once it read the cpio trailer (or refused the image): the
                // result decides.
                Ok(Err(e)) if broken(&e) => {
                    tracing::debug!(sent, "SWUpdate closed the stream (EPIPE)");
                    break;
                }
                Ok(Err(e)) => {
                    what = Some(format!("writing to SWUpdate after {sent} bytes: {e}"));
                    break;
                }
                Err(_) => {
                    what = Some(format!(
                        "SWUpdate took no data for {} s (after {sent} bytes)",
                        limit.as_secs()
                    ));
                    break;
                }
            }
            let note = monitor
                .state()
                .progress
                .as_ref()
                .map(|f| (f.overall_percent(), f.describe()));
            progress.report(Progress {
                bytes_done: sent,
                bytes_total: Some(size),
                percent: note.as_ref().and_then(|n| n.0),
                message: Some(match note {
                    Some((_, d)) => d,
                    None => "streaming the verified update into SWUpdate".to_string(),
                }),
            });
        }
        let _ = stream.shutdown().await;
        drop(stream);
        let inst = Install {
            stream: None,
            pending: None,
            sent,
            size,
            monitor,
            verified: true,
        };
        if let Some(what) = what {
            self.install = Some(inst);
            return Err(self.rejected(what).await);
        }
        self.complete(inst, progress).await
    }

    /// The stream is closed: SWUpdate's result, then `ustate`.
    pub(super) async fn complete(
        &mut self,
        inst: Install,
        progress: &dyn ProgressSink,
    ) -> Result<Activation, BackendError> {
        let r = self
            .wait_result(
                &inst.monitor,
                self.config.install_timeout,
                Some(progress),
                (inst.sent, inst.size),
            )
            .await;
        let (reason, lines) = self.run_messages(&inst.monitor).await;
        match r {
            Ok(Status::Success) => {}
            Ok(_) => {
                return Err(BackendError::failed_with_log(
                    format!("SWUpdate: FAILURE: {reason}"),
                    lines,
                ))
            }
            Err(why) => {
                return Err(BackendError::failed_with_log(
                    format!("SWUpdate: {why}"),
                    lines,
                ))
            }
        }
        tracing::info!(bytes = inst.sent, "SWUpdate installed the update");
        if self.config.dry_run {
            return Ok(Activation::Installed);
        }
        if self.config.ustate {
            self.check_ustate(self.config.reboot).await?;
        }
        Ok(if self.config.reboot {
            Activation::RebootRequired
        } else {
            Activation::Installed
        })
    }
}
