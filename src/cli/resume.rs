//! `mender-bridge resume [--reboot-exit-code] [--stop-before STATE]`: goes on with a
//! standalone install from where it stopped (`--stop-before`) or was interrupted, as the
//! official `mender-update resume`: a download is installed, an installed update
//! committed, an interrupted one rolled back. Exit 2 when no install is in progress, 1 when
//! the install failed (see [`super::outcome`]).

use std::process::ExitCode;

use super::outcome::{report, Op, StopArgs};
use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::Stops;
use crate::setup;

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Exit with 4 (instead of 0) when the device must reboot into the update.
    #[arg(long)]
    pub reboot_exit_code: bool,
    #[command(flatten)]
    pub stop: StopArgs,
}

pub async fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let stops = Stops::parse(&args.stop.stop_before)?;
    let config = Config::load(paths)?;
    let mut s = setup::standalone(&config)?;
    let result = s.resume(&stops).await;
    Ok(report(Op::Resume, "resume", result, args.reboot_exit_code))
}
