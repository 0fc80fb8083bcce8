//! [`BackendError`]: what a backend reports when a call fails, and its constructors, so
//! each failure site names only its message (and, for an installer's failure, its log).
//!
//! Invariant: every error names what failed; an installer's own messages travel in
//! [`BackendError::Failed`]'s `log`, never in the message.

/// Errors a backend reports, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The installer refused before anything was written (busy, absent, no space).
    #[error("not started: {0}")]
    NotStarted(String),
    /// The installer failed during the install; `log` carries its own messages.
    #[error("install failed: {message}")]
    Failed { message: String, log: Vec<String> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl BackendError {
    /// Refused before anything was written ([`BackendError::NotStarted`]).
    pub fn not_started(message: impl Into<String>) -> Self {
        BackendError::NotStarted(message.into())
    }

    /// Failed during the install, with no installer messages to carry.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::failed_with_log(message, Vec::new())
    }

    /// Failed during the install; `log` holds the installer's own messages.
    pub fn failed_with_log(message: impl Into<String>, log: Vec<String>) -> Self {
        BackendError::Failed {
            message: message.into(),
            log,
        }
    }

    /// An I/O error; `context` says what was being done to what ("open /dev/sda2").
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BackendError::Io {
            context: context.into(),
            source,
        }
    }

    /// The message without the variant's prefix ("not started: ", "install failed: ").
    pub fn message(&self) -> String {
        match self {
            BackendError::Failed { message, .. } | BackendError::NotStarted(message) => {
                message.clone()
            }
            other => other.to_string(),
        }
    }
}

/// The state of a begun install, or the error for `call` made out of order: "`call`
/// before begin". Every backend's `write` and `finish` check their install this way.
pub(crate) fn begun<T>(state: Option<T>, call: &str) -> Result<T, BackendError> {
    state.ok_or_else(|| BackendError::failed(format!("{call} before begin")))
}
