//! `mender-bridge check-update`: asks the running daemon to check for an update now
//! (SIGUSR1 to the pid in its pid file; see [`crate::daemon::pidfile`]).

use std::process::ExitCode;

use nix::sys::signal::Signal;

use crate::config::{Config, ConfigPaths};
use crate::daemon::pidfile;
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let pid = pidfile::signal_daemon(&setup::pid_file(&config), Signal::SIGUSR1)?;
    println!("Asked the daemon (pid {pid}) to check for an update.");
    Ok(ExitCode::SUCCESS)
}
