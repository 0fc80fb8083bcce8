//! What SWUpdate says about the running install: the progress socket (`swupdateprog`,
//! frames version-detected), the NOTIFY_STREAM connection (its notification texts, for the
//! deployment log) and, when the progress socket is unusable, GET_STATUS polling.
//!
//! Progress socket versions: 2022.12/2023.05 send frames right away with `magic` 0;
//! 2023.12–2024.05 put the API version (1.x) in that word; from 2024.12 (API 2.x) the daemon
//! first sends an 8-byte `{apiversion, "ACK"}`, and frames are 2416 bytes (aligned) up to
//! 2025.05 but 2408 (packed) from 2025.12 under the same API version — told apart by where
//! the first frame ends (the next frame starts with the version word, and a frame is
//! written with one `send()`).
//!
//! Invariants: a result (SUCCESS/FAILURE) counts only after the run was seen active since
//! the install was accepted ([`Monitor::accepted`]; a START, RUN or PROGRESS frame, or a
//! non-IDLE GET_STATUS), so a stale result of an earlier run is never taken; the kept
//! log is bounded ([`MAX_LOG_LINES`], oldest dropped); every read is one fixed-size frame.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::abi::{
    self, msg, Notification, ProgressFrame, ProgressLayout, Reply, Status, PROGRESS_ALIGNED,
    PROGRESS_NATIVE_UNPACKED, PROGRESS_PACKED,
};
use super::control::{Control, IpcError};

/// SWUpdate lines kept for the deployment log (oldest dropped beyond).
pub const MAX_LOG_LINES: usize = 500;
/// Error-level texts kept per run (for the signature probe's verdict).
pub const MAX_ERRORS: usize = 20;
/// Notification levels kept (ERROR 1, WARN 2, INFO 3); DEBUG and TRACE are dropped.
const MAX_LEVEL: i32 = 3;

/// The progress protocol generation detected on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressVersion {
    /// `magic` 0 (2022.12, 2023.05) or API 1.x (2023.12–2024.05): frames right away.
    Unversioned,
    /// API 2.x after the ACK handshake, 2416-byte frames (2024.12–2025.05).
    AckAligned,
    /// API 2.x after the ACK handshake, packed 2408-byte frames (2025.12+).
    AckPacked,
}

/// What is known about the running install.
#[derive(Debug, Default)]
pub struct State {
    /// The latest progress frame with steps, and a counter that moves with each.
    pub progress: Option<ProgressFrame>,
    pub progress_seq: u64,
    /// A non-IDLE, non-result frame (progress socket) or state (GET_STATUS) was seen since
    /// the install was accepted: results from here on belong to this run.
    pub active: bool,
    /// SUCCESS or FAILURE of this run.
    pub result: Option<Status>,
    /// The progress socket delivers frames (false: poll GET_STATUS).
    pub progress_alive: bool,
    /// Frames read from the progress socket so far.
    pub frames: u64,
    /// NOTIFY_STREAM is followed: GET_STATUS texts are not logged a second time.
    pub notifying: bool,
    pub version: Option<ProgressVersion>,
    /// SWUpdate's messages for the deployment log, and how many were dropped.
    pub log: VecDeque<String>,
    pub dropped: usize,
    /// Every error-level text of this run, in order (the first [`MAX_ERRORS`] kept): the
    /// first is the cause, e.g. "Authentication of all signatures failed" (the failure
    /// message); later ones are consequences ("Image invalid or corrupted"); the signature
    /// probe looks at all of them.
    pub errors: Vec<String>,
    last_info: String,
    last_step: (u32, u32),
}

impl State {
    fn push_log(&mut self, line: String) {
        if self.log.len() >= MAX_LOG_LINES {
            self.log.pop_front();
            self.dropped += 1;
        }
        self.log.push_back(line);
    }

