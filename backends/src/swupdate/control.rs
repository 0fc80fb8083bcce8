//! The control socket (`sockinstctrl`): one connection per request, as libswupdate does.
//! Every message is exactly `ipc_message`-sized and goes out in one write (the daemon does
//! a single `read()` and drops short messages); every connect, write and read has a
//! timeout; a reply is read as exactly one message, never more.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::timeout;

use super::abi::{self, msg, Abi, InstallRequest, Reply, StatusReply};

/// A failed exchange on a SWUpdate socket, naming the socket and the step.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} on {path}: no answer within {secs} s")]
    Timeout {
        what: &'static str,
        path: PathBuf,
        secs: u64,
    },
    #[error("{what} on {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} on {path}: wrote {written} of {size} bytes in one write; SWUpdate drops split messages")]
    ShortWrite {
        what: &'static str,
        path: PathBuf,
        written: usize,
        size: usize,
    },
    #[error("{what} on {path}: unexpected answer (magic {magic:#x}, type {mtype})")]
    Unexpected {
        what: &'static str,
        path: PathBuf,
        magic: i32,
        mtype: i32,
    },
    #[error("{what} on {path}: refused (NACK){}", reason_suffix(.reason))]
    Nack {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

fn reason_suffix(r: &str) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(": {r}")
    }
}

/// How REQ_INSTALL was answered.
#[derive(Debug)]
pub enum InstallStart {
    /// ACK: stream the .swu on this connection.
    Accepted(UnixStream),
    /// NACK "Installation in progress": another install runs.
    Busy(String),
    /// Any other NACK (bad API version, a software set the daemon does not accept).
    Refused(String),
}

/// `ustate` in the bootloader environment, as GET/SET_UPDATE_STATE carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    Ok,
    Installed,
    Testing,
    Failed,
    NotAvailable,
    Error,
    Wait,
    InProgress,
}

impl UpdateState {
    pub fn from_char(c: u8) -> Option<UpdateState> {
        Some(match c {
            b'0' => UpdateState::Ok,
            b'1' => UpdateState::Installed,
            b'2' => UpdateState::Testing,
            b'3' => UpdateState::Failed,
            b'4' => UpdateState::NotAvailable,
            b'5' => UpdateState::Error,
            b'6' => UpdateState::Wait,
            b'7' => UpdateState::InProgress,
            _ => return None,
        })
    }

    pub fn as_char(self) -> u8 {
        match self {
            UpdateState::Ok => b'0',
            UpdateState::Installed => b'1',
            UpdateState::Testing => b'2',
            UpdateState::Failed => b'3',
            UpdateState::NotAvailable => b'4',
            UpdateState::Error => b'5',
            UpdateState::Wait => b'6',
            UpdateState::InProgress => b'7',
        }
    }
}

/// The control socket of one daemon.
#[derive(Debug, Clone)]
pub struct Control {
    pub path: PathBuf,
    pub abi: Abi,
    /// Bound on every connect, write and reply.
    pub timeout: Duration,
}

impl Control {
    pub fn new(path: &Path, abi: Abi, timeout: Duration) -> Self {
        Control {
            path: path.to_path_buf(),
            abi,
            timeout,
        }
    }

    fn timed_out(&self, what: &'static str) -> IpcError {
        IpcError::Timeout {
            what,
            path: self.path.clone(),
            secs: self.timeout.as_secs().max(1),
        }
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> IpcError + '_ {
        move |source| IpcError::Io {
            what,
            path: self.path.clone(),
            source,
        }
    }

    /// Connects and sends `message` in exactly one write.
    pub async fn send(&self, what: &'static str, message: &[u8]) -> Result<UnixStream, IpcError> {
        let mut s = timeout(self.timeout, UnixStream::connect(&self.path))
            .await
            .map_err(|_| self.timed_out(what))?
            .map_err(|source| IpcError::Connect {
                path: self.path.clone(),
                source,
            })?;
        let written = timeout(self.timeout, s.write(message))
            .await
            .map_err(|_| self.timed_out(what))?
            .map_err(self.io(what))?;
        if written != message.len() {
            return Err(IpcError::ShortWrite {
                what,
                path: self.path.clone(),
                written,
                size: message.len(),
            });
        }
        Ok(s)
    }

