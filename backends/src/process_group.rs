//! Child processes the bridge runs on a device's behalf (identity, inventory and state
//! scripts, Update Modules), each in a process group of its own, so that a timeout can end the script
//! together with everything it started.
//!
//! Invariants: a child is started with `process_group(0)` (its pid is its process group
//! id) and `kill_on_drop`; [`Group::kill`] signals the whole group (SIGKILL) before the
//! leader is reaped, so the group id cannot have been reused by then (a process group id is
//! not handed out again while any member lives).

use std::time::Duration;

use tokio::process::{Child, Command};

/// How long "text file busy" is retried in [`spawn`].
const ETXTBSY_RETRIES: u32 = 20;
const ETXTBSY_WAIT: Duration = Duration::from_millis(25);

/// A started child and its process group.
#[derive(Debug)]
pub struct Group {
    pub child: Child,
    /// The group id: the child's pid at start (`None` if the platform gave none).
    pgid: Option<nix::unistd::Pid>,
}

/// Starts `command` as the leader of a new process group, killed when dropped.
///
/// "Text file busy" (the script was just written, and a concurrent fork elsewhere in the
/// process still holds it open for writing) is retried briefly.
pub async fn spawn(command: &mut Command) -> std::io::Result<Group> {
    command.process_group(0).kill_on_drop(true);
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e)
                if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                    && tries < ETXTBSY_RETRIES =>
            {
                tries += 1;
                tokio::time::sleep(ETXTBSY_WAIT).await;
            }
            Err(e) => return Err(e),
            Ok(child) => {
                let pgid = child
                    .id()
                    .and_then(|p| i32::try_from(p).ok())
                    .map(nix::unistd::Pid::from_raw);
                return Ok(Group { child, pgid });
            }
        }
    }
}

impl Group {
    /// SIGKILL to every process of the group, then the leader killed and reaped. Errors
    /// (the group is already gone) are ignored. Call it only while the leader has not been
    /// reaped by a successful `wait` (see the module's invariants).
    pub async fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
