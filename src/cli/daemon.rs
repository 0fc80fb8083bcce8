//! `mender-bridge daemon`: the long-running client (see [`crate::daemon`]).

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    crate::daemon::run(config).await?;
    Ok(ExitCode::SUCCESS)
}
