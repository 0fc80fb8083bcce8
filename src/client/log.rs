//! The deployment log upload (PROTOCOL.md §3.3): PUT `{"messages": [...]}` → 204.
//!
//! The server refuses the whole log for one bad entry (400) or for a body over 1 MiB
//! (413), so the body is prepared as the C++ client prepares it: an entry with a bad
//! timestamp or an empty level or message becomes an `(CORRUPTED LOG DATA)` entry carrying
//! the last good timestamp, and a marker entry at the front says the logs contained invalid
//! entries; a log over [`MAX_LOG_BODY`] keeps its newest entries (where a failure is
//! explained) and a marker entry stands where the older lines were dropped.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::auth::status_error;
use super::error::{Call, ClientError};
use super::http::path_segment;
use super::Client;
use mender_api::deployments::DEPLOYMENTS;
use mender_api::log::{DeploymentLog, LogMessage};
use mender_api::rfc3339;

/// Largest log body sent (the C++ client's figure; the server's cap is 1 MiB).
pub const MAX_LOG_BODY: usize = 1_000_000;

/// Timestamp used when no entry has a valid one.
const EPOCH: &str = "1970-01-01T00:00:00Z";

fn is_valid(m: &LogMessage) -> bool {
    rfc3339::parse(&m.timestamp).is_some() && !m.level.is_empty() && !m.message.is_empty()
}

fn entry_len(m: &LogMessage) -> usize {
    serde_json::to_vec(m)
        .map(|v| v.len())
        .unwrap_or(usize::MAX / 4)
        + 1
}

fn marker(timestamp: &str, message: String) -> LogMessage {
    LogMessage {
        timestamp: timestamp.to_string(),
        level: "ERROR".into(),
        message,
    }
}

/// Prepares the log body: sanitised, capped to `max_body` bytes (at least 1 KiB is
/// assumed), serialised. Errors only on an empty log.
pub fn prepare_log(messages: &[LogMessage], max_body: usize) -> Result<Vec<u8>, ClientError> {
    if messages.is_empty() {
        return Err(ClientError::InvalidRequest {
            call: Call::Log,
            detail: "the log has no messages".into(),
        });
    }
    // 1. Sanitise, as the C++ client does.
    let first_ts = messages
        .iter()
        .find(|m| rfc3339::parse(&m.timestamp).is_some())
        .map_or(EPOCH, |m| m.timestamp.as_str())
        .to_string();
    let mut last_ts = first_ts.clone();
    let mut invalid = false;
    let mut clean: Vec<LogMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        if is_valid(m) {
            last_ts = m.timestamp.clone();
            clean.push(m.clone());
        } else {
            invalid = true;
            clean.push(marker(&last_ts, "(CORRUPTED LOG DATA)".into()));
        }
    }
    let mut head = Vec::new();
    if invalid {
        head.push(marker(
            &first_ts,
            "(THE ORIGINAL LOGS CONTAINED INVALID ENTRIES)".into(),
        ));
    }

    // 2. Cap: keep the newest entries that fit, with room for the markers.
    let envelope = r#"{"messages":[]}"#.len();
    let head_len: usize = head.iter().map(entry_len).sum();
    let total: usize = envelope + head_len + clean.iter().map(entry_len).sum::<usize>();
    if total > max_body {
        let dropped_marker_room = entry_len(&marker(
            "0000-00-00T00:00:00.000000000+00:00",
            format!("(THE ORIGINAL LOGS CONTAINED {} MORE LINES)", usize::MAX),
        ));
        let budget = max_body.saturating_sub(envelope + head_len + dropped_marker_room);
        let mut used = 0;
        let mut keep_from = clean.len();
        while keep_from > 0 {
            let l = entry_len(&clean[keep_from - 1]);
            if used + l > budget {
                break;
            }
            used += l;
            keep_from -= 1;
        }
        if keep_from == clean.len() {
            // Not even the newest entry fits: keep it with its message cut.
            let mut last = clean[clean.len() - 1].clone();
            let room = budget.saturating_sub(
                entry_len(&LogMessage {
                    message: String::new(),
                    ..last.clone()
                }) + 16,
            );
            let mut cut = String::new();
            let mut escaped = 0;
            for c in last.message.chars() {
                // Serialised size: control characters become \uXXXX, quotes and
                // backslashes get a backslash.
                let l = match c {
                    '"' | '\\' => 2,
                    c if (c as u32) < 0x20 => 6,
                    c => c.len_utf8(),
                };
                if escaped + l > room {
                    break;
                }
                escaped += l;
                cut.push(c);
            }
            cut.push('…');
            last.message = cut;
            keep_from = clean.len() - 1;
            clean[keep_from] = last;
        }
        let dropped = keep_from;
        let ts = clean[0].timestamp.clone();
        let kept = clean.split_off(keep_from);
        clean = kept;
        head.push(marker(
            &ts,
            format!("(THE ORIGINAL LOGS CONTAINED {dropped} MORE LINES)"),
        ));
    }
    head.extend(clean);
    let log = DeploymentLog { messages: head };
    debug_assert!(log.validate().is_ok());
    serde_json::to_vec(&log).map_err(|e| ClientError::InvalidRequest {
        call: Call::Log,
        detail: e.to_string(),
    })
}

