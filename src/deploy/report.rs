//! Telling the server: status reports (best effort while working, retried until taken for
//! the final one), the deployment log, and the log lines themselves.

use std::time::Duration;

use crate::client::{Client, ClientError};
use mender_api::{DeploymentStatus, LogMessage};

use super::store::Store;

/// How a report ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Taken,
    /// 409: the deployment was aborted on the server. Stop, clean up, report nothing more.
    Aborted,
    /// Not taken (network, 5xx); a best-effort report moves on.
    Failed,
}

/// A log line now, at `level`.
pub fn log_line(level: &str, message: impl Into<String>) -> LogMessage {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LogMessage {
        timestamp: mender_api::rfc3339::format_utc(now),
        level: level.into(),
        message: message.into(),
    }
}

/// The longest server-asked wait (`Retry-After`) a best-effort status report honours before
/// its one retry: the deployment is not held up longer for a report it can do without.
pub const BEST_EFFORT_MAX_WAIT: Duration = Duration::from_secs(60);

/// Tries of the deployment log upload while the server answers 429/503 with `Retry-After`.
pub const LOG_UPLOAD_TRIES: u32 = 3;

/// Reports a status, best effort: one try, and one more after the server's `Retry-After`
/// (429/503) when it asks for at most [`BEST_EFFORT_MAX_WAIT`]; errors other than 409 are
/// logged and ignored.
pub async fn report(
    client: &Client,
    id: &str,
    status: DeploymentStatus,
    substate: Option<&str>,
) -> Reported {
    let mut retried = false;
    loop {
        match client.report_status(id, status, substate).await {
            Ok(()) => return Reported::Taken,
            Err(ClientError::Aborted { .. }) => return Reported::Aborted,
            Err(e) => match e.retry_after() {
                Some(wait) if !retried && wait <= BEST_EFFORT_MAX_WAIT => {
                    tracing::info!(deployment = id, %status, error = %e, retry_in = ?wait, "status report not taken; the server asks to wait");
                    tokio::time::sleep(wait).await;
                    retried = true;
                }
                _ => {
                    tracing::warn!(deployment = id, %status, error = %e, "status report not taken");
                    return Reported::Failed;
                }
            },
        }
    }
}

/// Reports a status until the server takes it (or says the deployment is aborted or gone),
/// waiting `initial`, doubling up to `cap` between tries; after a 429/503 with
/// `Retry-After`, the server's wait instead. Used for the statuses the
/// deployment's outcome depends on: the pre-commit `installing` and the final one.
pub async fn report_until_taken(
    client: &Client,
    id: &str,
    status: DeploymentStatus,
    substate: Option<&str>,
    initial: Duration,
    cap: Duration,
) -> Reported {
    let mut wait = initial;
    loop {
        match client.report_status(id, status, substate).await {
            Ok(()) => return Reported::Taken,
            Err(ClientError::Aborted { .. }) => return Reported::Aborted,
            Err(e) if e.status() == Some(404) => {
                tracing::warn!(
                    deployment = id,
                    "the server no longer knows this deployment"
                );
                return Reported::Aborted;
            }
            Err(e) => {
                let this = e.retry_after().unwrap_or(wait);
                tracing::warn!(deployment = id, %status, error = %e, retry_in = ?this, "final status not taken; retrying");
                tokio::time::sleep(this).await;
                wait = (wait * 2).min(cap);
            }
        }
    }
}

/// Uploads the stored deployment log (failures only, as the official clients do). An
/// empty log gets one line saying so, since the server refuses empty logs. A 429/503 with
/// `Retry-After` is tried again after the server's wait, [`LOG_UPLOAD_TRIES`] tries in all.
pub async fn upload_log(client: &Client, store: &Store, id: &str) {
    let mut lines = store.log().unwrap_or_default();
    if lines.is_empty() {
        lines.push(log_line(
            "error",
            "deployment failed; no further detail was recorded",
        ));
    }
    for attempt in 1..=LOG_UPLOAD_TRIES {
        match client.upload_log(id, &lines).await {
            Ok(()) => return,
            Err(e) => match e.retry_after() {
                Some(wait) if attempt < LOG_UPLOAD_TRIES => {
                    tracing::info!(deployment = id, error = %e, retry_in = ?wait, "deployment log not taken; the server asks to wait");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    tracing::warn!(deployment = id, error = %e, "deployment log upload failed");
                    return;
                }
            },
        }
    }
}
