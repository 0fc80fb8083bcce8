//! Status reports (PROTOCOL.md §3.2): PUT `{"status", "substate"}`; 204 is success; 409
//! means the deployment was aborted on the server and surfaces as
//! [`ClientError::Aborted`], which callers must not retry.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::auth::status_error;
use super::error::{Call, ClientError};
use super::http::path_segment;
use super::Client;
use mender_api::deployments::DEPLOYMENTS;
use mender_api::status::{DeploymentStatus, StatusReport, MAX_SUBSTATE_LEN};

/// Cuts `s` to at most 200 characters (Unicode scalar values, as the server counts),
/// always on a character boundary.
pub fn truncate_substate(s: &str) -> &str {
    match s.char_indices().nth(MAX_SUBSTATE_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Client {
    /// Reports `status` for a deployment, with an optional substate (cut to 200
    /// characters; an empty one is not sent).
    pub async fn report_status(
        &self,
        deployment_id: &str,
        status: DeploymentStatus,
        substate: Option<&str>,
    ) -> Result<(), ClientError> {
        let report = StatusReport {
            status,
            substate: substate
                .filter(|s| !s.is_empty())
                .map(|s| truncate_substate(s).to_string()),
        };
        let body = serde_json::to_vec(&report).map_err(|e| ClientError::InvalidRequest {
            call: Call::Status,
            detail: e.to_string(),
        })?;
        let path = format!("{DEPLOYMENTS}/{}/status", path_segment(deployment_id));
        let a = self
            .authorized(Call::Status, Method::PUT, &path, Some(Bytes::from(body)))
            .await?;
        match a.status {
            s if s.is_success() => {
                tracing::debug!(deployment = deployment_id, %status, "status reported");
                Ok(())
            }
            StatusCode::CONFLICT => Err(ClientError::Aborted {
                call: Call::Status,
                deployment_id: deployment_id.to_string(),
                message: a.server_message(),
            }),
            _ => Err(status_error(Call::Status, &path, &a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_on_char_boundary() {
        assert_eq!(truncate_substate("short"), "short");
        let ascii = "x".repeat(250);
        assert_eq!(truncate_substate(&ascii).len(), 200);
        let wide = "é".repeat(201);
        let t = truncate_substate(&wide);
        assert_eq!(t.chars().count(), 200);
        assert_eq!(t.len(), 400);
        let mixed = format!("{}€€", "a".repeat(199));
        assert_eq!(truncate_substate(&mixed), format!("{}€", "a".repeat(199)));
        assert_eq!(truncate_substate(""), "");
    }
}
