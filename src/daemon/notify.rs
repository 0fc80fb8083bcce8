//! systemd's `sd_notify` protocol, written directly: one datagram per message to the
//! unix socket named by `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
//! `READY=1` once started, `WATCHDOG=1` at half of `WATCHDOG_USEC` when the unit has a
//! watchdog, `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` nothing is sent.
//!
//! Invariant: sending never blocks (the socket is non-blocking): a service manager that
//! does not read its queue must not stall the daemon; a message that cannot be queued is
//! dropped and logged (the first time as a warning, then at debug level).

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    name: String,
    warned: AtomicBool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; `None` when unset or empty (not run by systemd with
    /// `Type=notify`). An unusable value is logged and ignored.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var("NOTIFY_SOCKET").ok()?;
        if name.is_empty() {
            return None;
        }
        match Notifier::new(&name) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(socket = %name, error = %e, "NOTIFY_SOCKET is unusable; not notifying systemd");
                None
            }
        }
    }

    /// A notifier for the socket `name`: a filesystem path, or `@…` for an abstract one.
    pub fn new(name: &str) -> io::Result<Notifier> {
        let addr = if let Some(abstract_name) = name.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(abstract_name.as_bytes())?
        } else {
            SocketAddr::from_pathname(name)?
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            addr,
            name: name.to_string(),
            warned: AtomicBool::new(false),
        })
    }

    /// Sends one message (`READY=1`, `WATCHDOG=1`, `STATUS=…`, several joined by `\n`).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
    }

    /// [`Notifier::send`], a failure only logged (the service keeps running).
    pub fn notify(&self, message: &str) {
        if let Err(e) = self.send(message) {
            if self.warned.swap(true, Ordering::Relaxed) {
                tracing::debug!(socket = %self.name, message, error = %e, "sd_notify failed");
            } else {
                tracing::warn!(socket = %self.name, message, error = %e, "sd_notify failed (further failures are logged at debug level)");
            }
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, if it is set, positive and
/// (when `WATCHDOG_PID` is set) meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] from given values.
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(my_pid) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_socket_in_a_temp_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(path.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        n.send("READY=1").unwrap_or_else(|e| panic!("{e}"));
        n.notify("WATCHDOG=1");
        let mut buf = [0u8; 64];
        let got = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..got], b"READY=1");
        let got = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..got], b"WATCHDOG=1");
    }

    #[test]
    fn abstract_sockets() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("mender-bridge-test-{}", std::process::id());
        let addr =
            SocketAddr::from_abstract_name(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let server = UnixDatagram::bind_addr(&addr).unwrap_or_else(|e| panic!("{e}"));
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        Notifier::new(&format!("@{name}"))
            .and_then(|n| n.send("READY=1"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 16];
        let got = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..got], b"READY=1");
    }

    #[test]
    fn a_full_queue_never_blocks() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify.sock");
        let _server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(path.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        let start = std::time::Instant::now();
        let mut refused = false;
        for _ in 0..10_000 {
            refused |= n.send("WATCHDOG=1").is_err();
            n.notify("WATCHDOG=1");
        }
        assert!(refused, "an unread queue fills up");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "and sending does not block"
        );
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(dir.path().join("none").to_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(n.send("READY=1").is_err());
        n.notify("READY=1");
    }

    #[test]
    fn watchdog_at_half_the_timeout_for_this_process_only() {
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("abc"), None, 7), None);
        assert_eq!(parse_watchdog(None, None, 7), None);
    }
}