    fn on_frame(&mut self, f: ProgressFrame) {
        self.frames += 1;
        match f.status {
            Some(Status::Idle) | None => {}
            // START carries the request's own info: not worth a log line.
            Some(Status::Start) => {
                self.active = true;
                self.last_info = f.info.clone();
            }
            Some(Status::Success) | Some(Status::Failure) if self.active => {
                self.result = f.status;
            }
            // A result before this run was seen active is an earlier run's.
            Some(Status::Success) | Some(Status::Failure) => {}
            // A run refused early (signature, hardware) sends RUN then FAILURE, no START.
            Some(_) => self.active = true,
        }
        if !f.info.is_empty() && f.info != self.last_info {
            self.last_info = f.info.clone();
            self.push_log(format!("SWUpdate: {}", f.info));
        }
        if f.nsteps > 0 && (f.cur_step, f.nsteps) != self.last_step {
            self.last_step = (f.cur_step, f.nsteps);
            if f.cur_step >= 1 && f.cur_step <= f.nsteps {
                self.push_log(format!("SWUpdate: {}", f.describe()));
            }
        }
        if f.nsteps > 0 && f.cur_step >= 1 {
            self.progress = Some(f);
            self.progress_seq += 1;
        }
    }

    fn on_notification(&mut self, n: Notification) {
        if n.msg.is_empty() || n.status == Some(Status::Progress) {
            return;
        }
        let failed = n.status == Some(Status::Failure) || n.level == 1;
        if failed && self.errors.len() < MAX_ERRORS {
            self.errors.push(n.msg.clone());
        }
        if failed || n.level <= MAX_LEVEL {
            let s = n.status.map(Status::name).unwrap_or("?");
            self.push_log(format!("SWUpdate {s}: {}", n.msg));
        }
    }

    /// The reason to give for a failed run.
    pub fn reason(&self) -> String {
        self.errors
            .first()
            .cloned()
            .or_else(|| self.log.back().cloned())
            .unwrap_or_else(|| "no message from SWUpdate".into())
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

/// Watches one install. Its reader tasks stop when it is dropped.
pub struct Monitor {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects to the progress socket (before REQ_INSTALL, so START is not missed); its
/// directory and peer are checked as the control socket's are (`uid`: besides root).
pub async fn connect(
    path: &Path,
    limit: Duration,
    uid: Option<u32>,
) -> Result<UnixStream, IpcError> {
    super::control::connect_checked(path, limit, "connect", uid).await
}

impl Monitor {
    /// A monitor fed by `progress` (if connected); without it, [`Monitor::poll_status`]
    /// must be driven by the waiter.
    pub fn new(progress: Option<UnixStream>) -> Monitor {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                progress_alive: progress.is_some(),
                ..State::default()
            }),
            changed: Notify::new(),
        });
        let mut tasks = Vec::new();
        if let Some(s) = progress {
            let sh = shared.clone();
            tasks.push(tokio::spawn(async move {
                let r = read_progress(s, &sh).await;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "SWUpdate progress socket closed");
                }
                lock(&sh).progress_alive = false;
                sh.changed.notify_waiters();
            }));
        }
        Monitor { shared, tasks }
    }

    /// Adds the NOTIFY_STREAM reader (after the install was accepted).
    pub fn follow_notifications(&mut self, control: &Control, stream: UnixStream) {
        lock(&self.shared).notifying = true;
        let sh = self.shared.clone();
        let size = control.abi.layout().size;
        self.tasks.push(tokio::spawn(async move {
            let mut s = stream;
            let mut buf = vec![0u8; size];
            while s.read_exact(&mut buf).await.is_ok() {
                let r = Reply::parse(buf.clone());
                if r.magic != abi::IPC_MAGIC || r.mtype != msg::NOTIFY_STREAM {
                    continue;
                }
                lock(&sh).on_notification(Notification::parse(&r));
                sh.changed.notify_waiters();
            }
        }));
    }

    /// REQ_INSTALL was accepted: forget what an earlier run may have sent since the socket
    /// was connected. Called before the first byte is streamed; this run's frames that
    /// matter (RUN, PROGRESS, the result) come only once SWUpdate reads the stream.
    pub fn accepted(&self) {
        let mut s = self.state();
        s.active = false;
        s.result = None;
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// After a FAILURE: SWUpdate's error text comes on the notification stream, which may
    /// trail the result on the progress socket (two sockets, no order between them). Waits
    /// up to `limit` for the first error text, so that [`State::reason`] names the cause
    /// and not the last information line. Returns at once when a text is already there,
    /// the run did not fail, or notifications are not followed.
    pub async fn await_reason(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            {
                let s = self.state();
                if !s.notifying || s.result != Some(Status::Failure) || !s.errors.is_empty() {
                    return;
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            // Short steps: a notification between the check and the wait is not missed
            // for longer than one step.
            self.changed((deadline - now).min(Duration::from_millis(50)))
                .await;
        }
    }

    /// Waits up to `limit` for a change.
    pub async fn changed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.shared.changed.notified()).await;
    }

    /// One GET_STATUS poll (the fallback when the progress socket is gone): logs the
    /// dequeued notification; a result counts only once the run was seen active, and is
    /// final only when the daemon is IDLE with its queue drained.
    pub async fn poll_status(&self, control: &Control) -> Result<(), IpcError> {
        let st = control.status().await?;
        let mut s = self.state();
        if !matches!(st.current, Some(Status::Idle)) {
            s.active = true;
        }
        if !st.desc.is_empty() && !s.notifying {
            s.on_notification(Notification {
                status: st.current,
                error: st.error,
                level: if st.error != 0 { 1 } else { 3 },
                msg: st.desc.clone(),
            });
        }
        if s.active && st.current == Some(Status::Idle) && st.desc.is_empty() {
            s.result = st.last_result;
        }
        Ok(())
    }
}

