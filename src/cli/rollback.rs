//! `mender-bridge rollback`: reverts a standalone install. Exit 2 when no install is in
//! progress (as the official client), 1 on failure.

use std::process::ExitCode;

use super::commit::EXIT_NOTHING;
use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::StandaloneError;
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let mut s = setup::standalone(&config)?;
    match s.rollback().await {
        Ok(r) if r.reboot_needed => {
            println!(
                "Rolled back {}. Reboot to return to the previous software.",
                r.artifact
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            println!("Rolled back {}.", r.artifact);
            Ok(ExitCode::SUCCESS)
        }
        Err(StandaloneError::NothingInProgress) => {
            eprintln!("mender-bridge: no update in progress: nothing to roll back");
            Ok(ExitCode::from(EXIT_NOTHING))
        }
        Err(e) => {
            eprintln!("mender-bridge: rollback: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
