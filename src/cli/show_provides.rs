//! `mender-bridge show-provides`: the device's provides as `key=value` lines, sorted by
//! key, as the official client prints them.

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let provides = setup::store(&config).provides_or(&config.artifact_info_file);
    for (k, v) in provides {
        println!("{k}={v}");
    }
    Ok(ExitCode::SUCCESS)
}