fn lock(sh: &Shared) -> MutexGuard<'_, State> {
    sh.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes read from the progress socket, consumed frame by frame.
struct Frames {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Frames {
    async fn fill(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            let want = (n - self.buf.len()).min(chunk.len());
            let got = self.s.read(&mut chunk[..want]).await?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(())
    }

    /// Reads what else arrives within `limit`, up to `n` bytes in all.
    async fn fill_briefly(&mut self, n: usize, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.fill(n)).await;
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }
}

/// Which layout the first API-2 frame has: `buf` holds at least a packed frame and what
/// followed it within a short wait.
pub fn detect_v2_layout(buf: &[u8], apiversion: u32) -> ProgressLayout {
    let p = PROGRESS_PACKED.size;
    if buf.len() >= p + 4 && abi::get_u32(buf, p) == apiversion {
        PROGRESS_PACKED
    } else if buf.len() >= PROGRESS_ALIGNED.size {
        PROGRESS_ALIGNED
    } else {
        PROGRESS_PACKED
    }
}

async fn read_progress(s: UnixStream, sh: &Shared) -> std::io::Result<()> {
    let mut f = Frames { s, buf: Vec::new() };
    f.fill(8).await?;
    let word = abi::get_u32(&f.buf, 0);
    let (version, layout) = if word >> 16 >= 2 && &f.buf[4..8] == b"ACK\0" {
        f.take(8);
        f.fill(PROGRESS_PACKED.size).await?;
        f.fill_briefly(PROGRESS_ALIGNED.size + 4, Duration::from_millis(200))
            .await;
        let l = detect_v2_layout(&f.buf, word);
        let v = if l == PROGRESS_PACKED {
            ProgressVersion::AckPacked
        } else {
            ProgressVersion::AckAligned
        };
        (v, l)
    } else {
        (ProgressVersion::Unversioned, PROGRESS_NATIVE_UNPACKED)
    };
    tracing::debug!(?version, frame = layout.size, "SWUpdate progress socket");
    lock(sh).version = Some(version);
    loop {
        f.fill(layout.size).await?;
        let frame = ProgressFrame::parse(&layout, &f.take(layout.size));
        lock(sh).on_frame(frame);
        sh.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
