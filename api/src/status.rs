//! `PUT /api/devices/v1/deployments/device/deployments/{id}/status` (PROTOCOL.md §3.2).
//!
//! Success is **204**. Unknown status values → 400; a substate over 200 characters → 400;
//! the deployment was aborted (or the device decommissioned) → **409**, which clients treat
//! as final; unknown deployment → 404. No transition checks: the same status twice is a
//! no-op, and `success`/`failure`/`already-installed` mark the deployment finished.

use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Longest `substate` (characters).
pub const MAX_SUBSTATE_LEN: usize = 200;

/// The statuses a device may report — exactly the values the server accepts. Server-side
/// statuses (`pending`, `aborted`, `noartifact`, `decommissioned`) are not device-settable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentStatus {
    #[serde(rename = "downloading")]
    Downloading,
    #[serde(rename = "installing")]
    Installing,
    #[serde(rename = "rebooting")]
    Rebooting,
    #[serde(rename = "success")]
    Success,
    #[serde(rename = "failure")]
    Failure,
    #[serde(rename = "already-installed")]
    AlreadyInstalled,
    #[serde(rename = "pause_before_installing")]
    PauseBeforeInstalling,
    #[serde(rename = "pause_before_rebooting")]
    PauseBeforeRebooting,
    #[serde(rename = "pause_before_committing")]
    PauseBeforeCommitting,
}

impl DeploymentStatus {
    /// Every accepted value.
    pub const ALL: [DeploymentStatus; 9] = [
        DeploymentStatus::Downloading,
        DeploymentStatus::Installing,
        DeploymentStatus::Rebooting,
        DeploymentStatus::Success,
        DeploymentStatus::Failure,
        DeploymentStatus::AlreadyInstalled,
        DeploymentStatus::PauseBeforeInstalling,
        DeploymentStatus::PauseBeforeRebooting,
        DeploymentStatus::PauseBeforeCommitting,
    ];

    /// The wire name (`already-installed`, `pause_before_installing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Downloading => "downloading",
            DeploymentStatus::Installing => "installing",
            DeploymentStatus::Rebooting => "rebooting",
            DeploymentStatus::Success => "success",
            DeploymentStatus::Failure => "failure",
            DeploymentStatus::AlreadyInstalled => "already-installed",
            DeploymentStatus::PauseBeforeInstalling => "pause_before_installing",
            DeploymentStatus::PauseBeforeRebooting => "pause_before_rebooting",
            DeploymentStatus::PauseBeforeCommitting => "pause_before_committing",
        }
    }

    /// `success`, `failure` and `already-installed` finish a device deployment.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Success
                | DeploymentStatus::Failure
                | DeploymentStatus::AlreadyInstalled
        )
    }
}

impl std::fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status report body: `{"status": "<s>", "substate": "<optional, <=200 chars>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substate: Option<String>,
}

impl StatusReport {
    pub fn new(status: DeploymentStatus) -> Self {
        StatusReport {
            status,
            substate: None,
        }
    }

    /// The substate fits in 200 characters.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match &self.substate {
            Some(s) if s.chars().count() > MAX_SUBSTATE_LEN => Err(ValidationError::TooLong {
                field: "substate",
                max: MAX_SUBSTATE_LEN,
            }),
            _ => Ok(()),
        }
    }

    /// Parses a body as the server does: unknown statuses and long substates are errors.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let r: StatusReport =
            serde_json::from_slice(body).map_err(|e| ValidationError::Invalid {
                field: "status",
                detail: format!(
                    "{e}; accepted values: {}",
                    DeploymentStatus::ALL.map(|s| s.as_str()).join(", ")
                ),
            })?;
        r.validate()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_values_only() {
        for s in DeploymentStatus::ALL {
            let body = format!(r#"{{"status":"{s}"}}"#);
            assert_eq!(StatusReport::parse(body.as_bytes()).unwrap().status, s);
        }
        for bad in [
            "pending",
            "aborted",
            "noartifact",
            "decommissioned",
            "Success",
            "",
        ] {
            let body = format!(r#"{{"status":"{bad}"}}"#);
            assert!(StatusReport::parse(body.as_bytes()).is_err(), "{bad}");
        }
        assert!(StatusReport::parse(b"{}").is_err());
    }

    #[test]
    fn substate_limit() {
        let ok = format!(
            r#"{{"status":"installing","substate":"{}"}}"#,
            "é".repeat(200)
        );
        assert!(StatusReport::parse(ok.as_bytes()).is_ok());
        let bad = format!(
            r#"{{"status":"installing","substate":"{}"}}"#,
            "x".repeat(201)
        );
        assert!(StatusReport::parse(bad.as_bytes()).is_err());
        assert_eq!(
            serde_json::to_string(&StatusReport::new(DeploymentStatus::AlreadyInstalled)).unwrap(),
            r#"{"status":"already-installed"}"#
        );
    }
}
