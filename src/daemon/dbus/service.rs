//! The zbus side of the token API: the interface object, the connection, and the task
//! that turns each change of [`Client::authorization`] into a `JwtTokenStateChange`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zbus::object_server::SignalEmitter;

use super::{Bus, NAME, PATH};
use crate::client::{Authorization, Client};

/// Connecting and owning the name; a bus that does not answer in time is "no bus".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the service could not be offered.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{bus}: {source}")]
    Bus {
        bus: String,
        #[source]
        source: zbus::Error,
    },
    #[error("{bus}: no answer within {CONNECT_TIMEOUT:?}")]
    Timeout { bus: String },
}

/// The connection (owning the name) and the signal task; dropping both leaves the bus.
pub struct Running {
    _conn: zbus::Connection,
    signals: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.signals.abort();
    }
}

/// `io.mender.Authentication1`.
struct AuthManager {
    client: Client,
    current: watch::Receiver<Option<Authorization>>,
    /// True while a FetchJwtToken authentication runs: calls meanwhile start no other.
    fetching: Arc<AtomicBool>,
}

/// The two strings of the method and the signal: empty when not authorized.
fn pair(a: &Option<Authorization>) -> (String, String) {
    a.as_ref()
        .map(|a| (a.token().to_string(), a.server_url().to_string()))
        .unwrap_or_default()
}

#[zbus::interface(name = "io.mender.Authentication1")]
impl AuthManager {
    #[zbus(out_args("token", "server_url"))]
    async fn get_jwt_token(&self) -> (String, String) {
        pair(&self.current.borrow())
    }

    #[zbus(out_args("success"))]
    async fn fetch_jwt_token(&self) -> bool {
        if self.fetching.swap(true, Ordering::AcqRel) {
            tracing::debug!("FetchJwtToken: an authentication is already running");
            return true;
        }
        tracing::info!("FetchJwtToken: authenticating now");
        let client = self.client.clone();
        let fetching = self.fetching.clone();
        tokio::spawn(async move {
            // The session lock serialises this with the daemon's own authentications;
            // the outcome reaches the signal through Client::authorization.
            if let Err(e) = client.authenticate().await {
                tracing::warn!("FetchJwtToken: {e}");
            }
            fetching.store(false, Ordering::Release);
        });
        true
    }

    #[zbus(signal)]
    async fn jwt_token_state_change(
        emitter: &SignalEmitter<'_>,
        token: &str,
        server_url: &str,
    ) -> zbus::Result<()>;
}

/// Connects to `bus`, owns [`NAME`], serves [`PATH`] and starts the signal task.
pub async fn start(bus: &Bus, client: Client) -> Result<Running, ServiceError> {
    let name = bus.to_string();
    let err = |source| ServiceError::Bus {
        bus: name.clone(),
        source,
    };
    let mut updates = client.authorization();
    let iface = AuthManager {
        current: updates.clone(),
        client,
        fetching: Arc::new(AtomicBool::new(false)),
    };
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    }
    .map_err(err)?;
    let build = builder
        .name(NAME)
        .map_err(err)?
        .serve_at(PATH, iface)
        .map_err(err)?
        .build();
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, build)
        .await
        .map_err(|_| ServiceError::Timeout { bus: name.clone() })?
        .map_err(err)?;
    let emitter = SignalEmitter::new(&conn, PATH).map_err(err)?.into_owned();
    updates.mark_unchanged();
    let signals = tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let (token, url) = pair(&updates.borrow_and_update());
            let what = if token.is_empty() {
                "authorization lost"
            } else {
                "new token"
            };
            match AuthManager::jwt_token_state_change(&emitter, &token, &url).await {
                Ok(()) => tracing::debug!("JwtTokenStateChange sent ({what})"),
                Err(e) => tracing::warn!("JwtTokenStateChange ({what}): {e}"),
            }
        }
    });
    Ok(Running {
        _conn: conn,
        signals,
    })
}
