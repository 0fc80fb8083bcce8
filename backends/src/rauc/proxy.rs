//! The typed proxy for `de.pengutronix.rauc.Installer` (object `/`, bus name
//! `de.pengutronix.rauc`), as `dbus/de.pengutronix.rauc.Installer.xml` describes it for
//! RAUC 1.8. Only members present in 1.8 are declared, so the backend works with 1.8 and
//! every newer release (later versions only add members and `InstallBundle` keys).
//!
//! Properties are never cached: every read asks the service, so a value read after the
//! service restarted (a simulated or real reboot) is the new service's.

use std::collections::HashMap;
use std::time::Duration;

use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};
use zbus::Connection;

use super::Bus;

/// RAUC's well-known bus name.
pub const SERVICE: &str = "de.pengutronix.rauc";

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/",
    gen_blocking = false
)]
pub trait Installer {
    /// Starts an install; returns at once, the result comes as [`Completed`]. A D-Bus
    /// error means the install never started (busy, unsupported key).
    fn install_bundle(&self, source: &str, args: HashMap<&str, Value<'_>>) -> zbus::Result<()>;

    /// `state` = `good` / `bad` / `active`; `slot_identifier` = `booted` / `other` / a slot
    /// name. Returns the slot marked and RAUC's message.
    fn mark(&self, state: &str, slot_identifier: &str) -> zbus::Result<(String, String)>;

    /// Every slot with its status dictionary.
    fn get_slot_status(&self) -> zbus::Result<Vec<(String, HashMap<String, OwnedValue>)>>;

    /// The slot the bootloader will boot next (asks the bootloader backend).
    fn get_primary(&self) -> zbus::Result<String>;

    /// The install ended: 0 = success.
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;

    /// `idle` or `installing`.
    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;

    /// The last install's error; cleared when an install starts.
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;

    /// (percentage, message, nesting depth).
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;

    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn variant(&self) -> zbus::Result<String>;

    /// The booted slot's bootname (e.g. `A`).
    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;
}

/// Connects to `bus` within `timeout`; every method call on the connection times out
/// after `timeout` as well.
pub async fn connect(bus: &Bus, timeout: Duration) -> Result<Connection, String> {
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    }
    .map_err(|e| format!("cannot use {bus}: {e}"))?
    .method_timeout(timeout);
    match tokio::time::timeout(timeout, builder.build()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to {bus}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {bus}: no answer within {} s",
            timeout.as_secs()
        )),
    }
}

/// The installer proxy on `conn`, with no property cache.
pub async fn installer(conn: &Connection) -> zbus::Result<InstallerProxy<'static>> {
    InstallerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// A D-Bus error as RAUC's own message: for method errors the text after the error name
/// (`Already processing a different method`), otherwise zbus's description.
pub fn message(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(text), _) => text.clone(),
        zbus::Error::FDO(fdo) => fdo.to_string(),
        other => other.to_string(),
    }
}
