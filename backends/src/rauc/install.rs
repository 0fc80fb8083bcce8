//! One RAUC install over D-Bus: subscribe, call `InstallBundle`, follow `Progress` until
//! `Completed`.
//!
//! Invariants:
//! - `PropertiesChanged`, `Completed` and the bus name's owner are subscribed before
//!   `InstallBundle` is called, so no signal of this install can be missed;
//! - a D-Bus error from the call means RAUC never started ([`BackendError::NotStarted`]):
//!   no `Completed` comes in that case, so none is waited for;
//! - the service leaving the bus (or being replaced) mid-install is a failure at once, and
//!   so is the connection closing; the whole install has a deadline. `Operation` is not
//!   trusted to end an install: RAUC 1.8 sets it to `idle` when it refuses a second
//!   install while the first still runs (seen in `tests/deploy_rauc.rs`);
//! - `Completed(0)` is success; any other result is a failure carrying `LastError`;
//! - RAUC's strings are cut to [`MAX_TEXT`] characters and the log to [`MAX_LOG`] lines.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use zbus::zvariant::Value;
use zbus::Connection;

use super::proxy;
use crate::{BackendError, Progress, ProgressSink};

/// Longest RAUC message kept (characters).
pub const MAX_TEXT: usize = 500;
/// Most log lines kept from one install.
pub const MAX_LOG: usize = 200;

/// Deadlines of an install.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Each D-Bus call (also set on the connection).
    pub call: Duration,
    /// From `InstallBundle` to `Completed`.
    pub install: Duration,
}

/// Cuts `s` to [`MAX_TEXT`] characters.
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Appends `line` to `log` unless it is full.
pub fn push(log: &mut Vec<String>, line: String) {
    if log.len() < MAX_LOG {
        log.push(line);
    } else if log.len() == MAX_LOG {
        log.push("(more RAUC messages left out)".into());
    }
}

fn progress_of(v: &Value<'_>) -> Option<(i32, String, i32)> {
    let Value::Structure(s) = v else {
        return None;
    };
    match s.fields() {
        [Value::I32(p), Value::Str(m), Value::I32(d)] => Some((*p, m.to_string(), *d)),
        _ => None,
    }
}

