//! `mender-bridge show-artifact`: the installed artifact's name (`unknown` when the device
//! has none recorded), as the official client prints it.

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let provides = setup::store(&config).provides_or(&config.artifact_info_file);
    println!(
        "{}",
        provides
            .get("artifact_name")
            .map_or("unknown", String::as_str)
    );
    Ok(ExitCode::SUCCESS)
}
