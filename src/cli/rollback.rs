//! `mender-bridge rollback [--stop-before STATE]`: reverts a standalone install (discards
//! one stopped after its download). Exit 2 when no install is in progress (as the official
//! client), 1 on failure.

use std::process::ExitCode;

use super::outcome::{report, Op, StopArgs};
use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::Stops;
use crate::setup;

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub stop: StopArgs,
}

pub async fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let stops = Stops::parse(&args.stop.stop_before)?;
    let config = Config::load(paths)?;
    let mut s = setup::standalone(&config)?;
    Ok(report(
        Op::Rollback,
        "rollback",
        s.rollback(&stops).await,
        false,
    ))
}
