//! One remote terminal session as the management side sees it: its state (opening, open,
//! refused, stopped, closed), the output the device sent (the newest [`MAX_OUTPUT`] bytes;
//! older bytes are dropped and counted), and a change counter that waiters watch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// Output kept per session; older bytes are dropped.
pub const MAX_OUTPUT: usize = 256 * 1024;

/// Where a session stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum SessionState {
    /// `new` sent, no answer yet.
    Opening,
    /// The device started the shell.
    Open,
    /// The device answered `new` with an error (its message).
    Refused(String),
    /// `stop` sent, no answer yet.
    Stopping,
    /// The device stopped the shell (answer to `stop`, or its own `stop` when the shell
    /// exited); the text is the device's message, if any.
    Stopped(String),
    /// The connection ended (or was replaced) while the session was open.
    Closed,
}

impl SessionState {
    /// No further output or answer can come.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SessionState::Refused(_) | SessionState::Stopped(_) | SessionState::Closed
        )
    }
}

#[derive(Debug)]
struct Inner {
    state: SessionState,
    output: VecDeque<u8>,
    dropped: u64,
    /// Device error messages on this session (`status` 2 on `shell` etc.), newest last.
    errors: VecDeque<String>,
}

/// A session shared between the socket task and management calls.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<watch::Sender<u64>>,
}

/// A copy of a session's output and state.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub state: SessionState,
    /// The kept output (up to [`MAX_OUTPUT`] bytes), as the device sent it.
    #[serde(skip)]
    pub output: Vec<u8>,
    /// Bytes dropped from the front to keep [`MAX_OUTPUT`].
    pub dropped: u64,
    pub errors: Vec<String>,
}

/// Most device error messages kept per session.
const MAX_ERRORS: usize = 16;
/// Longest device error message kept.
const MAX_ERROR_LEN: usize = 1024;

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            inner: Arc::new(Mutex::new(Inner {
                state: SessionState::Opening,
                output: VecDeque::new(),
                dropped: 0,
                errors: VecDeque::new(),
            })),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn state(&self) -> SessionState {
        self.lock().state.clone()
    }

    /// Moves to `state` unless the session already reached a final state.
    pub fn set_state(&self, state: SessionState) {
        {
            let mut i = self.lock();
            if i.state.is_final() {
                return;
            }
            i.state = state;
        }
        self.bump();
    }

    /// Appends device output, dropping the oldest bytes beyond [`MAX_OUTPUT`].
    pub fn push_output(&self, data: &[u8]) {
        {
            let mut i = self.lock();
            let data = if data.len() > MAX_OUTPUT {
                i.dropped += (data.len() - MAX_OUTPUT) as u64;
                &data[data.len() - MAX_OUTPUT..]
            } else {
                data
            };
            let excess = (i.output.len() + data.len()).saturating_sub(MAX_OUTPUT);
            i.output.drain(..excess);
            i.dropped += excess as u64;
            i.output.extend(data);
        }
        self.bump();
    }

    /// Records a device error message (bounded in number and length).
    pub fn push_error(&self, message: &[u8]) {
        {
            let mut i = self.lock();
            let mut text = String::from_utf8_lossy(message).into_owned();
            if text.len() > MAX_ERROR_LEN {
                let mut end = MAX_ERROR_LEN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            if i.errors.len() == MAX_ERRORS {
                i.errors.pop_front();
            }
            i.errors.push_back(text);
        }
        self.bump();
    }

    pub fn snapshot(&self) -> Snapshot {
        let i = self.lock();
        Snapshot {
            state: i.state.clone(),
            output: i.output.iter().copied().collect(),
            dropped: i.dropped,
            errors: i.errors.iter().cloned().collect(),
        }
    }

    /// Waits up to `timeout` until `done` holds for a snapshot; returns the last snapshot
    /// and whether `done` held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Snapshot) -> bool,
    ) -> (Snapshot, bool) {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            let snap = self.snapshot();
            if done(&snap) {
                return (snap, true);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (the sender lives as long as `self`).
                _ => {
                    let snap = self.snapshot();
                    let ok = done(&snap);
                    return (snap, ok);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_from_the_front() {
        let s = Session::new();
        s.push_output(&vec![b'a'; MAX_OUTPUT - 1]);
        s.push_output(b"bc");
        let snap = s.snapshot();
        assert_eq!(snap.output.len(), MAX_OUTPUT);
        assert_eq!(snap.dropped, 1);
        assert!(snap.output.ends_with(b"abc"));
        s.push_output(&vec![b'z'; MAX_OUTPUT + 5]);
        let snap = s.snapshot();
        assert_eq!(snap.dropped, 1 + MAX_OUTPUT as u64 + 5);
        assert!(snap.output.iter().all(|b| *b == b'z'));
    }

    #[test]
    fn final_states_stick() {
        let s = Session::new();
        s.set_state(SessionState::Closed);
        s.set_state(SessionState::Open);
        assert_eq!(s.state(), SessionState::Closed);
    }

    #[tokio::test]
    async fn wait_is_woken_and_bounded() {
        let s = Session::new();
        let s2 = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s2.push_output(b"hello");
        });
        let (snap, ok) = s
            .wait_until(Duration::from_secs(5), |x| x.output.ends_with(b"hello"))
            .await;
        assert!(ok, "{snap:?}");
        let start = std::time::Instant::now();
        let (_, ok) = s
            .wait_until(Duration::from_millis(50), |x| x.output.is_empty())
            .await;
        assert!(!ok);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
