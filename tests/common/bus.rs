//! A private system-like D-Bus (`dbus-daemon` on `bus.sock` in a test's directory, every
//! name ownable): the RAUC service and the deviceconnect add-on test use it through
//! `DBUS_SYSTEM_BUS_ADDRESS`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The bus address of [`start_bus`]`(dir)`.
pub fn bus_address(dir: &Path) -> String {
    format!("unix:path={}/bus.sock", dir.display())
}

/// Starts `dbus-daemon` listening on `dir/bus.sock`.
pub fn start_bus(w: &Path) -> Child {
    std::fs::write(
        w.join("bus.conf"),
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={}/bus.sock</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
"#,
            w.display()
        ),
    )
    .unwrap();
    Command::new("dbus-daemon")
        .arg(format!("--config-file={}/bus.conf", w.display()))
        .args(["--nofork", "--nopidfile"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("dbus-daemon: {e}; install the test dependencies (scripts/setup-test-deps.sh)")
        })
}
