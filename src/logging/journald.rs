//! Records for the systemd journal in its native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL):
//! one datagram per event to `/run/systemd/journal/socket`, with `MESSAGE`, `PRIORITY`,
//! `SYSLOG_IDENTIFIER`, `TARGET`, `CODE_FILE`/`CODE_LINE` and each event field as its own
//! upper-case field, so `journalctl -u mender-bridge DEPLOYMENT=…` finds what it names.
//!
//! Invariants: a record is bounded (each value at [`MAX_VALUE`](super::fields::MAX_VALUE),
//! the datagram at [`MAX_DATAGRAM`]); a field name is only ever `[A-Z0-9_]`, never starts
//! with `_` (journald's trusted fields) and at most 64 bytes; a failed send never blocks or
//! fails the caller (the record is dropped: logging must not stop an update).

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::fields::Fields;

/// journald's socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";
/// The largest datagram sent; fields past it are left out (the message always fits).
pub const MAX_DATAGRAM: usize = 48 * 1024;

/// A tracing layer writing each event to the journal.
pub struct Journald {
    socket: UnixDatagram,
    identifier: String,
}

impl Journald {
    /// Connects to journald's socket at `path` (non-blocking).
    pub fn connect(path: &Path, identifier: &str) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        socket.set_nonblocking(true)?;
        Ok(Journald {
            socket,
            identifier: identifier.to_string(),
        })
    }
}

/// `name` as a journal field name: upper case, `[A-Z0-9_]`, no leading `_`, ≤ 64 bytes.
pub fn field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    while out.starts_with('_') {
        out.remove(0);
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "F_");
    }
    out.truncate(64);
    out
}

/// Appends one field: `NAME=value\n`, or the length-prefixed form when the value has a
/// newline.
fn put(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

/// syslog priority of a level (err, warning, info, debug).
pub fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        _ => "7",
    }
}

/// The datagram of one event.
pub fn record(identifier: &str, event: &Event<'_>) -> Vec<u8> {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let meta = event.metadata();
    let mut buf = Vec::with_capacity(256);
    put(&mut buf, "MESSAGE", &fields.line());
    put(&mut buf, "PRIORITY", priority(meta.level()));
    put(&mut buf, "SYSLOG_IDENTIFIER", identifier);
    put(&mut buf, "TARGET", meta.target());
    if let Some(file) = meta.file() {
        put(&mut buf, "CODE_FILE", file);
    }
    if let Some(line) = meta.line() {
        put(&mut buf, "CODE_LINE", &line.to_string());
    }
    for (name, value) in &fields.others {
        let mut one = Vec::new();
        put(&mut one, &field_name(name), value);
        if buf.len() + one.len() > MAX_DATAGRAM {
            break;
        }
        buf.extend_from_slice(&one);
    }
    buf
}

impl<S: Subscriber> Layer<S> for Journald {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let _ = self.socket.send(&record(&self.identifier, event));
    }
}
