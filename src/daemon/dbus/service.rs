//! The zbus side of the token API: the interface object, the connection, and the task
//! that turns each change of [`Client::authorization`] into a `JwtTokenStateChange`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::object_server::SignalEmitter;

use super::{Bus, NAME, PATH};
use crate::client::{Authorization, Client};

/// Connecting and owning the name; a bus that does not answer in time is "no bus".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Asking the bus which user a caller runs as.
const CALLER_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Refuses callers other than root and the daemon's own user. The bus policy
/// (`dbus/io.mender.AuthenticationManager.conf`) already says so on a system bus; this
/// holds where the policy is missing or open (another bus address, a session bus), so the
/// device's token never reaches an unprivileged process: with it, that process could act
/// as the device towards the server.
async fn check_caller(
    conn: &zbus::Connection,
    header: &Header<'_>,
    method: &str,
) -> zbus::fdo::Result<()> {
    let denied = |why: String| {
        tracing::warn!("{method}: refused: {why}");
        zbus::fdo::Error::AccessDenied(format!("{method}: {why}"))
    };
    let sender = header
        .sender()
        .ok_or_else(|| denied("the call names no sender".into()))?;
    let ask = async {
        let bus = zbus::fdo::DBusProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        bus.get_connection_unix_user(BusName::Unique(sender.as_ref()))
            .await
    };
    let uid = match tokio::time::timeout(CALLER_TIMEOUT, ask).await {
        Ok(Ok(uid)) => uid,
        Ok(Err(e)) => return Err(denied(format!("the caller's user is unknown ({e})"))),
        Err(_) => {
            return Err(denied(
                "the bus did not name the caller's user in time".into(),
            ))
        }
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own = unsafe { libc::geteuid() };
    if uid == 0 || uid == own {
        Ok(())
    } else {
        Err(denied(format!(
            "caller uid {uid} is neither root nor the daemon's user"
        )))
    }
}

#[zbus::interface(name = "io.mender.Authentication1")]
impl AuthManager {
    #[zbus(out_args("token", "server_url"))]
    async fn get_jwt_token(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> zbus::fdo::Result<(String, String)> {
        check_caller(conn, &header, "GetJwtToken").await?;
        Ok(pair(&self.current.borrow()))
    }

    #[zbus(out_args("success"))]
    async fn fetch_jwt_token(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> zbus::fdo::Result<bool> {
        check_caller(conn, &header, "FetchJwtToken").await?;
        if self.fetching.swap(true, Ordering::AcqRel) {
            tracing::debug!("FetchJwtToken: an authentication is already running");
            return Ok(true);
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
        Ok(true)
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
