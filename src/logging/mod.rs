//! Where the logs go and in what shape (`--log-format`):
//! - `text` (the default on a terminal or a file): one human line per event on stderr;
//! - `journald`: the systemd journal's native protocol, each event field its own journal
//!   field ([`journald`]); chosen by `auto` when stderr is the journal (`JOURNAL_STREAM`
//!   names stderr's device and inode, as systemd sets it for a service);
//! - `json`: one JSON object per line on stderr ([`json`]).
//!
//! The filter (`-l` / `RUST_LOG`) applies to all three. Invariant: logging never stops the
//! program: a journal that cannot be reached falls back to text with one line saying so.

pub mod fields;
pub mod journald;
pub mod json;

use std::path::Path;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// The journal when stderr is connected to it (under systemd), else text.
    #[default]
    Auto,
    Text,
    Json,
    Journald,
}

/// Whether `journal_stream` (`JOURNAL_STREAM`, "device:inode") names the file `stderr` is.
pub fn is_journal_stream(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(js), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = js.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

// dev_t and ino_t are narrower than u64 on some 32-bit targets (ARM devices).
#[allow(clippy::useless_conversion)]
fn stderr_id() -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    Some((
        u64::try_from(st.st_dev).ok()?,
        u64::try_from(st.st_ino).ok()?,
    ))
}

/// The format `auto` resolves to in this process.
pub fn resolve(format: LogFormat) -> LogFormat {
    match format {
        LogFormat::Auto => {
            let js = std::env::var("JOURNAL_STREAM").ok();
            if is_journal_stream(js.as_deref(), stderr_id()) {
                LogFormat::Journald
            } else {
                LogFormat::Text
            }
        }
        other => other,
    }
}

/// The filter from `RUST_LOG`, else `level`, else `warn`; one that does not parse is named
/// on stderr and `warn` is used.
fn filter(level: Option<&str>) -> Targets {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (source, text) = match env.as_deref() {
        Some(v) => ("RUST_LOG", v),
        None => ("-l", level.unwrap_or("warn")),
    };
    text.parse::<Targets>().unwrap_or_else(|e| {
        eprintln!("mender-bridge: {source} '{text}' is not a log filter ({e}); using 'warn'");
        Targets::new().with_default(LevelFilter::WARN)
    })
}

/// Opens `path` for appending (created 0640), or says on stderr why not.
fn open_log_file(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!(
                "mender-bridge: cannot open the log file {}: {e}; logging to stderr",
                path.display()
            );
            None
        }
    }
}

/// Sets up `tracing` with `level` (or `RUST_LOG`, which wins) in `format`, to `file`
/// (`-L`, appended) instead of stderr when given; the journal ignores `file`.
///
/// A filter is `level` or `target=level`, comma-separated (`info,mender_bridge::client=debug`).
pub fn init(level: Option<&str>, format: LogFormat, file: Option<&Path>) {
    let filter = filter(level);
    let registry = tracing_subscriber::registry().with(filter);
    let file = file.and_then(open_log_file);
    let format = match (format, &file) {
        // A log file asked for on the command line wins over the journal guess.
        (LogFormat::Auto, Some(_)) => LogFormat::Text,
        (f, _) => resolve(f),
    };
    match format {
        LogFormat::Json => {
            let layer = json::JsonLines {
                file: file.map(std::sync::Mutex::new),
            };
            let _ = registry.with(layer).try_init();
        }
        LogFormat::Journald => {
            match journald::Journald::connect(Path::new(journald::SOCKET), "mender-bridge") {
                Ok(layer) => {
                    let _ = registry.with(layer).try_init();
                }
                Err(e) => {
                    eprintln!(
                        "mender-bridge: the journal ({}) is not reachable ({e}); logging as text",
                        journald::SOCKET
                    );
                    let _ = registry.with(text_layer(file)).try_init();
                }
            }
        }
        LogFormat::Auto | LogFormat::Text => {
            let _ = registry.with(text_layer(file)).try_init();
        }
    }
}

fn text_layer<S>(file: Option<std::fs::File>) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let writer = match file {
        Some(f) => BoxMakeWriter::new(std::sync::Mutex::new(f)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer)
}

#[cfg(test)]
mod tests;
