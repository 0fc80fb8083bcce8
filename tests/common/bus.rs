//! Private system-like D-Buses (`dbus-daemon` on `bus.sock` in a test's directory):
//! [`start_bus`], where every name is ownable, for the RAUC service; [`TestBus`] with the
//! system bus's default-deny rules and our policy file (or open), for the token API and the
//! add-ons.
//! Processes find them through `DBUS_SYSTEM_BUS_ADDRESS`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// A running private bus (killed and reaped when dropped) whose socket `nobody` can reach,
/// so that the bus policy or the service, not the file mode, is what refuses a caller.
pub struct TestBus {
    child: Child,
    pub address: String,
}

impl TestBus {
    /// Configured like Debian's system bus: calls and owning names denied by default, our
    /// policy file (`dbus/io.mender.AuthenticationManager.conf`) included.
    pub fn with_policy(dir: &Path) -> Self {
        reachable_by_nobody(dir);
        let policy =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/io.mender.AuthenticationManager.conf");
        let sock = dir.join("bus.sock");
        std::fs::write(
            dir.join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={sock}</listen><auth>EXTERNAL</auth>
<policy context="default">
  <allow user="*"/>
  <deny own="*"/>
  <deny send_type="method_call"/>
  <allow send_type="signal"/>
  <allow send_requested_reply="true" send_type="method_return"/>
  <allow send_requested_reply="true" send_type="error"/>
  <allow receive_type="method_call"/>
  <allow receive_type="method_return"/>
  <allow receive_type="error"/>
  <allow receive_type="signal"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
</policy>
<include>{policy}</include>
</busconfig>
"#,
                sock = sock.display(),
                policy = policy.display()
            ),
        )
        .expect("bus.conf");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", dir.join("bus.conf").display()))
            .args(["--nofork", "--nopidfile"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "dbus-daemon: {e}; install the test dependencies (scripts/setup-test-deps.sh)"
                )
            });
        Self::started(child, dir)
    }

    /// With no policy at all: anyone may own any name and call anything ([`start_bus`]).
    pub fn open(dir: &Path) -> Self {
        reachable_by_nobody(dir);
        Self::started(start_bus(dir), dir)
    }

    fn started(child: Child, dir: &Path) -> Self {
        let sock = dir.join("bus.sock");
        let start = std::time::Instant::now();
        let bus = TestBus {
            child,
            address: bus_address(dir),
        };
        while !sock.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the bus did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bus
    }
}

fn reachable_by_nobody(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
