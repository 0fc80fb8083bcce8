//! The D-Bus token API the Mender add-ons use (mender-connect, mender-configure):
//! `io.mender.AuthenticationManager` at `/io/mender/AuthenticationManager`, interface
//! `io.mender.Authentication1` (`dbus/io.mender.Authentication1.xml`).
//!
//! - `GetJwtToken() → (token, server_url)`: the current token, or two empty strings;
//! - `FetchJwtToken() → b`: authenticate now (true when started); the signal follows;
//! - `JwtTokenStateChange(token, server_url)`: on every new token the client obtains and on
//!   loss of authorization (empty strings). The hook is [`Client::authorization`].
//!
//! Invariants: the service never stops the daemon from starting (disabled, not built in,
//! or no bus: one log line, and the daemon runs without it); the token lives in memory and
//! is never logged; only root and the daemon's own user get an answer, whatever the bus's
//! policy says (the policy file is the first gate, the service checks the caller's uid).
//! `server_url` is the configured server that issued the token, as the Mender 3.0/3.1
//! clients returned it (README "Add-ons"). Without the feature only the "not built in"
//! line is left (when enabled): the device build carries no more than that line and the
//! `[dbus]` keys (docs/BENCHMARKS.md).

#[cfg(feature = "dbus")]
mod service;

#[cfg(feature = "dbus")]
use crate::client::Client;

/// The well-known name, object path and interface, as the official client's.
pub const NAME: &str = "io.mender.AuthenticationManager";
pub const PATH: &str = "/io/mender/AuthenticationManager";
pub const INTERFACE: &str = "io.mender.Authentication1";

/// Which bus the service is offered on (the add-ons look on the system bus).
#[cfg(feature = "dbus")]
pub use mender_bridge_backends::Bus;

/// `[dbus]` / `DBus`: whether to offer the token API, and where (the bus only with the
/// feature: a build without it never connects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbusSettings {
    pub enabled: bool,
    #[cfg(feature = "dbus")]
    pub bus: Bus,
}

/// The running service; dropping it leaves the bus.
#[cfg(feature = "dbus")]
pub struct DbusService {
    _inner: service::Running,
}

/// Offers the token API over `client` when enabled and built in. Never fails: without
/// the service, one line says why and `None` is returned.
#[cfg(feature = "dbus")]
pub async fn start(settings: &DbusSettings, client: &Client) -> Option<DbusService> {
    if !settings.enabled {
        tracing::info!("D-Bus token API disabled (DBus.Enabled / [dbus] enabled = false)");
        return None;
    }
    match service::start(&settings.bus, client.clone()).await {
        Ok(running) => {
            tracing::info!(bus = %settings.bus, "D-Bus token API: {NAME} on {PATH}");
            Some(DbusService { _inner: running })
        }
        Err(e) => {
            tracing::warn!(
                "D-Bus token API not offered: {e}; running without it (the add-ons get no token)"
            );
            None
        }
    }
}

/// Without the feature: one line when the configuration enables the API (the default, as
/// the official client's), nothing when it is disabled. Not async, so the daemon's future
/// has no extra await point in the build without the feature.
#[cfg(not(feature = "dbus"))]
pub fn start(settings: &DbusSettings) {
    if settings.enabled {
        tracing::info!(
            "D-Bus is enabled in the configuration but not built in (build with `--features dbus`); running without the token API"
        );
    }
}