impl Client {
    /// Uploads a deployment log (sanitised and capped by [`prepare_log`]). 409 (aborted)
    /// surfaces as [`ClientError::Aborted`].
    pub async fn upload_log(
        &self,
        deployment_id: &str,
        messages: &[LogMessage],
    ) -> Result<(), ClientError> {
        let body = prepare_log(messages, MAX_LOG_BODY)?;
        let path = format!("{DEPLOYMENTS}/{}/log", path_segment(deployment_id));
        let a = self
            .authorized(Call::Log, Method::PUT, &path, Some(Bytes::from(body)))
            .await?;
        match a.status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(ClientError::Aborted {
                call: Call::Log,
                deployment_id: deployment_id.to_string(),
                message: a.server_message(),
            }),
            _ => Err(status_error(Call::Log, &path, &a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: &str, level: &str, m: &str) -> LogMessage {
        LogMessage {
            timestamp: ts.into(),
            level: level.into(),
            message: m.into(),
        }
    }

    fn parse(b: &[u8]) -> DeploymentLog {
        DeploymentLog::parse(b).expect("the server accepts it")
    }

    #[test]
    fn small_valid_log_unchanged() {
        let m = vec![msg("2026-01-01T00:00:00Z", "info", "hello")];
        let b = prepare_log(&m, MAX_LOG_BODY).unwrap();
        assert_eq!(parse(&b).messages, m);
        assert!(prepare_log(&[], MAX_LOG_BODY).is_err());
    }

    #[test]
    fn invalid_entries_replaced_with_marker() {
        let m = vec![
            msg("bad", "info", "a"),
            msg("2026-01-01T00:00:01Z", "info", "b"),
            msg("2026-01-01T00:00:02Z", "", "c"),
            msg("2026-01-01T00:00:03Z", "info", ""),
        ];
        let log = parse(&prepare_log(&m, MAX_LOG_BODY).unwrap());
        let texts: Vec<_> = log.messages.iter().map(|m| m.message.as_str()).collect();
        assert_eq!(
            texts,
            [
                "(THE ORIGINAL LOGS CONTAINED INVALID ENTRIES)",
                "(CORRUPTED LOG DATA)",
                "b",
                "(CORRUPTED LOG DATA)",
                "(CORRUPTED LOG DATA)"
            ]
        );
        assert_eq!(log.messages[1].timestamp, "2026-01-01T00:00:01Z");
        assert_eq!(log.messages[3].timestamp, "2026-01-01T00:00:01Z");
    }

    #[test]
    fn capped_keeps_newest_with_marker() {
        let m: Vec<_> = (0..50_000)
            .map(|i| {
                msg(
                    "2026-01-01T00:00:00Z",
                    "info",
                    &format!("line {i:06} {}", "x".repeat(20)),
                )
            })
            .collect();
        let b = prepare_log(&m, MAX_LOG_BODY).unwrap();
        assert!(b.len() <= MAX_LOG_BODY, "{}", b.len());
        assert!(
            b.len() > MAX_LOG_BODY - 200,
            "budget mostly used: {}",
            b.len()
        );
        let log = parse(&b);
        let first = &log.messages[0].message;
        let kept = log.messages.len() - 1;
        assert_eq!(
            first,
            &format!("(THE ORIGINAL LOGS CONTAINED {} MORE LINES)", 50_000 - kept)
        );
        assert!(log
            .messages
            .last()
            .unwrap()
            .message
            .starts_with("line 049999"));
    }

    #[test]
    fn one_huge_entry_is_cut() {
        let m = vec![
            msg("2026-01-01T00:00:00Z", "info", "first"),
            msg("2026-01-01T00:00:01Z", "info", &"\u{1}é".repeat(600_000)),
        ];
        let b = prepare_log(&m, MAX_LOG_BODY).unwrap();
        assert!(b.len() <= MAX_LOG_BODY, "{}", b.len());
        let log = parse(&b);
        assert_eq!(log.messages.len(), 2);
        assert_eq!(
            log.messages[0].message,
            "(THE ORIGINAL LOGS CONTAINED 1 MORE LINES)"
        );
        assert!(log.messages[1].message.ends_with('…'));
    }
}
