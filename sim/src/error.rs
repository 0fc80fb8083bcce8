//! Errors of the simulator: starting it (TLS material, state, socket) and its persistence.

use std::path::PathBuf;

/// The simulator could not start or persist its state.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("state file {path}: {detail}")]
    State { path: PathBuf, detail: String },
    #[error("random number generator: {0}")]
    Random(String),
}

impl SimError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SimError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}
