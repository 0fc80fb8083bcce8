//! The device API's request and response bodies, shared by mender-bridge's client
//! (`src/client/`) and the local server (the `mender-bridge-sim` crate, `sim/`). Field
//! names, types and rules follow `../shared/docs/PROTOCOL.md` (what the real server does),
//! which wins over the OpenAPI files where they disagree. Knows nothing of HTTP transport.
//!
//! Each area has its own module; validation functions return [`ValidationError`], whose text
//! is what the server would answer with a 400.

pub mod auth;
pub mod deployments;
pub mod error;
pub mod inventory;
pub mod log;
pub mod rfc3339;
pub mod signature;
pub mod status;

pub use auth::AuthRequest;
pub use deployments::{
    ArtifactSource, DeploymentArtifact, DeploymentInstructions, DeviceProvides, NextQuery,
    NextRequestV1, NextRequestV2,
};
pub use error::ApiError;
pub use inventory::{Attribute, AttributeValue};
pub use log::{DeploymentLog, LogMessage};
pub use status::{DeploymentStatus, StatusReport};

/// Base path of every device API route.
pub const DEVICES_V1: &str = "/api/devices/v1";

/// Largest request body the server accepts (deployments and inventory): 1 MiB; more is 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a body breaks the server's rules (the server answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    #[error("{field}: longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    #[error("the number of attributes in the scope is above the limit ({count} > {limit})")]
    TooManyAttributes { count: usize, limit: usize },
}

/// Checks that `value` has 1..=`max` characters (Unicode scalar values, as Go counts runes).
pub(crate) fn check_len(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(ValidationError::TooLong { field, max });
    }
    Ok(())
}
