//! What `install`, `commit`, `rollback` and `resume` print and exit with, from the
//! standalone operation's result, as the official client's standalone commands do: exit 0
//! when done (or stopped by `--stop-before`), 1 on failure (including an install that
//! failed and was rolled back), 2 when no update is in progress, 4 with
//! `--reboot-exit-code` when the device must reboot.

use std::process::ExitCode;

use crate::deploy::standalone::{Done, InstallOutcome, StandaloneError, StopPoint};

/// The official client's exit code for "no update in progress".
pub const EXIT_NOTHING: u8 = 2;
/// The official client's exit code for "installed; reboot needed" with `--reboot-exit-code`.
pub const EXIT_REBOOT: u8 = 4;

/// `--stop-before STATE`, for the commands that walk the install's states.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StopArgs {
    /// Stop before this state (ArtifactInstall_Enter, ArtifactCommit_Enter,
    /// ArtifactCommit_Leave, ArtifactRollback_Enter, ArtifactFailure_Enter, Cleanup);
    /// `resume` goes on from there. May be given more than once.
    #[arg(long = "stop-before", value_name = "STATE")]
    pub stop_before: Vec<String>,
}

/// Which command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Install,
    Commit,
    Rollback,
    Resume,
}

/// Prints what `op` did (`what`: how errors name it) and returns its exit code. A rollback
/// of a failed install is a success for `rollback` (it did what was asked) and a failure
/// for `install` and `resume` (the update did not happen).
pub fn report(
    op: Op,
    what: &str,
    result: Result<Done, StandaloneError>,
    reboot_exit_code: bool,
) -> ExitCode {
    let done = match result {
        Ok(done) => done,
        Err(StandaloneError::NothingInProgress) => {
            eprintln!("mender-bridge: {what}: no update in progress");
            return ExitCode::from(EXIT_NOTHING);
        }
        Err(e) => {
            eprintln!("mender-bridge: {what}: {e}");
            return ExitCode::from(1);
        }
    };
    let name = &done.artifact;
    let reboot = if reboot_exit_code {
        ExitCode::from(EXIT_REBOOT)
    } else {
        ExitCode::SUCCESS
    };
    match done.outcome {
        InstallOutcome::RebootRequired => {
            println!("Installed {name}. It runs after a reboot; then use `mender-bridge commit` to keep it, or `mender-bridge rollback`.");
            reboot
        }
        InstallOutcome::AwaitingCommit => {
            println!("Installed {name}. Use `mender-bridge commit` to keep it, or `mender-bridge rollback`.");
            ExitCode::SUCCESS
        }
        InstallOutcome::Committed if op == Op::Install => {
            println!("Installed and committed {name}.");
            ExitCode::SUCCESS
        }
        InstallOutcome::Committed => {
            println!("Committed {name}.");
            ExitCode::SUCCESS
        }
        InstallOutcome::CommittedRebootRequired => {
            println!("Installed and committed {name}. At least one payload requested a reboot of the device it updated.");
            reboot
        }
        InstallOutcome::RolledBack {
            failed,
            reboot_needed,
        } => {
            let back = if reboot_needed {
                " Reboot to return to the previous software."
            } else {
                ""
            };
            if failed && op != Op::Rollback {
                eprintln!("mender-bridge: {what}: the install of {name} failed; it was rolled back.{back}");
                ExitCode::from(1)
            } else {
                println!("Rolled back {name}.{back}");
                ExitCode::SUCCESS
            }
        }
        InstallOutcome::Stopped(StopPoint::ArtifactInstallEnter) => {
            println!("Streamed {name} to storage, but not installed/enabled. Use `mender-bridge resume` to install it, or `mender-bridge rollback`.");
            ExitCode::SUCCESS
        }
        InstallOutcome::Stopped(state) => {
            println!(
                "Stopped before {} ({name}). Use `mender-bridge resume` to go on.",
                state.name()
            );
            ExitCode::SUCCESS
        }
    }
}