fn string_of(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Why an install did not succeed, and whether its outcome is settled: RAUC refused it or
/// said `Completed(n)` (`settled`), or the outcome is unknown (the service vanished, the
/// deadline passed), in which case RAUC may yet activate the new slot.
#[derive(Debug)]
pub struct InstallError {
    pub error: BackendError,
    pub settled: bool,
}

/// Installs `bundle` (a sealed, closed file) through RAUC on `conn`, reporting RAUC's
/// progress to `sink` and appending RAUC's messages to `log`.
pub async fn install(
    conn: &Connection,
    bundle: &Path,
    timeouts: Timeouts,
    sink: &dyn ProgressSink,
    log: &mut Vec<String>,
) -> Result<(), InstallError> {
    let settled = |error| InstallError {
        error,
        settled: true,
    };
    let unknown = |error| InstallError {
        error,
        settled: false,
    };
    let dbus = |e: zbus::Error| {
        BackendError::not_started(format!("RAUC over D-Bus: {}", proxy::message(&e)))
    };
    let installer = proxy::installer(conn)
        .await
        .map_err(dbus)
        .map_err(settled)?;
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(proxy::SERVICE)
        .and_then(|b| b.path("/"))
        .map_err(dbus)
        .map_err(settled)?
        .build()
        .await
        .map_err(dbus)
        .map_err(settled)?;
    // Subscribe first: RAUC starts emitting as soon as the call is taken.
    let subscribe = async {
        let changed = props.receive_properties_changed().await?;
        let completed = installer.receive_completed().await?;
        let owner = installer.inner().receive_owner_changed().await?;
        Ok::<_, zbus::Error>((changed, completed, owner))
    };
    let (mut changed, mut completed, mut owner) =
        match tokio::time::timeout(timeouts.call, subscribe).await {
            Ok(r) => r.map_err(dbus).map_err(settled)?,
            Err(_) => {
                return Err(settled(BackendError::not_started(format!(
                    "RAUC over D-Bus: subscribing to its signals took longer than {} s",
                    timeouts.call.as_secs()
                ))))
            }
        };

    let source = bundle.to_str().ok_or_else(|| {
        settled(BackendError::not_started(format!(
            "spool path {} is not UTF-8",
            bundle.display()
        )))
    })?;
    let call = installer.install_bundle(source, Default::default());
    match tokio::time::timeout(timeouts.call, call).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let m = cut(&proxy::message(&e));
            push(log, format!("RAUC refused the install: {m}"));
            return Err(settled(BackendError::not_started(format!(
                "RAUC refused the install: {m}"
            ))));
        }
        Err(_) => {
            return Err(unknown(BackendError::failed_with_log(
                format!(
                    "RAUC did not answer InstallBundle within {} s",
                    timeouts.call.as_secs()
                ),
                log.to_vec(),
            )))
        }
    }
    tracing::info!(bundle = %bundle.display(), "RAUC took the bundle");

    let deadline = Instant::now() + timeouts.install;
    let mut last_error = String::new();
    let result = loop {
        tokio::select! {
            biased;
            m = changed.next() => {
                let Some(m) = m else {
                    break Err("the D-Bus connection closed during the install".to_string());
                };
                let Ok(args) = m.args() else { continue };
                if args.interface_name.as_str() != "de.pengutronix.rauc.Installer" {
                    continue;
                }
                for (name, value) in args.changed_properties() {
                    match *name {
                        "Progress" => {
                            if let Some((pc, msg, depth)) = progress_of(value) {
                                let pc = pc.clamp(0, 100) as u8;
                                let msg = cut(&msg);
                                tracing::debug!(percent = pc, depth, "RAUC: {msg}");
                                push(log, format!("RAUC {pc:3}% {msg}"));
                                sink.report(Progress {
                                    bytes_done: 0,
                                    bytes_total: None,
                                    percent: Some(pc),
                                    message: Some(msg),
                                });
                            }
                        }
                        "LastError" => {
                            if let Some(e) = string_of(value).filter(|e| !e.is_empty()) {
                                last_error = cut(&e);
                                push(log, format!("RAUC LastError: {last_error}"));
                            }
                        }
                        _ => {}
                    }
                }
            }
            c = completed.next() => {
                let Some(c) = c else {
                    break Err("the D-Bus connection closed during the install".to_string());
                };
                match c.args() {
                    Ok(a) => break Ok(a.result),
                    Err(e) => break Err(format!("unreadable Completed signal: {e}")),
                }
            }
            o = owner.next() => {
                match o {
                    Some(None) | None => break Err(
                        "the RAUC service (de.pengutronix.rauc) left the bus during the install, \
                         with no Completed signal".to_string()),
                    Some(Some(new)) => break Err(format!(
                        "the RAUC service was replaced on the bus (now {new}) during the install, \
                         with no Completed signal")),
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                break Err(format!(
                    "RAUC did not complete the install within {} s",
                    timeouts.install.as_secs()
                ));
            }
        }
    };
    match result {
        Ok(0) => {
            push(log, "RAUC Completed(0): installed".into());
            Ok(())
        }
        Ok(code) => {
            if last_error.is_empty() {
                // LastError is emitted before Completed, but a property read settles it.
                if let Ok(Ok(e)) = tokio::time::timeout(timeouts.call, installer.last_error()).await
                {
                    last_error = cut(&e);
                    if !last_error.is_empty() {
                        push(log, format!("RAUC LastError: {last_error}"));
                    }
                }
            }
            push(log, format!("RAUC Completed({code})"));
            let message = if last_error.is_empty() {
                format!("RAUC failed the install (Completed {code}) and gave no LastError")
            } else {
                format!("RAUC: {last_error}")
            };
            Err(settled(BackendError::failed_with_log(
                message,
                log.to_vec(),
            )))
        }
        Err(why) => {
            push(log, why.clone());
            Err(unknown(BackendError::failed_with_log(why, log.to_vec())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rauc_text_and_log_are_bounded() {
        assert_eq!(
            cut("Copying image to rootfs.1"),
            "Copying image to rootfs.1"
        );
        let long = cut(&"é".repeat(MAX_TEXT + 10));
        assert_eq!(
            long.chars().count(),
            MAX_TEXT + 1,
            "cut on a char boundary, marked"
        );
        let mut log = Vec::new();
        for i in 0..MAX_LOG + 50 {
            push(&mut log, format!("line {i}"));
        }
        assert_eq!(log.len(), MAX_LOG + 1);
        assert_eq!(log[MAX_LOG], "(more RAUC messages left out)");
    }

    #[test]
    fn progress_tuples_are_read_and_other_shapes_ignored() {
        let v = Value::from((80i32, "Copying image to rootfs.1", 3i32));
        assert_eq!(
            progress_of(&v),
            Some((80, "Copying image to rootfs.1".to_string(), 3))
        );
        assert_eq!(progress_of(&Value::from("80%")), None);
        assert_eq!(progress_of(&Value::from((80i32, 3i32))), None);
    }
}
