//! The D-Bus token API for the add-ons (`src/daemon/dbus/`, feature `dbus`): disabled or
//! enabled by the configuration (`DBus.Enabled`, `[dbus]`); when enabled and built in,
//! whether the configured bus answers within [`CHECK_TIMEOUT`](super::CHECK_TIMEOUT) and whether
//! `io.mender.AuthenticationManager` is owned (the running daemon) or could be (asked
//! with `DoNotQueue` and released at once, so a running owner is never displaced).
//! A bus or policy problem is a warning: the daemon runs without the service.

use crate::config::Config;

use super::{Check, Sink};

const NAME: &str = "dbus";

pub async fn check(cfg: &Config, out: &mut dyn Sink) {
    if !cfg.dbus.enabled {
        out.add(Check::ok(
            NAME,
            "token API disabled by the configuration (DBus.Enabled / [dbus] enabled = false): \
             the add-ons get no token",
        ));
        return;
    }
    #[cfg(feature = "dbus")]
    {
        let bus = crate::daemon::dbus::Bus::parse(&cfg.dbus.bus);
        out.add(probe(&bus).await);
    }
    #[cfg(not(feature = "dbus"))]
    out.add(Check::warn(
        NAME,
        "token API enabled in the configuration but not built in",
        "build with `--features dbus` if the add-ons (mender-connect, mender-configure) \
         are used; else set [dbus] enabled = false",
    ));
}

#[cfg(feature = "dbus")]
async fn probe(bus: &crate::daemon::dbus::Bus) -> Check {
    use zbus::fdo::{DBusProxy, RequestNameFlags, RequestNameReply};
    use zbus::names::{BusName, WellKnownName};

    use super::CHECK_TIMEOUT;
    use crate::daemon::dbus::{Bus, NAME as SERVICE};

    let policy = "install dbus/io.mender.AuthenticationManager.conf in /etc/dbus-1/system.d \
                  (it lets root own the name) and reload D-Bus";
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    };
    let builder = match builder {
        Ok(b) => b.method_timeout(CHECK_TIMEOUT),
        Err(e) => {
            return Check::warn(
                NAME,
                format!("{bus}: {e}"),
                "correct [dbus] bus (system, session or a D-Bus address)",
            )
        }
    };
    let conn = match tokio::time::timeout(CHECK_TIMEOUT, builder.build()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Check::warn(
                NAME,
                format!("{bus} not reachable: {e}; the add-ons get no token"),
                "start D-Bus (dbus.service) or correct [dbus] bus",
            )
        }
        Err(_) => {
            return Check::warn(
                NAME,
                format!("{bus}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
                "check D-Bus (dbus.service)",
            )
        }
    };
    let result = async {
        let proxy = DBusProxy::new(&conn).await?;
        let name = WellKnownName::try_from(SERVICE)?;
        if proxy.name_has_owner(BusName::from(name.clone())).await? {
            let pid = proxy
                .get_connection_unix_process_id(BusName::from(name.clone()))
                .await
                .ok();
            return Ok::<_, zbus::Error>(Some(pid));
        }
        match proxy
            .request_name(name.clone(), RequestNameFlags::DoNotQueue.into())
            .await?
        {
            RequestNameReply::PrimaryOwner => {
                proxy.release_name(name).await?;
                Ok(None)
            }
            // Taken between the two calls: owned.
            _ => Ok(Some(None)),
        }
    };
    match tokio::time::timeout(CHECK_TIMEOUT, result).await {
        Ok(Ok(Some(pid))) => Check::ok(
            NAME,
            format!(
                "{bus}: {SERVICE} is owned{} (the running daemon's token API)",
                pid.map(|p| format!(" by pid {p}")).unwrap_or_default()
            ),
        ),
        Ok(Ok(None)) => Check::ok(
            NAME,
            format!("{bus}: reachable; {SERVICE} can be owned (the daemon is not running)"),
        ),
        Ok(Err(zbus::Error::FDO(e))) if matches!(*e, zbus::fdo::Error::AccessDenied(_)) => {
            Check::warn(
                NAME,
                format!("{bus}: not allowed to own {SERVICE}: {e}"),
                policy,
            )
        }
        Ok(Err(e)) => Check::warn(NAME, format!("{bus}: {e}"), policy),
        Err(_) => Check::warn(
            NAME,
            format!("{bus}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
            "check D-Bus (dbus.service)",
        ),
    }
}
