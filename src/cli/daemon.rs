//! `mender-bridge daemon`: the long-running client (see [`crate::daemon`]).

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    crate::daemon::run(
        setup::daemon_settings(&config),
        &setup::pid_file(&config),
        setup::daemon_parts(&config),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
