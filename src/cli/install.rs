//! `mender-bridge install FILE|URL [--reboot-exit-code]`: a standalone install without a
//! server (see [`crate::deploy::standalone`]). Exit 0 when installed (reboot, then
//! `commit`), 4 with `--reboot-exit-code` when a reboot is needed, 1 on failure (nothing
//! activated).

use std::process::ExitCode;

use super::progress::ProgressPrinter;
use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::{self, InstallOutcome};
use crate::setup;

/// The official client's exit code for "installed; reboot needed" with `--reboot-exit-code`.
pub const EXIT_REBOOT: u8 = 4;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact: a file, `-` for standard input, or an http(s) URL.
    pub artifact: String,
    /// Exit with 4 (instead of 0) when the device must reboot into the update.
    #[arg(long)]
    pub reboot_exit_code: bool,
}

pub async fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    let mut installer = setup::standalone(&config)?;
    let source = standalone::open_source(&setup::client_config(&config), &args.artifact).await?;
    let mut printer = ProgressPrinter::stderr();
    let result = installer
        .install(source, &mut |done, total| printer.update(done, total))
        .await;
    printer.finish();
    let installed = match result {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mender-bridge: installing {}: {e}", args.artifact);
            return Ok(ExitCode::from(1));
        }
    };
    let name = &installed.artifact;
    match installed.outcome {
        InstallOutcome::RebootRequired => {
            println!("Installed {name}. It runs after a reboot; then use `mender-bridge commit` to keep it, or `mender-bridge rollback`.");
            if args.reboot_exit_code {
                return Ok(ExitCode::from(EXIT_REBOOT));
            }
        }
        InstallOutcome::AwaitingCommit => {
            println!("Installed {name}. Use `mender-bridge commit` to keep it, or `mender-bridge rollback`.");
        }
        InstallOutcome::Committed => println!("Installed and committed {name}."),
        InstallOutcome::CommittedRebootRequired => {
            println!("Installed and committed {name}. At least one payload requested a reboot of the device it updated.");
            if args.reboot_exit_code {
                return Ok(ExitCode::from(EXIT_REBOOT));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
