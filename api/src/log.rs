//! `PUT /api/devices/v1/deployments/device/deployments/{id}/log` (PROTOCOL.md §3.3).
//!
//! Success is **204**. `messages` must be non-empty and every message must have an RFC 3339
//! `timestamp` and non-empty `level` and `message` (else 400); unknown deployment → 404;
//! the body must stay under 1 MiB (413). Official clients upload only for failed
//! deployments; Go levels are lower-case (`info`, `error`), C++ upper-case.

use serde::{Deserialize, Serialize};

use super::{rfc3339, ValidationError};

/// The log body: `{"messages": [{"timestamp", "level", "message"}, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentLog {
    pub messages: Vec<LogMessage>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    /// RFC 3339, e.g. `2016-03-11T13:03:17.063493443Z`.
    pub timestamp: String,
    pub level: String,
    pub message: String,
}

impl DeploymentLog {
    /// The server's rules: at least one message; each with a valid timestamp, a level and a
    /// message.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.messages.is_empty() {
            return Err(ValidationError::Empty { field: "messages" });
        }
        for (i, m) in self.messages.iter().enumerate() {
            if rfc3339::parse(&m.timestamp).is_none() {
                return Err(ValidationError::Invalid {
                    field: "timestamp",
                    detail: format!("message {i}: {:?} is not an RFC 3339 time", m.timestamp),
                });
            }
            if m.level.is_empty() {
                return Err(ValidationError::Empty { field: "level" });
            }
            if m.message.is_empty() {
                return Err(ValidationError::Empty { field: "message" });
            }
        }
        Ok(())
    }

    /// Parses and validates a body as the server does.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let log: DeploymentLog =
            serde_json::from_slice(body).map_err(|e| ValidationError::Invalid {
                field: "messages",
                detail: e.to_string(),
            })?;
        log.validate()?;
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let ok = br#"{"messages":[{"timestamp":"2016-03-11T13:03:17.063493443Z","level":"INFO","message":"OK"}]}"#;
        assert_eq!(DeploymentLog::parse(ok).unwrap().messages.len(), 1);
        for bad in [
            &br#"{"messages":[]}"#[..],
            br#"{}"#,
            br#"{"messages":[{"timestamp":"now","level":"info","message":"m"}]}"#,
            br#"{"messages":[{"timestamp":"2016-03-11T13:03:17Z","level":"","message":"m"}]}"#,
            br#"{"messages":[{"timestamp":"2016-03-11T13:03:17Z","level":"info","message":""}]}"#,
            br#"{"messages":[{"timestamp":"2016-03-11T13:03:17Z","level":"info"}]}"#,
        ] {
            assert!(
                DeploymentLog::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
