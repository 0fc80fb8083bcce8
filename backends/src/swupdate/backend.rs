//! `SwupdateBackend`: the route (stream or spool, decided at preflight), the install, its
//! result, `ustate` and the inventory (the invariants are in the `swupdate` module's
//! documentation).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::abi::{Abi, InstallRequest, RunType, Status};
use super::control::{Control, InstallStart, IpcError, UpdateState};
use super::probe::{self, Verdict};
use super::progress::{self, Monitor};
use super::socket;
use super::{SwupdateConfig, SwupdateMode};
use crate::spool::{self, Spool};
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
/// A verified spool file goes to SWUpdate in pieces of this size.
const SPOOL_CHUNK: usize = 256 * 1024;
/// After a FAILURE, how long the probe waits for SWUpdate's error texts, which come on
/// another connection than the result.
const PROBE_SETTLE: Duration = Duration::from_secs(1);
/// With the progress socket connected but silent this long, GET_STATUS is polled too.
const PROGRESS_SILENCE: Duration = Duration::from_secs(2);
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
    log: Vec<String>,
}

fn failed(message: String, log: Vec<String>) -> BackendError {
    BackendError::Failed { message, log }
}

fn not_started(e: IpcError) -> BackendError {
    if e.untrusted() {
        return BackendError::NotStarted(format!("SWUpdate: {e}"));
    }
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
            control: Control::new(&paths.control, abi, config.timeout)
                .allowing_uid(config.swupdate_uid),
            progress_path: paths.progress,
            config,
            route: None,
            verdict: None,
            install: None,
            spool: None,
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

    /// Sends the unsigned probe as a dry run and judges SWUpdate's answer
    /// ([`probe`](super::probe)). Errors only when the probe cannot be sent (daemon absent,
    /// busy after the retries, refused, or someone else's socket).
    pub async fn probe(&mut self) -> Result<Verdict, BackendError> {
        let (mut stream, monitor) = self
            .open_install(RunType::DryRun, probe::PROBE_INFO, true)
            .await?;
        let swu = probe::probe_swu();
        let limit = self.config.timeout;
        let sent = match tokio::time::timeout(limit, stream.write_all(&swu)).await {
            Ok(Ok(())) => Ok(()),
            // SWUpdate stops reading once it refused the image: its result decides.
            Ok(Err(e)) if broken(&e) => Ok(()),
            Ok(Err(e)) => Err(format!("writing the probe: {e}")),
            Err(_) => Err(format!(
                "SWUpdate took no probe data for {} s",
                limit.as_secs()
            )),
        };
        let _ = stream.shutdown().await;
        drop(stream);
        let result = match sent {
            Ok(()) => self.wait_result(&monitor, limit, None, (0, 0)).await,
            Err(e) => Err(e),
        };
        let mut verdict = probe::classify(result.clone(), &monitor.state().errors);
        if matches!(result, Ok(Status::Failure)) && !verdict.enforcing() {
            let until = tokio::time::Instant::now() + PROBE_SETTLE;
            while tokio::time::Instant::now() < until && !verdict.enforcing() {
                monitor.changed(Duration::from_millis(100)).await;
                verdict = probe::classify(result.clone(), &monitor.state().errors);
            }
        }
        tracing::info!(?verdict, "SWUpdate signature probe");
        Ok(verdict)
    }

    /// Decides this deployment's route from the mode and (except in mode `spool`) the
    /// probe. Mode `stream` without proven enforcement is refused.
    async fn decide(&mut self) -> Result<Route, BackendError> {
        let mode = self.config.mode;
        if mode == SwupdateMode::Spool {
            self.verdict = None;
            return self.spool_route("mode \"spool\"");
        }
        let verdict = self.probe().await?;
        self.verdict = Some(verdict.clone());
        if verdict.enforcing() {
            let line = format!("{}: streaming the payload into it", verdict.describe());
            tracing::info!("{line}");
            self.keep_log([format!("SWUpdate route: {line}")]);
            return Ok(Route::Stream);
        }
        match mode {
            SwupdateMode::Stream => Err(BackendError::NotStarted(format!(
                "{}; backend.swupdate.mode = \"stream\" needs SWUpdate to enforce signed \
                 images (swupdate -k): use mode \"spool\" or \"auto\"",
                verdict.describe()
            ))),
            _ if self.config.payload_authenticated => self.spool_route(&format!(
                "{}; the artifact signature is checked",
                verdict.describe()
            )),
            _ => {
                let line = format!(
                    "{}, and no ArtifactVerifyKey is set: nothing authenticates the payload; \
                     streaming it into SWUpdate unverified",
                    verdict.describe()
                );
                tracing::warn!("{line}");
                self.keep_log([format!("SWUpdate route: WARNING: {line}")]);
                Ok(Route::Stream)
            }
        }
    }

    /// The spool directory is usable (created when missing, leftovers removed).
    fn spool_route(&mut self, why: &str) -> Result<Route, BackendError> {
        let dir = self.config.spool_dir.clone();
        spool::prepare_dir(&dir, &spool::SWUPDATE)?;
        let line = format!(
            "{why}: the payload is spooled in {} and reaches SWUpdate only after its checksum \
             matched",
            dir.display()
        );
        tracing::info!("{line}");
        self.keep_log([format!("SWUpdate route: {line}")]);
        Ok(Route::Spool)
    }

    /// SWUpdate reported SUCCESS for an install the bridge did not let complete: the
    /// payload never verified, yet SWUpdate installed. Sets `ustate` FAILED (the
    /// bootloader must not keep it) and says so. Returns the error to report.
    async fn success_after_abort(&mut self, what: &str) -> BackendError {
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
        failed(line, vec![])
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

    /// The run type of an update (`dry_run` from the configuration).
    fn run_type(&self) -> RunType {
        if self.config.dry_run {
            RunType::DryRun
        } else {
            RunType::Default
        }
    }

    /// An accepted install ([`Self::request_install`]) whose monitor follows SWUpdate's
    /// notifications as well (its error texts), when the daemon offers them.
    async fn open_install(
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
            // It read a complete .swu before the payload's end: installed, unverified.
            Ok(Status::Success) if !inst.verified => self.success_after_abort(&what).await,
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

    /// The verified spool file into SWUpdate: REQ_INSTALL only now, then the file in
    /// [`SPOOL_CHUNK`] pieces with progress, then the result.
    async fn install_spooled(
        &mut self,
        file: std::fs::File,
        size: u64,
        progress: &dyn ProgressSink,
    ) -> Result<Outcome, BackendError> {
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
                phase: Phase::Installing,
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
    async fn complete(
        &mut self,
        inst: Install,
        progress: &dyn ProgressSink,
    ) -> Result<Outcome, BackendError> {
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
            return Err(BackendError::NotStarted(format!(
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
        self.route = None;
        if let Some(mut spool) = self.spool.take() {
            // Dropped (and so removed from disk) when this returns, whatever happened.
            let file = spool.seal_open().await?;
            return self.install_spooled(file, spool.written(), progress).await;
        }
        let inst = self
            .install
            .as_mut()
            .ok_or_else(|| failed("finish before begin".into(), vec![]))?;
        let mut stream = inst
            .stream
            .take()
            .ok_or_else(|| failed("finish called twice".into(), vec![]))?;
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
        let inst = self
            .install
            .take()
            .ok_or_else(|| failed("finish before begin".into(), vec![]))?;
        self.complete(inst, progress).await
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        self.route = None;
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
        let lines: Vec<String> = inst.monitor.state().log.iter().cloned().collect();
        self.keep_log(lines);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    use super::super::abi;

    /// A scripted daemon: ACKs every control message, swallows an install stream until
    /// EOF (counting its bytes), then sends RUN and SUCCESS to the progress client; records
    /// every SET_UPDATE_STATE.
    struct Scripted {
        received: Arc<Mutex<u64>>,
        states: Arc<Mutex<Vec<u8>>>,
    }

    fn ack(size: usize) -> Vec<u8> {
        let mut m = vec![0u8; size];
        m[0..4].copy_from_slice(&abi::IPC_MAGIC.to_ne_bytes());
        m[4..8].copy_from_slice(&abi::msg::ACK.to_ne_bytes());
        m
    }

    fn frame(status: i32) -> Vec<u8> {
        let l = abi::PROGRESS_NATIVE_UNPACKED;
        let mut f = vec![0u8; l.size];
        f[l.status..l.status + 4].copy_from_slice(&status.to_ne_bytes());
        f
    }

    fn scripted(ctl: UnixListener, prog: UnixListener) -> Scripted {
        let size = Abi::NATIVE.layout().size;
        let received = Arc::new(Mutex::new(0u64));
        let states = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut p, _) = prog.accept().await.unwrap();
            let _ = done_rx.await;
            p.write_all(&frame(2)).await.unwrap();
            p.write_all(&frame(3)).await.unwrap();
            let _ = p.read_u8().await;
        });
        let (r, st) = (received.clone(), states.clone());
        let done = Arc::new(Mutex::new(Some(done_tx)));
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = ctl.accept().await else {
                    return;
                };
                let (r, st, done) = (r.clone(), st.clone(), done.clone());
                tokio::spawn(async move {
                    let mut m = vec![0u8; size];
                    if c.read_exact(&mut m).await.is_err() {
                        return;
                    }
                    let _ = c.write_all(&ack(size)).await;
                    match abi::get_i32(&m, abi::TYPE) {
                        abi::msg::REQ_INSTALL => {
                            let mut buf = vec![0u8; 65536];
                            while let Ok(n) = c.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                *r.lock().unwrap() += n as u64;
                            }
                            if let Some(d) = done.lock().unwrap().take() {
                                let _ = d.send(());
                            }
                        }
                        abi::msg::SET_UPDATE_STATE => st.lock().unwrap().push(m[abi::MSG]),
                        // NOTIFY_STREAM: kept open, silent.
                        _ => {
                            let _ = c.read_u8().await;
                        }
                    }
                });
            }
        });
        Scripted { received, states }
    }

    #[tokio::test]
    async fn a_success_for_an_aborted_stream_sets_ustate_failed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (ctl, prog) = (dir.path().join("ctl"), dir.path().join("prog"));
        let daemon = scripted(
            UnixListener::bind(&ctl).unwrap(),
            UnixListener::bind(&prog).unwrap(),
        );
        // The scripted daemon runs as this test's user.
        let uid = std::fs::metadata(&ctl).unwrap().uid();
        let mut b = SwupdateBackend::new(SwupdateConfig {
            control_socket: Some(ctl),
            progress_socket: Some(prog),
            swupdate_uid: Some(uid),
            ustate: true,
            reboot: false,
            timeout: Duration::from_secs(5),
            ..SwupdateConfig::default()
        });
        b.route = Some(Route::Stream);
        let payload = PayloadInfo {
            payload_type: PAYLOAD_TYPE.into(),
            file_name: "x.swu".into(),
            size: 3000,
            sha256: [0; 32],
        };
        b.begin(&payload).await.unwrap();
        b.write(Bytes::from(vec![1u8; 1000])).await.unwrap();
        b.write(Bytes::from(vec![2u8; 2000])).await.unwrap();
        // The checksum did not match: abort, and the daemon says SUCCESS all the same.
        let e = b.abort().await.unwrap_err().to_string();
        assert!(
            e.contains("SWUpdate reported SUCCESS for an install the bridge aborted")
                && e.contains("ustate set to FAILED"),
            "{e}"
        );
        assert_eq!(*daemon.states.lock().unwrap(), vec![b'3'], "ustate FAILED");
        assert_eq!(
            *daemon.received.lock().unwrap(),
            1000,
            "the held-back chunk never went"
        );
        assert!(b
            .take_log()
            .iter()
            .any(|l| l.contains("an unverified update was installed")));
    }

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
