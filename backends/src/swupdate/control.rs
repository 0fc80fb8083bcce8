//! The control socket (`sockinstctrl`): one connection per request, as libswupdate does.
//! Every message is exactly `ipc_message`-sized and goes out in one write (the daemon does
//! a single `read()` and drops short messages); every connect, write and read has a
//! timeout; a reply is read as exactly one message, never more.
//!
//! Every connection (here and to the progress socket) goes through [`connect_checked`]:
//! the socket's directory must not be world-writable unless root owns it, and the peer
//! (`SO_PEERCRED`: who bound the socket) must be root or the configured SWUpdate user.
//! Nothing is written to, and nothing is read from, a connection that failed the check.

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
    /// The socket's directory lets any user bind a socket of that name.
    #[error(
        "refusing {path}: its directory {} is writable by everyone and owned by uid {owner}, \
         not root, so any user could have bound this socket",
        dir.display()
    )]
    UnsafeDir {
        path: PathBuf,
        dir: PathBuf,
        owner: u32,
    },
    /// The process that bound the socket is not SWUpdate's user.
    #[error(
        "refusing {path}: the peer is uid {uid}, expected {expected}; nothing was sent to it \
         and none of its answers is believed"
    )]
    Peer {
        path: PathBuf,
        uid: u32,
        expected: String,
    },
    #[error("{path}: cannot read the peer's credentials (SO_PEERCRED): {source}")]
    PeerCred {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl IpcError {
    /// The socket failed the directory or peer check (someone else's socket).
    pub fn untrusted(&self) -> bool {
        matches!(
            self,
            IpcError::UnsafeDir { .. } | IpcError::Peer { .. } | IpcError::PeerCred { .. }
        )
    }
}

/// Refuses `path` when its directory is world-writable and not owned by root (a
/// user-made directory anyone can bind a socket in). A root-owned world-writable directory
/// (`/tmp`, sticky) is allowed: what was bound there is judged by the peer check. A
/// directory that cannot be read is left to `connect` to report.
pub fn check_dir(path: &Path) -> Result<(), IpcError> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if meta.mode() & 0o002 != 0 && meta.uid() != 0 {
        return Err(IpcError::UnsafeDir {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            owner: meta.uid(),
        });
    }
    Ok(())
}

/// Root, and `uid` when set: who may have bound a SWUpdate socket.
pub fn expected_peers(uid: Option<u32>) -> String {
    match uid {
        Some(u) if u != 0 => format!("root (uid 0) or backend.swupdate.swupdate_uid {u}"),
        _ => "root (uid 0; set backend.swupdate.swupdate_uid if SWUpdate runs as another \
              user)"
            .to_string(),
    }
}

/// The peer of `s` (connected to `path`) must be root or `uid`.
pub fn check_peer(s: &UnixStream, path: &Path, uid: Option<u32>) -> Result<(), IpcError> {
    let cred = s.peer_cred().map_err(|source| IpcError::PeerCred {
        path: path.to_path_buf(),
        source,
    })?;
    let peer = cred.uid();
    if peer == 0 || Some(peer) == uid {
        return Ok(());
    }
    tracing::error!(socket = %path.display(), peer_uid = peer, pid = ?cred.pid(), "a SWUpdate socket bound by another user");
    Err(IpcError::Peer {
        path: path.to_path_buf(),
        uid: peer,
        expected: expected_peers(uid),
    })
}

/// Connects to a SWUpdate socket within `limit`, after the directory check and before
/// returning, the peer check: the stream handed back is SWUpdate's.
pub async fn connect_checked(
    path: &Path,
    limit: Duration,
    what: &'static str,
    uid: Option<u32>,
) -> Result<UnixStream, IpcError> {
    check_dir(path)?;
    let s = timeout(limit, UnixStream::connect(path))
        .await
        .map_err(|_| IpcError::Timeout {
            what,
            path: path.to_path_buf(),
            secs: limit.as_secs().max(1),
        })?
        .map_err(|source| IpcError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    check_peer(&s, path, uid)?;
    Ok(s)
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
    /// Besides root, the uid the socket's peer may have (`swupdate_uid`).
    pub peer_uid: Option<u32>,
}

impl Control {
    /// A control socket whose peer must be root.
    pub fn new(path: &Path, abi: Abi, timeout: Duration) -> Self {
        Control {
            path: path.to_path_buf(),
            abi,
            timeout,
            peer_uid: None,
        }
    }

    /// Also accepts `uid` as the socket's peer.
    pub fn allowing_uid(mut self, uid: Option<u32>) -> Self {
        self.peer_uid = uid;
        self
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

    /// Connects (checked: [`connect_checked`]) and sends `message` in exactly one write.
    pub async fn send(&self, what: &'static str, message: &[u8]) -> Result<UnixStream, IpcError> {
        let mut s = connect_checked(&self.path, self.timeout, what, self.peer_uid).await?;
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
