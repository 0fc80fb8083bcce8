//! `mender-bridge commit`: makes a standalone install permanent. Exit 2 when no install is
//! in progress (as the official client), 1 on failure.

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::StandaloneError;
use crate::setup;

/// The official client's exit code for "no update in progress".
pub const EXIT_NOTHING: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let mut s = setup::standalone(&config)?;
    match s.commit().await {
        Ok(artifact) => {
            println!("Committed {artifact}.");
            Ok(ExitCode::SUCCESS)
        }
        Err(StandaloneError::NothingInProgress) => {
            eprintln!("mender-bridge: no update in progress: nothing to commit");
            Ok(ExitCode::from(EXIT_NOTHING))
        }
        Err(e) => {
            eprintln!("mender-bridge: commit: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
