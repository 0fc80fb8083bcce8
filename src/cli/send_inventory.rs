//! `mender-bridge send-inventory`: asks the running daemon to send the inventory now
//! (SIGUSR2 to the pid in its pid file; see [`crate::daemon::pidfile`]).

use std::process::ExitCode;

use nix::sys::signal::Signal;

use crate::config::{Config, ConfigPaths};
use crate::daemon::pidfile;
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let pid = pidfile::signal_daemon(&setup::pid_file(&config), Signal::SIGUSR2)?;
    println!("Asked the daemon (pid {pid}) to send the inventory.");
    Ok(ExitCode::SUCCESS)
}