    /// Reads exactly one `ipc_message` from `s`.
    pub async fn receive(&self, what: &'static str, s: &mut UnixStream) -> Result<Reply, IpcError> {
        let mut buf = vec![0u8; self.abi.layout().size];
        timeout(self.timeout, s.read_exact(&mut buf))
            .await
            .map_err(|_| self.timed_out(what))?
            .map_err(self.io(what))?;
        let r = Reply::parse(buf);
        if r.magic != abi::IPC_MAGIC {
            return Err(IpcError::Unexpected {
                what,
                path: self.path.clone(),
                magic: r.magic,
                mtype: r.mtype,
            });
        }
        Ok(r)
    }

    /// One request, one answer, which must be an ACK.
    async fn exchange(&self, what: &'static str, message: &[u8]) -> Result<Reply, IpcError> {
        let mut s = self.send(what, message).await?;
        let r = self.receive(what, &mut s).await?;
        match r.mtype {
            msg::ACK => Ok(r),
            msg::NACK => Err(IpcError::Nack {
                what,
                path: self.path.clone(),
                reason: r.msg(),
            }),
            mtype => Err(IpcError::Unexpected {
                what,
                path: self.path.clone(),
                magic: r.magic,
                mtype,
            }),
        }
    }

    /// GET_STATUS: the installer state and one dequeued notification.
    pub async fn status(&self) -> Result<StatusReply, IpcError> {
        let what = "GET_STATUS";
        let mut s = self
            .send(what, &abi::message(self.abi, msg::GET_STATUS))
            .await?;
        let r = self.receive(what, &mut s).await?;
        Ok(StatusReply::parse(&r))
    }

    /// REQ_INSTALL: ACK hands back the connection to stream the .swu on.
    pub async fn start_install(&self, req: &InstallRequest) -> Result<InstallStart, IpcError> {
        let what = "REQ_INSTALL";
        let mut s = self
            .send(what, &abi::install_message(self.abi, req))
            .await?;
        let r = self.receive(what, &mut s).await?;
        Ok(match r.mtype {
            msg::ACK => InstallStart::Accepted(s),
            msg::NACK if r.msg().contains("in progress") => InstallStart::Busy(r.msg()),
            msg::NACK => InstallStart::Refused(r.msg()),
            mtype => {
                return Err(IpcError::Unexpected {
                    what,
                    path: self.path.clone(),
                    magic: r.magic,
                    mtype,
                })
            }
        })
    }

    /// NOTIFY_STREAM: after the ACK, the connection carries every notification.
    pub async fn notify_stream(&self) -> Result<UnixStream, IpcError> {
        let what = "NOTIFY_STREAM";
        let mut s = self
            .send(what, &abi::message(self.abi, msg::NOTIFY_STREAM))
            .await?;
        let r = self.receive(what, &mut s).await?;
        if r.mtype != msg::ACK {
            return Err(IpcError::Nack {
                what,
                path: self.path.clone(),
                reason: r.msg(),
            });
        }
        Ok(s)
    }

    /// GET_HW_REVISION: (board name, revision).
    pub async fn hw_revision(&self) -> Result<(String, String), IpcError> {
        let r = self
            .exchange(
                "GET_HW_REVISION",
                &abi::message(self.abi, msg::GET_HW_REVISION),
            )
            .await?;
        Ok((
            abi::get_str(&r.bytes, abi::REV_BOARDNAME, abi::REV_LEN),
            abi::get_str(&r.bytes, abi::REV_REVISION, abi::REV_LEN),
        ))
    }

    /// GET_UPDATE_STATE: `ustate` from the bootloader environment.
    pub async fn update_state(&self) -> Result<Option<UpdateState>, IpcError> {
        let r = self
            .exchange(
                "GET_UPDATE_STATE",
                &abi::message(self.abi, msg::GET_UPDATE_STATE),
            )
            .await?;
        Ok(UpdateState::from_char(r.bytes[abi::MSG]))
    }

    /// SET_UPDATE_STATE.
    pub async fn set_update_state(&self, state: UpdateState) -> Result<(), IpcError> {
        self.exchange(
            "SET_UPDATE_STATE",
            &abi::set_state_message(self.abi, state.as_char()),
        )
        .await
        .map(|_| ())
    }
}
