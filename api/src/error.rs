//! The server's error body (PROTOCOL.md §0).

use serde::{Deserialize, Serialize};

/// Header repeating the request id of an answer.
pub const REQUEST_ID_HEADER: &str = "X-MEN-RequestID";

/// `{"error": "<text>", "request_id": "<id>"}` — sent with 4xx/5xx answers. Official
/// clients only log it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(error: impl Into<String>, request_id: Option<String>) -> Self {
        ApiError {
            error: error.into(),
            request_id,
        }
    }
}
