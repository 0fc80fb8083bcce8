//! [`Bus`]: which D-Bus bus a component talks on (RAUC's service, the add-ons' token API),
//! as the configuration names it: `system`, `session`, or a D-Bus address.

/// Which bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (honours `DBUS_SYSTEM_BUS_ADDRESS`), where RAUC and the add-ons look.
    System,
    /// The session bus.
    Session,
    /// A D-Bus address (`unix:path=/run/dbus/system_bus_socket`).
    Address(String),
}

impl Bus {
    /// `system`, `session`, or a D-Bus address.
    pub fn parse(s: &str) -> Bus {
        match s {
            "system" => Bus::System,
            "session" => Bus::Session,
            a => Bus::Address(a.to_string()),
        }
    }
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::System => f.write_str("the system bus"),
            Bus::Session => f.write_str("the session bus"),
            Bus::Address(a) => write!(f, "bus {a}"),
        }
    }
}
